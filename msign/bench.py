"""Benchmarks that report ratios measured in one run (``python -m msign bench``).

For each shape: median time per call of each method; ``ratio_torch_ns`` = our time /
torch.optim.Muon's Newton-Schulz at the same number of steps (bf16 only, the one dtype
torch's Newton-Schulz computes in); ``floor_fraction`` = the call's FLOPs at the plain
square-GEMM rate measured in the same run / our time; ``ratio_svd`` = our time /
torch.linalg.svd's.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .api import apply_method
from .iterate import restarts_at
from .registry import METHODS
from .results import provenance

__all__ = ["median_time", "schedule_flops", "run", "format_rows"]

JORDAN = (3.4445, -4.7750, 2.0315)


def median_time(fn: Callable[[], object], device: torch.device, repeat: int) -> float:
    """Median wall time of ``fn`` over ``repeat`` runs after one warm-up (CUDA-synchronized)."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def schedule_flops(m: int, n: int, coeffs: Sequence[Sequence[float]]) -> float:
    """Engine FLOPs on one (m, n) matrix, m <= n: Gram and apply 2m^2n each, Horner 2m^3 each."""
    return float(sum(4 * m * m * n + 2 * m**3 * (len(c) - 2) for c in coeffs if len(c) >= 2))


def gram_flops(m: int, n: int, coeffs: Sequence[Sequence[float]],
               restart: int | None) -> float:
    """FLOPs of :func:`msign.iterate.iterate_gram` on one (m, n) matrix, m <= n."""
    f = 2.0 * m * m * n  # R = X X^T
    fresh = True  # Q is still the identity (not formed)
    for i, c in enumerate(coeffs):
        if restarts_at(i, restart) and not fresh:
            f += 4.0 * m * m * n  # X = Q X, R = X X^T
            fresh = True
        f += 2.0 * m**3 * (len(c) - 2)  # Horner for h(R)
        f += 0.0 if fresh else 2.0 * m**3  # Q = H Q
        fresh = False
        if i + 1 < len(coeffs) and not restarts_at(i + 1, restart):
            f += 4.0 * m**3  # R = H R H
    return f + 2.0 * m * m * n  # Q X


def _torch_ns(G: torch.Tensor, steps: int) -> torch.Tensor:
    from torch.optim._muon import _zeropower_via_newtonschulz

    if G.dim() == 2:
        return _zeropower_via_newtonschulz(G, JORDAN, steps, 1e-7)
    return torch.stack([_zeropower_via_newtonschulz(g, JORDAN, steps, 1e-7) for g in G])


def run(shapes: Sequence[Sequence[int]], dtype: torch.dtype, device: str = "cpu",
        methods: Sequence[str] = ("jordan", "you", "polar-express", "newton", "qdwh", "svd"),
        repeat: int = 5, matmul_size: int | None = None,
        progress: Callable[[Any], Any] = iter) -> dict[str, Any]:
    """Time ``methods`` on Gaussian matrices of each shape; every ratio from this one run."""
    dev = torch.device(device)
    k = matmul_size or (8192 if dev.type == "cuda" else 1024)
    A = torch.randn(k, k, device=dev, dtype=dtype)
    rate = 2 * k**3 / median_time(lambda: A @ A, dev, repeat)
    ref_ok = dtype == torch.bfloat16
    rows = []
    for shape in progress(shapes):
        G = torch.randn(*shape, device=dev).to(dtype)
        *batch, m, n = shape
        b = batch[0] if batch else 1
        t_svd = median_time(lambda: torch.linalg.svd(G.float(), full_matrices=False),  # noqa: B023
                            dev, max(1, repeat // 2))
        t_ref: dict[int, float] = {}
        for name in methods:
            method = METHODS[name]
            info: dict = {}
            apply_method(G, method, info=info)
            t = median_time(lambda: apply_method(G, method), dev, repeat)  # noqa: B023
            row = {"shape": list(shape), "method": name, "steps": info.get("iterations"),
                   "time_s": t, "ratio_svd": t / t_svd}
            if method.schedule is not None:
                steps = info["iterations"]
                flops = b * schedule_flops(min(m, n), max(m, n), method.schedule.step_coeffs(steps))
                row.update(flops=flops, floor_fraction=flops / rate / t)
                if ref_ok:
                    if steps not in t_ref:
                        t_ref[steps] = median_time(lambda: _torch_ns(G, steps), dev,  # noqa: B023
                                                   repeat)
                    row["ratio_torch_ns"] = t / t_ref[steps]
            rows.append(row)
    return {**provenance(dev), "dtype": str(dtype).replace("torch.", ""),
            "matmul_rate_tflops": rate / 1e12, "matmul_size": k, "rows": rows}


def format_rows(res: dict[str, Any]) -> str:
    nan = float("nan")
    lines = [f"{res['device']}, {res['dtype']}, torch {res['torch']}: plain matmul "
             f"{res['matmul_rate_tflops']:.2f} TFLOP/s ({res['matmul_size']}^3 in this run)",
             f"{'shape':<16} {'method':<19} {'steps':>5} {'ms':>10} {'/torchNS':>8} "
             f"{'floor%':>7} {'/svd':>7}"]
    for r in res["rows"]:
        lines.append(
            f"{'x'.join(map(str, r['shape'])):<16} {r['method']:<19} {str(r['steps']):>5} "
            f"{1e3 * r['time_s']:>10.3f} {r.get('ratio_torch_ns', nan):>8.2f} "
            f"{100 * r.get('floor_fraction', nan):>7.1f} {r['ratio_svd']:>7.3f}")
    return "\n".join(lines)
