"""Precision study: where each schedule ends in fp64/fp32/(tf32)/fp16/bf16, and which break.

    python -m experiments.matrix.precision [--device cpu] [--dtypes fp64,fp32,fp16,bf16]

For every schedule, precision and normalization it runs the full schedule on test matrices
(Gaussian, prescribed spectra, low rank + noise, real captured gradients) and records the
final max |sigma - 1|, the distance to the SVD polar factor, the largest singular value seen
along the way, and a verdict:

- ``blow-up``: a non-finite iterate or a singular value above 2 at the end (the rule of
  every study, ``experiments.common.matrices.blew_up``);
- ``stall``: finite, but the error is more than 10x the same run's fp64 error and above 1e-2;
- ``ok`` otherwise.

Normalizations: ``fro`` (divide by safety * ||G||_F, the default), ``schatten4``
((sum s^4)^(1/4), tighter and free), ``power-k`` (k power-iteration steps on G^T G, an
estimate of ||G||_2 from below: the tightest, but it can leave sigma_max / nu slightly above
1, outside every schedule's design interval), and ``aol`` (Frobenius, then the AOL row
scaling of ``msign.iterate.aol``: not a division by one number, so ``x_min`` is the smallest
singular value of the preconditioned matrix).  ``x_min`` is the smallest normalized singular
value each normalization hands the schedule: the tighter nu, the larger x_min.  A schedule
designed for AOL (``turbo-muon``) runs under ``aol`` only.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
from tqdm import tqdm

from msign import get_schedule
from msign.api import as_dtype
from msign.gemm import resolve_gemm
from msign.iterate import iterate, run_schedule
from msign.metrics import preconditioned_singular_values
from msign.results import provenance, write_json

from ..common.cli import add_device, add_gemm, add_out
from ..common.matrices import (
    SCHEDULED,
    blew_up,
    captured,
    families,
    finite_errors,
    rank_reference,
)

# Not msign.SCHEDULES / msign.schedules.NORMALIZATIONS: the schedules this study runs, and its
# normalization rules, which add power-iteration estimates to the two a Schedule supports.
STUDIED = [*SCHEDULED, "deepseek-v4", "turbo-muon", "cans"]
NORM_RULES = ["fro", "schatten4", "power-2", "power-8", "aol"]


def rules_for(name: str) -> list[str]:
    """The normalization rules a schedule runs under: all, or only its own preconditioning."""
    pre = get_schedule(name).precondition
    return NORM_RULES if pre is None else [pre]


def power_norm(G: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
    """k power-iteration steps on G^T G from a seeded random start: ||G v_k|| <= ||G||_2."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(G.shape[-1], 1, generator=g, dtype=torch.float64).to(G.device)
    G64 = G.double()
    for _ in range(k):
        v = G64.mT @ (G64 @ v)
        v = v / v.norm()
    return (G64 @ v).norm()


def run(G: torch.Tensor, s64: torch.Tensor, name: str, dtype: torch.dtype,
        norm: str, gemm: str = "auto") -> tuple[torch.Tensor, float, float]:
    """Run ``name`` on G (singular values ``s64``) in ``dtype`` with normalization ``norm``.

    Returns (X, x_min, max sigma of X).
    """
    s = get_schedule(name)
    path = resolve_gemm(gemm, dtype, G.device)
    if norm == "aol":
        X = run_schedule(G.to(dtype), dataclasses.replace(s, precondition="aol"), gemm=path)
        x = preconditioned_singular_values(G, "aol")
        x_min = float(x[x > 0].min())
        finite = bool(torch.isfinite(X).all())
        return X, x_min, float(torch.linalg.svdvals(X.double()).max()) if finite else \
            float("inf")
    if norm in ("fro", "schatten4"):
        s = dataclasses.replace(s, normalization=norm)
        nu = s.divisor(s64.cpu().numpy())
        X = run_schedule(G.to(dtype), s, gemm=path)
    else:
        nu = s.safety * float(power_norm(G, int(norm.split("-")[1])))
        X = iterate((G.double() / nu).to(dtype), s.step_coeffs(), gemm=path)
    finite = bool(torch.isfinite(X).all())
    top = float(torch.linalg.svdvals(X.double()).max()) if finite else float("inf")
    return X, float(s64[s64 > 0].min() / nu), top


