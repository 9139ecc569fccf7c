"""Error after every step of every method, on realistic spectra, in one or more dtypes.

    python -m experiments.matrix.convergence [--dtypes fp64,fp32,bf16] [--device cpu] \
        [--size 256x512]

For each matrix family and method: after each step, max |sigma - 1|, ||X X^T - I||_F (small
side), the relative distance to the SVD polar factor (``dist_svd``, full float64 rank) and to
U_r V_r^T at the fp32 numerical rank (``dist_rank``: the captured gradients have a structural
null direction no method should map to one), the alignments <G, X>/||G||_* and
<G, X>/(||G||_* ||X||_2), and -- for schedules -- the largest
gap between the measured singular values of X_k and the scalar-map prediction
f_k(sigma / nu): that gap is rounding, and it says how much each precision adds.  Writes
results/convergence/<device>_<dtypes>.json and a PNG of error vs matmul count per family.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm import tqdm

from msign import METHODS, metrics
from msign.api import apply_method, as_dtype
from msign.exact import svd_msign
from msign.gemm import resolve_gemm
from msign.iterate import iterate, normalize
from msign.results import provenance, write_json

from ..common.cli import add_device, add_gemm, add_out
from ..common.matrices import (
    CLASSICAL,
    SCHEDULED,
    captured,
    errors,
    families,
    rank_reference,
)


def run_schedule_steps(G: torch.Tensor, name: str, dtype: torch.dtype, steps: int,
                       ref: torch.Tensor, gemm: str = "auto",
                       ref_r: torch.Tensor | None = None) -> list[dict]:
    sched = METHODS[name].schedule
    s64 = torch.linalg.svdvals(G).cpu().numpy()
    path = resolve_gemm(gemm, dtype, G.device)
    X = normalize(G.to(dtype), sched.safety)
    rows = []
    for k, c in enumerate(sched.step_coeffs(steps), start=1):
        X = iterate(X, [c], gemm=path)
        sv = torch.linalg.svdvals(X.double()).cpu()
        pred = torch.from_numpy(np.asarray(sched.scalar_map(s64 / sched.divisor(s64), k)))
        gap = float((sv - pred.sort(descending=True).values).abs().max())
        rows.append({"step": k, "matmuls": sched.matmuls(k), **errors(X, ref, ref_r),
                     "nuclear_alignment": float(metrics.nuclear_alignment(G, X)),
                     "alignment": float(metrics.alignment(G, X)), "scalar_map_gap": gap})
    return rows


def run_classical(G: torch.Tensor, name: str, dtype: torch.dtype, ref: torch.Tensor,
                  max_steps: int = 12, ref_r: torch.Tensor | None = None) -> list[dict]:
    rows = []
    for k in range(1, max_steps + 1):
        try:
            X = apply_method(G.to(dtype), METHODS[name], k)  # fp32/fp64: native products
        except ValueError:  # newton on singular input
            break
        rows.append({"step": k, "matmuls": None, **errors(X, ref, ref_r),
                     "nuclear_alignment": float(metrics.nuclear_alignment(G, X)),
                     "alignment": float(metrics.alignment(G, X))})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dtypes", default="fp64,fp32,bf16")
    add_device(ap)
    ap.add_argument("--size", default="256x512")
    add_out(ap, None)
    ap.add_argument("--gradients", help="an .npz from experiments.lm.capture: add its matrices")
    add_gemm(ap)
    args = ap.parse_args()
    m, n = (int(v) for v in args.size.split("x"))
    dev = torch.device(args.device)
    fams = families(m, n)
    if args.gradients:
        fams.update(captured(args.gradients))
    res = {**provenance(dev), "size": [m, n], "gemm": args.gemm, "runs": []}
    for dname in args.dtypes.split(","):
        # tf32: float32 storage, TensorFloat-32 matmuls (CUDA only).
        dtype = torch.float32 if dname == "tf32" else as_dtype(dname, "--dtypes")
        torch.backends.cuda.matmul.allow_tf32 = dname == "tf32"
        for fam, G64 in tqdm(fams.items(), desc=dname):
            if G64.shape[0] > G64.shape[1]:  # work on the small Gram side; errors are equal
                G64 = G64.mT.contiguous()
            ref, ref_r = svd_msign(G64).to(dev), rank_reference(G64).to(dev)
            G = G64.to(dev)
            for name in SCHEDULED:
                default = METHODS[name].schedule.resolve_steps(None)
                rows = run_schedule_steps(G, name, dtype, max(default, 10), ref, args.gemm,
                                          ref_r)
                res["runs"].append({"dtype": dname, "family": fam, "method": name,
                                    "default_steps": default, "steps": rows})
            if dtype in (torch.float32, torch.float64):
                for name in CLASSICAL:
                    rows = run_classical(G, name, dtype, ref, ref_r=ref_r)
                    res["runs"].append({"dtype": dname, "family": fam, "method": name,
                                        "default_steps": len(rows), "steps": rows})
    out = args.out or f"results/convergence/{dev.type}_{args.dtypes.replace(',', '-')}"
    write_json(out + ".json", res)
    plot(res, out + ".png")
    print(summary(res))


def summary(res: dict) -> str:
    lines = [f"max|s-1| at each method's default steps, and the largest gap between measured "
             f"singular values and the scalar-map prediction; {res['device']}"]
    for r in res["runs"]:
        if not r["steps"]:
            continue
        last = r["steps"][min(r["default_steps"], len(r["steps"])) - 1]
        gaps = [s["scalar_map_gap"] for s in r["steps"] if "scalar_map_gap" in s]
        gap = f"{max(gaps):.1e}" if gaps else "-"
        lines.append(f"{r['dtype']:<5} {r['family']:<14} {r['method']:<19} "
                     f"steps={last['step']:<3} max|s-1|={last['max_sigma_err']:.2e} gap={gap}")
    return "\n".join(lines)


def plot(res: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fams = list(dict.fromkeys(r["family"] for r in res["runs"]))
    dts = list(dict.fromkeys(r["dtype"] for r in res["runs"]))
    fig, axes = plt.subplots(len(dts), len(fams), figsize=(3.2 * len(fams), 2.8 * len(dts)),
                             squeeze=False, sharey=True)
    for r in res["runs"]:
        if not r["steps"] or r["steps"][0]["matmuls"] is None:
            continue
        ax = axes[dts.index(r["dtype"])][fams.index(r["family"])]
        ax.semilogy([s["matmuls"] for s in r["steps"]],
                    [max(s["max_sigma_err"], 1e-17) for s in r["steps"]], label=r["method"])
    for i, d in enumerate(dts):
        for j, f in enumerate(fams):
            axes[i][j].set_title(f"{f}, {d}", fontsize=8)
            axes[i][j].set_xlabel("matmuls", fontsize=7)
    axes[0][0].set_ylabel("max |sigma - 1|")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
