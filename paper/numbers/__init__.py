"""Write paper/numbers.tex: every number the paper's text quotes, as LaTeX macros.

    python -m paper.numbers [--results results] [--out paper/numbers.tex]

Each value comes from a results file or is computed by the library here (the Taylor
coefficients by sympy, the Jordan band by the certified interval propagation); none is typed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from msign.results import write_text

from ..sources import RESULTS, load, pending, study_command
from .accuracy import (
    convergence_numbers,
    gradient_numbers,
    gram_numbers,
    null_direction_numbers,
    precision_numbers,
)
from .budget import budget_design_numbers, budget_numbers
from .format import macros, sci, tex
from .methods import (
    derivation_numbers,
    rounding_account_numbers,
    rounding_heldout_numbers,
    rounding_numbers,
    schedule_numbers,
)
from .moe import moe_numbers
from .schedules2026 import aol_numbers, schedules2026_numbers
from .speed import comm_numbers, optimizer_numbers, timing_numbers
from .training import entropy_numbers, lm_family_numbers, mismatch_numbers
from .vision import cnn_numbers

__all__ = ["main", "macros", "sci", "tex", "derivation_numbers", "schedule_numbers",
           "rounding_numbers", "rounding_heldout_numbers", "rounding_account_numbers",
           "timing_numbers",
           "optimizer_numbers", "comm_numbers", "gradient_numbers",
           "convergence_numbers", "null_direction_numbers", "precision_numbers",
           "gram_numbers", "lm_family_numbers",
           "entropy_numbers", "mismatch_numbers", "budget_design_numbers", "budget_numbers",
           "cnn_numbers", "moe_numbers", "aol_numbers", "schedules2026_numbers"]


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "numbers.tex"))
    args = ap.parse_args(argv)
    res = Path(args.results)

    def get(key: str) -> object:
        return load(key, res)

    values = {**derivation_numbers(), **schedule_numbers(get("schedules")),
              **rounding_numbers(get("rounding")),
              **rounding_heldout_numbers(get("rounding_heldout")),
              **rounding_account_numbers(get("rounding_account")),
              **timing_numbers(get("timing_cpu"), get("timing_cuda")),
              **optimizer_numbers(get("step_time_cpu"), get("step_time_cuda")),
              **gradient_numbers(get("gradients")),
              **convergence_numbers(get("convergence")),
              **null_direction_numbers(get("null_direction")),
              **precision_numbers(get("precision")),
              **gram_numbers(get("gram")),
              **comm_numbers(get("comm")),
              **budget_design_numbers(get("budget_designs")),
              **aol_numbers(get("schedules2026_designs"))}
    studies = {
        "LM": lambda: lm_family_numbers(get("lm_selection"), get("lm_family"),
                                        get("adamw_stall"), get("lm_step")),
        "Entropy": lambda: entropy_numbers(get("entropy")),
        "Mismatch": lambda: mismatch_numbers(get("mismatch")),
        "CNN": lambda: cnn_numbers(get("cnn")),
        "MoE": lambda: moe_numbers(get("moe")),
        "Budget": lambda: budget_numbers(get("budget_designs"), get("budget"),
                                         get("budget_seeds"), get("lm_step")),
        "Schedules": lambda: schedules2026_numbers(get("schedules2026"),
                                                   get("schedules2026_seeds")),
    }
    todo = pending(res)
    switches = []
    for name, compute in studies.items():
        if name in todo:
            files = ", ".join(f"\\texttt{{results/{tex(f)}}}" for f in todo[name])
            values[f"Study{name}Pending"] = (
                f"\\emph{{Pending: this study has not been run to completion yet ({files} "
                f"missing); \\texttt{{{tex(study_command(name))}}} "
                f"{'writes them' if len(todo[name]) > 1 else 'writes it'}.}}")
            print(f"pending: {name} ({', '.join(todo[name])}; {study_command(name)})",
                  file=sys.stderr)
        else:
            values.update(compute())
        switches.append(f"\\newif\\ifStudy{name}\\Study{name}{'false' if name in todo else 'true'}")
    write_text(args.out, macros(values) + "\n".join(switches) + "\n")
    return Path(args.out)

