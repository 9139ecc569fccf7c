"""Where the bf16 rounding constant comes from: each of a step's three bf16 stores alone, and
the bound that accounts for them.

    python -m experiments.matrix.rounding_account [--configs default|smoke]

A quintic step X' = c0 X + B X, B = c1 A + c2 A^2, A = X X^T, rounds three results to bf16:
the Gram matrix A, the inner polynomial B and the output X'.  This study runs each
configuration's schedule step by step (every product in float64, so that the only errors
are the stores) and measures, per step,

    c_sigma[S] = max_i |sigma_i(X'_S) - sigma_i(p(X))| / (u ||p(X)||_2)

with only the stores S in {A}, {B}, {X'} rounded, and with all three (the step as bf16 runs
it, which also carries the trajectory on).  Beside it, the first-order account:

* A and B are near multiples of the identity once the singular values s_i have clustered,
  and their diagonals are stored with an error of up to h(v) = u 2^floor(log2 v), half a bf16
  spacing at the value v.  A diagonal error D moves a cluster's singular values by the
  eigenvalues of U^T D U, which are D's own entries: by up to
  s |c1 + 2 c2 s^2| h(s^2) through A and s h(|c1 s^2 + c2 s^4|) through B, whatever the
  shape.  With spread singular values each sigma_i sees a U-weighted mean of the m errors
  instead, which is smaller: the bound (max over the step's s_i) is a bound, tight only
  where the spectrum has clustered (a converging schedule's last steps).
* The output store, were its errors independent (relative RMS u / sqrt 6), would move a
  cluster by about sqrt(m / (3 n)) in units of u ||P|| (m <= n; rounding_heldout).  Once
  the iteration has converged they are not: the step's correction to most entries of X is
  below half a spacing, so the store rounds them back to X's own (bf16) values and undoes
  the step there.  ``snapped`` records the fraction of entries for which fl(P) == X.

Writes ``results/rounding/account_cpu.json``: per configuration and step, the singular
values' range, the four measured constants, the three predicted ones and ``snapped``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from msign.gemm import NATIVE
from msign.iterate import _horner, normalize
from msign.results import provenance, write_json

from ..common.cli import add_out
from ..common.matrices import families
from .rounding_model import U_BF16, horner_exact, schedule

CONFIGS = {
    "default": [(m, n, fam, name) for m, n in ((256, 256), (128, 1024), (64, 4096), (512, 2048))
                for fam in ("gaussian", "power_law") for name in ("polar-express", "jordan")],
    "smoke": [(8, 32, "gaussian", "polar-express"), (16, 16, "power_law", "jordan")],
}
STORES = ("A", "B", "out")


def bf16(T: torch.Tensor) -> torch.Tensor:
    return T.to(torch.bfloat16).double()


def step(X: torch.Tensor, c, stores: set[str]) -> torch.Tensor:
    """One odd-polynomial step in float64, rounding to bf16 only the results in ``stores``."""
    A = X @ X.mT
    A = bf16(A) if "A" in stores else A
    B = _horner(A, c, NATIVE)  # the engine's own Horner, here in float64
    B = bf16(B) if "B" in stores else B
    out = c[0] * X + B @ X
    return bf16(out) if "out" in stores else out


def h(v: np.ndarray) -> np.ndarray:
    """Half a bf16 spacing at |v|: the largest round-to-nearest error there."""
    v = np.abs(np.asarray(v, dtype=float))
    out = np.zeros_like(v)
    nz = v > 0
    out[nz] = U_BF16 * np.exp2(np.floor(np.log2(v[nz])))
    return out


def predicted(s: np.ndarray, c, m: int, n: int) -> dict[str, float]:
    """The account's three constants for singular values ``s`` of the step's input."""
    c0, c1, c2 = c[0], c[1], c[2] if len(c) > 2 else 0.0
    s2 = s * s
    p_max = float(np.abs(c0 * s + c1 * s * s2 + c2 * s * s2 * s2).max())
    scale = U_BF16 * p_max
    return {"A": float((s * np.abs(c1 + 2 * c2 * s2) * h(s2)).max() / scale),
            "B": float((s * h(c1 * s2 + c2 * s2 * s2)).max() / scale),
            "out": math.sqrt(min(m, n) / (3 * max(m, n)))}


def c_sigma(Xn: torch.Tensor, P: torch.Tensor) -> float:
    sp = torch.linalg.svdvals(P)
    return float((torch.linalg.svdvals(Xn) - sp).abs().max()) / (U_BF16 * float(sp[0]))


def run(G: torch.Tensor, name: str) -> list[dict]:
    sched = schedule(name)
    m, n = G.shape
    X = normalize(G.to(torch.bfloat16), sched.safety).double()
    rows = []
    for c in sched.step_coeffs():
        s = torch.linalg.svdvals(X).numpy()
        P = horner_exact(X, c)
        meas = {k: c_sigma(step(X, c, {k}), P) for k in STORES}
        snapped = float((step(X, c, {"out"}) == X).double().mean())
        Xn = step(X, c, set(STORES))
        rows.append({"s_min": float(s[-1]), "s_max": float(s[0]),
                     "measured": {**meas, "all": c_sigma(Xn, P)},
                     "predicted": predicted(s, c, m, n), "snapped": snapped})
        X = Xn
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="default", choices=sorted(CONFIGS))
    add_out(ap, "results/rounding/account_cpu.json")
    args = ap.parse_args(argv)
    out = []
    mats: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    for m, n, fam, name in tqdm(CONFIGS[args.configs], desc="configurations"):
        G = mats.setdefault((m, n), families(m, n))[fam]
        out.append({"shape": [m, n], "family": fam, "schedule": name, "steps": run(G, name)})
    res = {**provenance(), "u": U_BF16, "configs": args.configs, "runs": out,
           **summarize(out)}
    write_json(Path(args.out), res)
    print(report(res))
    return res


def summarize(runs: list[dict]) -> dict:
    """The account's checks: each store's bound holds at every step; at the last step of a
    converging schedule (a cluster) the Gram and polynomial bounds are tight."""
    steps = [st for r in runs for st in r["steps"]]
    ratio = {k: [st["measured"][k] / st["predicted"][k] for st in steps if st["predicted"][k]]
             for k in ("A", "B")}
    last = [r["steps"][-1] for r in runs if r["schedule"] == "polar-express"]
    return {
        "bound_holds": {k: int(sum(x <= 1 + 1e-9 for x in v)) for k, v in ratio.items()},
        "steps_checked": {k: len(v) for k, v in ratio.items()},
        "ratio_max": {k: max(v) for k, v in ratio.items()},
        "ratio_median": {k: float(np.median(v)) for k, v in ratio.items()},
        "converged_last_step": {
            "measured_all": [st["measured"]["all"] for st in last],
            "measured_A_plus_B": [st["measured"]["A"] + st["measured"]["B"] for st in last],
            "predicted_A_plus_B": [st["predicted"]["A"] + st["predicted"]["B"] for st in last],
            "measured_out": [st["measured"]["out"] for st in last],
            "independent_out": [st["predicted"]["out"] for st in last],
            "snapped": [st["snapped"] for st in last],
            "shapes": [r["shape"] for r in runs if r["schedule"] == "polar-express"]},
        "subadditive": int(sum(st["measured"]["all"] <= st["predicted"]["A"]
                               + st["predicted"]["B"] + st["measured"]["out"] + 1e-9
                               for st in steps)),
        "steps": len(steps),
        "max_step_all": max(st["measured"]["all"] for st in steps),
    }


def report(res: dict) -> str:
    lines = [f"bound of the Gram store holds at {res['bound_holds']['A']} of "
             f"{res['steps_checked']['A']} steps (measured / bound: median "
             f"{res['ratio_median']['A']:.2f}, max {res['ratio_max']['A']:.2f}); of the "
             f"polynomial store at {res['bound_holds']['B']} of {res['steps_checked']['B']} "
             f"(median {res['ratio_median']['B']:.2f}, max {res['ratio_max']['B']:.2f})",
             f"{'shape':<10}{'family':<11}{'schedule':<14}{'step':>4}{'s range':>16}"
             f"{'A':>6}{'pA':>6}{'B':>6}{'pB':>6}{'out':>6}{'pout':>6}{'all':>6}"]
    for r in res["runs"]:
        for i, st in enumerate(r["steps"]):
            me, pr = st["measured"], st["predicted"]
            lines.append(f"{'x'.join(map(str, r['shape'])):<10}{r['family']:<11}"
                         f"{r['schedule']:<14}{i + 1:>4}"
                         f"{st['s_min']:>8.3f}-{st['s_max']:<7.3f}"
                         + "".join(f"{v:>6.2f}" for v in (me["A"], pr["A"], me["B"], pr["B"],
                                                          me["out"], pr["out"], me["all"])))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
