"""The structural null direction of a captured gradient, and what each method does with it.

    python -m experiments.matrix.null_direction [--gradients results/gradients/cpu.npz]

The step-300 gradients of the Shakespeare GPT have one singular value at ~1e-7 of their
Frobenius norm: the LayerNorm before the layer removes the all-ones direction of its input,
so the gradient has no component along it.  Its numerical rank is therefore n - 1 at fp32's
tolerance (max(m, n) eps_fp32 sigma_1, numpy's rule; the gradient is computed in fp32) and n
in float64.  msign's definition maps such a direction to zero: the reference a method is
measured against is U_r V_r^T, not the full-rank U V^T, whose last pair is amplified noise.

For ``--key`` this writes (``results/null_direction/cpu.json``): the ranks, sigma_min /
||G||_F and the cosine of the smallest right singular vector with the all-ones vector; for
each method in float64 (and the schedules in bf16, products emulated in fp32 so the numbers do
not depend on which GEMM path a CPU takes) the distances to both references, the scale-free
alignment <G, X>/(||G||_* ||X||_2), ||X v_min|| (how far the null direction is lifted) and
the fraction of X v_min in G's column space; and the largest gap between u_i^T X_k v_i and the
scalar map f_k(x_i) after the last Polar Express step, in float64 and bf16.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from msign import get_schedule, metrics, msign
from msign.iterate import iterate, start
from msign.results import provenance, write_json

from ..common.cli import add_out
from ..common.matrices import GRAD_KEY, RANK_DTYPE, rank_reference

#: Methods in float64; the schedules among them also in bf16.
METHODS = ("polar-express", "polar-express-bf16", "jordan", "newton", "qdwh")
SCHEDULES = ("polar-express", "polar-express-bf16", "jordan")


def iterate_values(G: np.ndarray, name: str, dtype: torch.dtype,
                   steps: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run schedule ``name`` on G in ``dtype``; return x and each iterate along G's pairs.

    Iterate k's value along singular pair i is ``u_i^T X_k v_i`` (G = U S V^T in float64),
    to be compared with the scalar composite f_k at ``x_i = s_i / divisor(s)``; in
    exact arithmetic they coincide, so the difference is rounding.
    """
    sched = get_schedule(name)
    G64 = torch.as_tensor(np.asarray(G, dtype=np.float64))
    if G64.shape[0] > G64.shape[1]:
        G64 = G64.mT
    U, S, Vh = torch.linalg.svd(G64, full_matrices=False)
    x = S.numpy() / sched.divisor(S.numpy())
    X, A = start(G64.to(dtype), sched)
    vals = []
    for c in sched.step_coeffs(steps):
        X, A = iterate(X, [c], A), None
        vals.append(torch.einsum("ij,jk,ki->i", U.mT, X.double(), Vh.mT).numpy())
    return x, vals


def method_row(G64: torch.Tensor, X: torch.Tensor, ref: torch.Tensor, ref_r: torch.Tensor,
               U: torch.Tensor, v_min: torch.Tensor) -> dict[str, float]:
    X = X.double()
    w = X @ v_min
    return {"dist_svd": float(metrics.relative_distance(X, ref)),
            "dist_rank": float(metrics.relative_distance(X, ref_r)),
            "alignment": float(metrics.alignment(G64, X)),
            "null_lift": float(w.norm()),
            "null_in_col": float((U.mT @ w).norm() / w.norm().clamp_min(1e-300))}


def study(G: np.ndarray) -> dict:
    # as stored (out, in): the null direction is a right singular vector, in the input space
    G64 = torch.as_tensor(np.asarray(G, dtype=np.float64))
    U, S, Vh = torch.linalg.svd(G64, full_matrices=False)
    ref, ref_r = U @ Vh, rank_reference(G64)
    out = {"shape": list(G64.shape), "rank_fp64": int(metrics.numerical_rank(G64)),
           "rank_dtype": str(RANK_DTYPE).removeprefix("torch."),
           "rank": int(metrics.numerical_rank(G64, RANK_DTYPE)),
           "sigma_min_over_fro": float(S[-1] / S.norm()),
           "ones_cos": float(Vh[-1].sum().abs() / math.sqrt(len(S))), "methods": {}}
    for name in METHODS:
        rows = {"fp64": method_row(G64, msign(G64, name), ref, ref_r, U, Vh[-1])}
        if name in SCHEDULES:
            X = msign(G64, name, compute_dtype=torch.bfloat16, gemm="emulated")
            rows["bf16"] = method_row(G64, X, ref, ref_r, U, Vh[-1])
        out["methods"][name] = rows
    steps = get_schedule("polar-express").resolve_steps(None)
    out["iterate_gap"] = {}
    for dtype in (torch.float64, torch.bfloat16):
        x, vals = iterate_values(G, "polar-express", dtype, steps)
        gap = np.abs(vals[-1] - get_schedule("polar-express").scalar_map(x, steps))
        out["iterate_gap"][str(dtype).removeprefix("torch.")] = float(gap.max())
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gradients", default="results/gradients/cpu.npz")
    ap.add_argument("--key", default=GRAD_KEY, help="the captured matrix (npz key)")
    add_out(ap, "results/null_direction/cpu.json")
    args = ap.parse_args(argv)
    with np.load(args.gradients) as npz:
        if args.key not in npz.files:
            raise SystemExit(f"--key {args.key!r} is not in {args.gradients}")
        G = npz[args.key]
    res = {**provenance(), "gradients": args.gradients, "key": args.key, **study(G)}
    write_json(Path(args.out), res)
    print(f"{args.key}: rank {res['rank']} at {res['rank_dtype']} ({res['rank_fp64']} in "
          f"float64), sigma_min/||G||_F = {res['sigma_min_over_fro']:.2g}")
    for name, rows in res["methods"].items():
        for dt, r in rows.items():
            print(f"{name:<19} {dt:<5} to U V^T {r['dist_svd']:.2e}  to U_r V_r^T "
                  f"{r['dist_rank']:.2e}  alignment {r['alignment']:.4f}  "
                  f"||X v_min|| {r['null_lift']:.2g}")
    return res


if __name__ == "__main__":
    main()