def verdict(e: dict, err64: float | None) -> str:
    if blew_up(e):
        return "blow-up"
    err = e["max_sigma_err"]
    if err64 is not None and err > max(10 * err64, 1e-2):
        return "stall"
    return "ok"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    add_device(ap)
    ap.add_argument("--dtypes", default="fp64,fp32,fp16,bf16")
    ap.add_argument("--size", default="256x512")
    ap.add_argument("--gradients", default="results/gradients/cpu.npz",
                    help="captured matrices to add ('' for none)")
    add_gemm(ap)
    add_out(ap)
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    m, n = (int(v) for v in args.size.split("x"))
    fams = families(m, n)
    mats = {k: fams[k] for k in ("gaussian", "kappa1e4", "lowrank_noise")}
    if args.gradients:
        mats.update({k: v for k, v in captured(args.gradients).items() if "step300" in k})
    res = {**provenance(dev), "size": [m, n], "gemm": args.gemm, "rows": []}
    fp64: dict[tuple, float | None] = {}
    for dname in args.dtypes.split(","):
        dtype = torch.float32 if dname == "tf32" else as_dtype(dname, "--dtypes")
        torch.backends.cuda.matmul.allow_tf32 = dname == "tf32"
        for fam, G in tqdm(mats.items(), desc=dname):
            G = (G.mT if G.shape[0] > G.shape[1] else G).contiguous().to(dev)
            U, S, Vh = torch.linalg.svd(G.double(), full_matrices=False)
            polar, polar_r = U @ Vh, rank_reference(G.double())
            for name in STUDIED:
                for norm in rules_for(name):
                    X, x_min, top = run(G, S, name, dtype, norm, args.gemm)
                    e = finite_errors(X, polar, G.double(), polar_r)
                    if dname == "fp64":
                        fp64[fam, name, norm] = e["max_sigma_err"]
                    res["rows"].append({
                        "dtype": dname, "family": fam, "schedule": name, "normalization": norm,
                        "x_min": x_min, "max_sigma_err": e["max_sigma_err"],
                        "dist_svd": e["dist_svd"], "dist_rank": e["dist_rank"],
                        "nuclear_alignment": e["nuclear_alignment"],
                        "alignment": e["alignment"],
                        "max_sigma": top, "verdict": verdict(e, fp64.get((fam, name, norm)))})
    out = Path(args.out or f"results/precision/{dev.type}_{args.dtypes.replace(',', '-')}.json")
    write_json(out, res)
    print(summary(res))
    return res


def summary(res: dict) -> str:
    """Per dtype and normalization: each schedule's median error and its verdict counts."""
    lines = [f"{'dtype':<6}{'normalization':<14}{'schedule':<20}{'median err':>12}"
             f"{'worst err':>12}  verdicts"]
    keys = dict.fromkeys((r["dtype"], r["normalization"], r["schedule"]) for r in res["rows"])
    for dt, norm, name in keys:
        rows = [r for r in res["rows"]
                if (r["dtype"], r["normalization"], r["schedule"]) == (dt, norm, name)]
        errs = sorted(r["max_sigma_err"] for r in rows if r["max_sigma_err"] is not None)
        counts = {v: sum(r["verdict"] == v for r in rows) for v in ("ok", "stall", "blow-up")}
        med = f"{errs[len(errs) // 2]:.2g}" if errs else "-"
        worst = f"{errs[-1]:.2g}" if errs else "-"
        lines.append(f"{dt:<6}{norm:<14}{name:<20}{med:>12}{worst:>12}  "
                     + " ".join(f"{k}={v}" for k, v in counts.items() if v))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
