"""Does QDWH's final Newton-Schulz polish step (jax.lax.linalg.qdwh has one) help?

    python -m experiments.matrix.qdwh_polish [--out results/qdwh_polish/cpu.json]

Runs msign.classical.qdwh with and without ``polish`` in fp32 and fp64 on tall, square and
wide matrices with geometric spectra (kappa 1e1, 1e3, 1e6) and on Gaussians, and records
max |sigma - 1| and the relative distance to the float64 SVD polar factor for both.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from tqdm import tqdm

from msign import classical, metrics
from msign.exact import svd_msign
from msign.results import provenance, write_json

from ..common.cli import add_out

SHAPES = [(256, 256), (512, 128), (1024, 256)]
KAPPAS = [1e1, 1e3, 1e6]


def matrices(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for m, n in SHAPES:
        k = min(m, n)
        U, _ = torch.linalg.qr(torch.randn(m, k, generator=g, dtype=torch.float64))
        V, _ = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=torch.float64))
        for kappa in KAPPAS:
            s = torch.logspace(0, -np.log10(kappa), k, dtype=torch.float64)
            out[f"{m}x{n}-kappa{kappa:g}"] = (U * s) @ V.T
        out[f"{m}x{n}-gaussian"] = torch.randn(m, n, generator=g, dtype=torch.float64)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    add_out(ap, "results/qdwh_polish/cpu.json")
    args = ap.parse_args(argv)
    rows = []
    for name, G in tqdm(matrices().items(), desc="matrices"):
        ref = svd_msign(G)
        for dtype in (torch.float32, torch.float64):
            row = {"matrix": name, "dtype": str(dtype).replace("torch.", "")}
            for polish in (False, True):
                X = classical.qdwh(G.to(dtype), polish=polish)
                row["polish" if polish else "plain"] = {
                    "max_sigma_err": float(metrics.max_sigma_error(X)),
                    "dist_svd": float(metrics.relative_distance(X, ref))}
            rows.append(row)
    summary = {}
    for dt in ("float32", "float64"):
        r = [x for x in rows if x["dtype"] == dt]
        ratio = [x["polish"]["max_sigma_err"] / x["plain"]["max_sigma_err"] for x in r]
        dist = [x["polish"]["dist_svd"] / x["plain"]["dist_svd"] for x in r]
        summary[dt] = {"median_sigma_err_ratio": statistics.median(ratio),
                       "lower_in": sum(v < 1 for v in ratio), "of": len(r),
                       "median_dist_ratio": statistics.median(dist)}
    res = {**provenance(), "rows": rows, "summary": summary}
    write_json(args.out, res)
    for dt, s in summary.items():
        print(f"{dt}: polish / plain max|s-1| median {s['median_sigma_err_ratio']:.3f} "
              f"(lower in {s['lower_in']}/{s['of']}), distance to polar factor median "
              f"{s['median_dist_ratio']:.4f}")
    return res


if __name__ == "__main__":
    main()
