"""Time per call of every msign method vs torch.optim.Muon's Newton-Schulz and the matmul rate.

    python -m experiments.timing [--device cuda] [--dtype bf16] [--out results/timing/NAME.json]

For each shape: median time per call of each method; ``ratio_torch_ns`` = our time /
torch.optim.Muon's Newton-Schulz time at the same number of steps (5 for jordan, else
the method's steps with the Jordan coefficients; only for bf16, the one dtype torch's
Newton-Schulz computes in); ``floor_fraction`` = (FLOPs of the call
at the plain matmul rate measured in this run) / (our time), i.e. the share of the
hardware's GEMM rate achieved; and ``ratio_svd`` = our time / torch.linalg.svd's.
All ratios come from one process and one run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from tqdm import tqdm

from msign.api import apply_method, as_dtype
from msign.registry import METHODS
from msign.results import provenance, write_json

SHAPES = {"cpu": [(512, 512), (256, 1024), (256, 2048), (8, 256, 256), (1024, 4096)],
          "cuda": [(1024, 1024), (4096, 4096), (1024, 4096), (1024, 8192), (16, 1024, 1024),
                   (8192, 8192)]}
METHODS_TIMED = ["jordan", "you", "polar-express", "cubic", "quintic", "newton", "qdwh", "svd"]


def bench(fn, device: torch.device, repeat: int) -> float:
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def schedule_flops(m: int, n: int, coeffs) -> float:
    """Engine FLOPs on one (m, n) matrix, m <= n: Gram and apply 2m^2n each, Horner 2m^3 each."""
    total = 0.0
    for c in coeffs:
        if len(c) >= 2:
            total += 2 * m * m * n * 2 + 2 * m**3 * (len(c) - 2)
    return total


def torch_ns(G: torch.Tensor, steps: int) -> torch.Tensor:
    from torch.optim._muon import _zeropower_via_newtonschulz

    coeffs = (3.4445, -4.7750, 2.0315)
    if G.dim() == 2:
        return _zeropower_via_newtonschulz(G, coeffs, steps, 1e-7)
    return torch.stack([_zeropower_via_newtonschulz(g, coeffs, steps, 1e-7) for g in G])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None, help="default: bf16 on cuda, fp32 on cpu")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    dev = torch.device(args.device)
    dtype = as_dtype(args.dtype or ("bf16" if dev.type == "cuda" else "fp32"), "--dtype")
    out = args.out or f"results/timing/{dev.type}_{str(dtype).replace('torch.', '')}.json"

    # The plain matmul rate: a square GEMM big enough to saturate the device.
    k = 8192 if dev.type == "cuda" else 1024
    A = torch.randn(k, k, device=dev, dtype=dtype)
    t_mm = bench(lambda: A @ A, dev, args.repeat)
    rate = 2 * k**3 / t_mm
    rows = []
    for shape in tqdm(SHAPES[dev.type], desc="shapes"):
        G = torch.randn(*shape, device=dev, dtype=torch.float32).to(dtype)
        *batch, m, n = shape
        b = batch[0] if batch else 1
        small, big = min(m, n), max(m, n)
        ref_ok = dtype == torch.bfloat16
        t_torch5 = bench(lambda: torch_ns(G, 5), dev, args.repeat) if ref_ok else None  # noqa: B023
        t_svd = bench(lambda: torch.linalg.svd(G.float(), full_matrices=False), dev,  # noqa: B023
                      max(1, args.repeat // 2))
        for name in METHODS_TIMED:
            method = METHODS[name]
            info: dict = {}
            apply_method(G, method, info=info)
            t = bench(lambda: apply_method(G, method), dev, args.repeat)  # noqa: B023
            row = {"shape": list(shape), "method": name, "time_s": t, "ratio_svd": t / t_svd}
            if method.schedule is not None:
                steps = info["iterations"]
                flops = b * schedule_flops(small, big, method.schedule.step_coeffs(steps))
                row.update(steps=steps, flops=flops, floor_fraction=flops / rate / t,
                           achieved_tflops=flops / t / 1e12)
                if ref_ok:
                    t_ref = t_torch5 if steps == 5 else bench(
                        lambda: torch_ns(G, steps), dev, args.repeat)  # noqa: B023
                    row["ratio_torch_ns"] = t / t_ref
            else:
                row.update(steps=info.get("iterations"))
            rows.append(row)
    res = {**provenance(dev), "dtype": str(dtype), "matmul_rate_tflops": rate / 1e12,
           "matmul_size": k, "rows": rows}
    write_json(out, res)
    print(f"{res['device']}, {res['dtype']}, torch {res['torch']}: plain matmul "
          f"{rate / 1e12:.1f} TFLOP/s ({k}^3)")
    print(f"{'shape':<16} {'method':<14} {'steps':>5} {'ms':>9} {'/torchNS':>8} "
          f"{'floor%':>7} {'/svd':>7}")
    for r in rows:
        print(f"{'x'.join(map(str, r['shape'])):<16} {r['method']:<14} {str(r['steps']):>5} "
              f"{1e3 * r['time_s']:>9.3f} {r.get('ratio_torch_ns', float('nan')):>8.2f} "
              f"{100 * r.get('floor_fraction', float('nan')):>7.1f} {r['ratio_svd']:>7.3f}")


if __name__ == "__main__":
    main()
