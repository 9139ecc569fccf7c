"""The paper's one table of results: each key -> its file under results/ and the command that
writes it.  ``paper.numbers``, ``paper.figures`` and the pending texts read paths only here.

A source with a ``study`` belongs to a long, resumable training sweep: its TeX switch
(``\\ifStudyLM`` ...) typesets the study as *Pending*, naming the missing files and the
command, until they exist.  Every other source must exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.common.matrices import GRAD_KEY, family_name

__all__ = [
    "RESULTS",
    "Source",
    "SOURCES",
    "STUDIES",
    "GRAD_KEY",
    "GRAD",
    "path",
    "load",
    "pending",
    "study_command",
]

RESULTS = Path(__file__).resolve().parent.parent / "results"


@dataclass(frozen=True)
class Source:
    file: str  # relative to results/
    command: str
    study: str | None = None  # the TeX switch of a long training study


_ON_2_CORES = "--preset cpu --jobs 2 --threads 1"
_FAMILY = "python -m experiments.lm.family"
_BUDGET = "python -m experiments.lm.budget"
SOURCES: dict[str, Source] = {
    "schedules": Source("schedules/table.json", "python -m experiments.matrix.schedule_table"),
    "rounding": Source("rounding/cpu.json", "python -m experiments.matrix.rounding_model"),
    "rounding_heldout": Source("rounding/heldout_cpu.json",
                               "python -m experiments.matrix.rounding_heldout"),
    "rounding_account": Source("rounding/account_cpu.json",
                               "python -m experiments.matrix.rounding_account"),
    "timing_cpu": Source(
        "timing/cpu_bf16.json",
        "python -m experiments.bench.timing --dtype bf16 --out results/timing/cpu_bf16.json",
    ),
    "timing_cuda": Source(
        "timing/cuda_bf16.json",
        "python -m experiments.bench.timing --device cuda --dtype bf16 "
        "--out results/timing/cuda_bf16.json",
    ),
    "step_time_cpu": Source(
        "optimizer/step_time_cpu.json",
        "python -m experiments.bench.optimizer --out results/optimizer/step_time_cpu.json",
    ),
    "step_time_cuda": Source(
        "optimizer/step_time_cuda.json",
        "python -m experiments.bench.optimizer --device cuda "
        "--out results/optimizer/step_time_cuda.json",
    ),
    "gradients": Source(
        "gradients/cpu.npz", "python -m experiments.lm.capture --preset cpu --steps 10,300"
    ),
    "convergence": Source(
        "convergence/cpu_fp64-fp32-bf16.json",
        "python -m experiments.matrix.convergence --dtypes fp64,fp32,bf16 "
        "--gradients results/gradients/cpu.npz",
    ),
    "precision": Source(
        "precision/cpu_fp64-fp32-fp16-bf16.json", "python -m experiments.matrix.precision"
    ),
    "gram": Source("gram/cpu.json", "python -m experiments.matrix.gram"),
    "null_direction": Source("null_direction/cpu.json",
                             "python -m experiments.matrix.null_direction"),
    "budget_designs": Source(
        "budget/designs.json", "python -m experiments.lm.budget --parts design"
    ),
    "lm_family": Source("lm_family/summary.json", f"{_FAMILY} --parts lm {_ON_2_CORES}", "LM"),
    "lm_selection": Source("lm_family/selection.json", f"{_FAMILY} --parts select {_ON_2_CORES}",
                           "LM"),
    "adamw_stall": Source(
        "lm_family/adamw_stall.json", f"{_FAMILY} --parts stall {_ON_2_CORES}", "LM"
    ),
    "lm_step": Source("optimizer/lm_step_cpu.json", "python -m experiments.bench.lm_step", "LM"),
    "entropy": Source(
        "entropy/summary.json", f"{_FAMILY} --parts entropy {_ON_2_CORES}", "Entropy"
    ),
    "mismatch": Source(
        "mismatch/summary.json", f"{_FAMILY} --parts mismatch {_ON_2_CORES}", "Mismatch"
    ),
    "budget": Source("budget/summary.json", f"{_BUDGET} --parts train {_ON_2_CORES}", "Budget"),
    "moe": Source("moe/summary.json", "python -m experiments.lm.moe --preset cpu --jobs 2",
                  "MoE"),
    "cnn": Source("cnn/summary.json", "python -m experiments.vision.cnn --preset cpu", "CNN"),
    "budget_seeds": Source(
        "budget/more_seeds.json", f"{_BUDGET} --parts seeds {_ON_2_CORES}", "Budget"
    ),
    "schedules2026_designs": Source(
        "schedules2026/designs.json", "python -m experiments.lm.schedules2026 --parts design"
    ),
    "schedules2026": Source(
        "schedules2026/summary.json",
        "python -m experiments.lm.schedules2026 --parts train --jobs 2 --threads 1", "Schedules"
    ),
    "schedules2026_seeds": Source(
        "schedules2026/more_seeds.json",
        "python -m experiments.lm.schedules2026 --parts seeds --jobs 2 --threads 1", "Schedules"
    ),
    "comm": Source("fsdp/comm.json", "python -m experiments.bench.fsdp"),
}

#: the long studies, in the order the paper switches them, and their sources
STUDIES: dict[str, list[str]] = {}
for _key, _src in SOURCES.items():
    if _src.study:
        STUDIES.setdefault(_src.study, []).append(_key)

#: the captured matrix the paper's figures follow: its key in gradients/cpu.npz, and its
#: name as a matrix family of the convergence and rounding studies
GRAD = family_name(GRAD_KEY)


def path(key: str, res: Path = RESULTS) -> Path:
    return Path(res) / SOURCES[key].file


def load(key: str, res: Path = RESULTS) -> Any:
    """A results file: JSON as a dict, ``.npz`` as numpy's lazy archive."""
    p = path(key, res)
    return np.load(p) if p.suffix == ".npz" else json.loads(p.read_text())


def complete(key: str, res: Path = RESULTS) -> bool:
    """Whether a source's file exists and is not a sweep's progress record
    (``"complete": false``, rewritten after every run until the sweep ends)."""
    p = path(key, res)
    if not p.exists():
        return False
    return p.suffix != ".json" or json.loads(p.read_text()).get("complete", True) is not False


def pending(res: Path = RESULTS) -> dict[str, list[str]]:
    """The studies with results missing or incomplete under ``res``: study -> those files."""
    out: dict[str, list[str]] = {}
    for study, keys in STUDIES.items():
        missing = [SOURCES[k].file for k in keys if not complete(k, res)]
        if missing:
            out[study] = missing
    return out


def study_command(study: str) -> str:
    """The commands that write a study's files, in order, without repeats."""
    return "; ".join(dict.fromkeys(SOURCES[k].command for k in STUDIES[study]))
