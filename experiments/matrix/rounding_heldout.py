"""The bf16 rounding constant out of sample: shapes, sizes and GEMM paths the calibration
did not see.

    python -m experiments.matrix.rounding_heldout [--configs default|smoke]

``experiments.matrix.rounding_model`` measures c_sigma on 256 x 512 matrices and takes its
largest value as the model's constant c* (``results/rounding/cpu.json``).  Here c* is fixed
from that file before anything runs, and every configuration of :data:`CONFIGS` (aspect
ratios 1:1 to 1:64, up to 1024 x 4096, native and emulated products) is run one step at a
time exactly as there.  Per configuration this records the largest c_sigma, c_weyl and kappa
over its steps, and whether every final singular value lies inside the absolute model's
enclosure at c* (``msign.scalar.noise_trajectory`` from the run's own [x_min, x_max]):
containment is reported on these held-out runs only.

Beside the measurement, the first-order account of the output's bf16 store: X' = fl(P)
rounds each entry with a relative error of RMS u/sqrt(6) (round to nearest, mantissas spread
over their binade), independently, so E = X' - P behaves like an m x n matrix of independent
entries of RMS s = u rms(P) / sqrt(6), with ||E||_2 ~ s (sqrt(m) + sqrt(n)); and the
singular values of a nearly converged P, clustered at one, move by the edge of the
symmetric part of U^T E V, ~ sqrt(2 m) s.  With rho = ||P||_F / (sqrt(m) ||P||_2):

    c_weyl_store = rho (1 + sqrt(m/n)) / sqrt(6),    c_sigma_store = rho sqrt(m / (3 n)).

They predict the shape dependence of the store alone (m <= n); the Gram and Horner
intermediates (A = fl(X X^T), the stored polynomial in A) add to it, and the ratio
measured / store says by how much.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from msign import scalar
from msign.results import provenance, write_json

from ..common.cli import add_out
from ..common.matrices import families
from .rounding_model import U_BF16, final_inside, run_interval, run_one, schedule

#: (m, n, families, schedules): the held-out configurations, each under both GEMM paths.
CONFIGS = {
    "default": [
        (256, 256, ("gaussian", "power_law", "lowrank_noise"), ("jordan", "polar-express")),
        (128, 1024, ("gaussian", "power_law", "lowrank_noise"), ("jordan", "polar-express")),
        (64, 4096, ("gaussian", "power_law", "lowrank_noise"), ("jordan", "polar-express")),
        (512, 2048, ("gaussian", "power_law"), ("jordan", "polar-express")),
        (1024, 4096, ("gaussian",), ("jordan", "polar-express")),
    ],
    "smoke": [(8, 8, ("gaussian",), ("jordan",)), (4, 32, ("gaussian",), ("polar-express",))],
}
GEMMS = ("native", "emulated")
#: The constant ``polar-express-bf16`` is designed for (its steps fit the interval widened by
#: the model at c = 2): containment is also checked there.
C_DESIGN = 2.0


def store_prediction(m: int, n: int) -> dict[str, float]:
    """First-order constants of the output's bf16 store alone (module docstring) for a
    converged output (rho = 1, the largest the store term gets)."""
    m, n = min(m, n), max(m, n)
    return {"c_weyl_store": (1 + math.sqrt(m / n)) / math.sqrt(6),
            "c_sigma_store": math.sqrt(m / (3 * n))}


def contained(run: dict, name: str, c: float) -> bool | None:
    """Every final singular value inside the absolute model's enclosure at c (None: the run
    did not finish finite)."""
    if not run["steps"][-1]["finite"]:
        return None
    band = scalar.noise_trajectory(schedule(name), *run_interval(run), c * U_BF16)["band"][-1]
    return final_inside(run, band)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="default", choices=sorted(CONFIGS))
    ap.add_argument("--calibration", default="results/rounding/cpu.json",
                    help="the calibration study's results: c* is its largest c_sigma")
    add_out(ap, "results/rounding/heldout_cpu.json")
    args = ap.parse_args(argv)
    cal = json.loads(Path(args.calibration).read_text())
    c_star = cal["c_sigma"]["max"]
    rows = []
    jobs = [(m, n, fam, name, gemm) for m, n, fams, names in CONFIGS[args.configs]
            for fam in fams for name in names for gemm in GEMMS]
    mats: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    for m, n, fam, name, gemm in tqdm(jobs, desc="held-out configurations"):
        G = mats.setdefault((m, n), families(m, n))[fam]
        run = run_one(G, name, gemm)
        done = [s for s in run["steps"] if "c_sigma" in s]
        rows.append({"shape": [m, n], "aspect": f"1:{n // m}", "family": fam, "schedule": name,
                     "gemm": gemm, "steps": len(run["steps"]),
                     "finite": run["steps"][-1]["finite"],
                     "c_sigma_max": max((s["c_sigma"] for s in done), default=None),
                     "c_sigma_median": float(np.median([s["c_sigma"] for s in done]))
                     if done else None,
                     "c_weyl_max": max((s["c_weyl"] for s in done), default=None),
                     "kappa_max": max((s["kappa"] for s in done), default=None),
                     **store_prediction(m, n), "x_min": run["x_min"], "x_max": run["x_max"],
                     "contained_at_c_star": contained(run, name, c_star),
                     "contained_at_c_design": contained(run, name, C_DESIGN)})
    finite = [r for r in rows if r["finite"]]
    res = {**provenance(), "u": U_BF16, "calibration": args.calibration,
           "calibration_size": cal["size"], "c_star": c_star, "configs": args.configs,
           "rows": rows,
           "c_sigma_max_heldout": max(r["c_sigma_max"] for r in finite),
           "exceed_c_star": sum(r["c_sigma_max"] > c_star for r in finite),
           "contained": sum(bool(r["contained_at_c_star"]) for r in finite),
           "c_design": C_DESIGN,
           "contained_at_c_design": sum(bool(r["contained_at_c_design"]) for r in finite),
           "kappa_max_heldout": max(r["kappa_max"] for r in finite),
           "kappa_max_calibration": cal["kappa"]["max"],
           "finite_runs": len(finite), "runs": len(rows)}
    write_json(Path(args.out), res)
    print(summary(res))
    return res


def summary(res: dict) -> str:
    lines = [f"c* = {res['c_star']:.2f} (calibrated on {res['calibration_size']}); held out: "
             f"max c_sigma {res['c_sigma_max_heldout']:.2f}, {res['exceed_c_star']} of "
             f"{res['finite_runs']} finite runs above c*, {res['contained']} contained at c*, "
             f"{res['contained_at_c_design']} at c = {res['c_design']:g}; kappa max "
             f"{res['kappa_max_heldout']:.2f} (calibration {res['kappa_max_calibration']:.2f})",
             f"{'shape':<11}{'family':<15}{'schedule':<15}{'gemm':<10}{'c_sigma':>8}"
             f"{'store':>7}{'c_weyl':>8}{'store':>7}{'kappa':>7}  inside"]
    for r in res["rows"]:
        if not r["finite"]:
            lines.append(f"{'x'.join(map(str, r['shape'])):<11}{r['family']:<15}"
                         f"{r['schedule']:<15}{r['gemm']:<10}  blew up")
            continue
        lines.append(f"{'x'.join(map(str, r['shape'])):<11}{r['family']:<15}{r['schedule']:<15}"
                     f"{r['gemm']:<10}{r['c_sigma_max']:>8.2f}{r['c_sigma_store']:>7.2f}"
                     f"{r['c_weyl_max']:>8.2f}{r['c_weyl_store']:>7.2f}{r['kappa_max']:>7.2f}"
                     f"  {r['contained_at_c_star']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
