"""Benchmarks that report ratios measured in one run (``python -m msign bench``).

For each shape: median time per call of each method; ``ratio_torch_ns`` = our time /
torch.optim.Muon's Newton-Schulz at the same number of steps (bf16 only, the one dtype
torch's Newton-Schulz computes in; :func:`torch_newton_schulz` is our transcription of its
rule, so a change of torch's private helper cannot break the benchmark);
``floor_fraction`` = the call's FLOPs (:func:`msign.iterate.cost`, the path that ran) at
the plain square-GEMM rate measured in the same run / our time; ``floor_fraction_shape`` the
same at the rate of the shape's own three products (X X^T, A A, B X of one quintic step, timed
in the run), the floor that shape can reach; ``ratio_svd`` = our time / torch.linalg.svd's.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .api import apply_method
from .gemm import resolve_gemm
from .registry import METHODS
from .results import provenance
from .schedules import get_schedule

__all__ = ["sync", "median_time", "torch_newton_schulz", "run", "format_rows"]

JORDAN = get_schedule("jordan").coeffs[0]


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously); a no-op on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn: Callable[[], object], device: torch.device, repeat: int) -> float:
    """Median wall time of ``fn`` over ``repeat`` runs after one warm-up (device-synchronized)."""
    fn()
    sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved_ratios(fns: Sequence[Callable[[], object]], device: torch.device,
                       repeat: int) -> tuple[list[float], list[float]]:
    """Median time of each of ``fns`` and of its ratio to ``fns[0]``, timed in rounds that run
    every function once, one after another: each ratio comes from one round's machine state,
    so load that drifts between rounds (a shared CPU) cancels out of it."""
    for fn in fns:
        fn()
    sync(device)
    rounds = []
    for _ in range(repeat):
        row = []
        for fn in fns:
            t0 = time.perf_counter()
            fn()
            sync(device)
            row.append(time.perf_counter() - t0)
        rounds.append(row)
    times = [statistics.median(r[i] for r in rounds) for i in range(len(fns))]
    ratios = [statistics.median(r[i] / r[0] for r in rounds) for i in range(len(fns))]
    return times, ratios


def torch_newton_schulz(G: torch.Tensor, coeffs: Sequence[float] = JORDAN, steps: int = 5,
                        eps: float = 1e-7) -> torch.Tensor:
    """torch.optim.Muon's Newton-Schulz (torch 2.9-2.13), transcribed: the timing reference.

    bf16 throughout, tall input transposed, X / max(||X||_F, eps), then per step
    A = X X^T, B = b A + c A A, X = a X + B X with ``torch.addmm``.  2-D or a batch (looped,
    as torch.optim.Muon loops over parameters).
    """
    if G.dim() == 3:
        return torch.stack([torch_newton_schulz(g, coeffs, steps, eps) for g in G])
    a, b, c = coeffs
    X = G.bfloat16()
    if G.size(0) > G.size(1):
        X = X.T
    X = X / X.norm().clamp(min=eps)
    for _ in range(steps):
        A = X @ X.T
        X = torch.addmm(X, torch.addmm(A, A, A, beta=b, alpha=c), X, beta=a)
    return X.T if G.size(0) > G.size(1) else X


def shape_rate(G: torch.Tensor, path: Any, device: torch.device, repeat: int) -> float:
    """FLOP/s of one quintic step's three products at G's own shape (wide side last, as the
    engine orients it; a stack as one batched call): 4 m^2 n + 2 m^3 per matrix."""
    X = G if G.shape[-2] <= G.shape[-1] else G.mT
    m, n = X.shape[-2:]
    A = path.mm(X, X.mT)
    t = median_time(lambda: (path.mm(X, X.mT), path.mm(A, A), path.mm(A, X)), device, repeat)
    return (X.numel() // (m * n)) * (4 * m * m * n + 2 * m**3) / t


def run(shapes: Sequence[Sequence[int]], dtype: torch.dtype, device: str = "cpu",
        methods: Sequence[str] = ("jordan", "you", "polar-express", "newton", "qdwh", "svd"),
        repeat: int = 5, matmul_size: int | None = None, gemm: str = "auto",
        progress: Callable[[Any], Any] = iter) -> dict[str, Any]:
    """Time ``methods`` on Gaussian matrices of each shape; every ratio from this one run.

    The matmul rate is measured on the ``gemm`` path the methods use (so on a CPU with a
    slow native bf16 GEMM the floor is that of the emulated products), and also natively
    in fp32 (``matmul_rate_fp32_tflops``), so the bf16/fp32 ratio is visible.
    """
    dev = torch.device(device)
    k = matmul_size or (8192 if dev.type == "cuda" else 1024)
    path = resolve_gemm(gemm, dtype, dev)
    A = torch.randn(k, k, device=dev, dtype=dtype)
    rate = 2 * k**3 / median_time(lambda: path.mm(A, A), dev, repeat)
    A32 = A.float()
    rate32 = 2 * k**3 / median_time(lambda: A32 @ A32, dev, repeat)
    ref_ok = dtype == torch.bfloat16
    rows = []
    for shape in progress(shapes):
        G = torch.randn(*shape, device=dev).to(dtype)
        own = shape_rate(G, path, dev, repeat)
        t_svd = median_time(lambda: torch.linalg.svd(G.float(), full_matrices=False),  # noqa: B023
                            dev, max(1, repeat // 2))
        t_ref: dict[int, float] = {}
        for name in methods:
            method = METHODS[name]
            info: dict = {}
            apply_method(G, method, info=info, gemm=gemm)
            t = median_time(lambda: apply_method(G, method, gemm=gemm), dev,  # noqa: B023
                            repeat)
            row = {"shape": list(shape), "method": name, "steps": info.get("iterations"),
                   "gemm": info["gemm"], "time_s": t, "ratio_svd": t / t_svd}
            if dtype in (torch.bfloat16, torch.float16) and not method.min_float32:
                G32 = G.float()
                row["ratio_fp32"] = t / median_time(
                    lambda: apply_method(G32, method), dev, repeat)  # noqa: B023
            if method.schedule is not None:
                steps = info["iterations"]
                row.update(flops=info["flops"], matmuls=info["matmuls"],
                           floor_fraction=info["flops"] / rate / t,
                           floor_fraction_shape=info["flops"] / own / t)
                if ref_ok:
                    if steps not in t_ref:
                        t_ref[steps] = median_time(
                            lambda: torch_newton_schulz(G, JORDAN, steps), dev,  # noqa: B023
                            repeat)
                    row["ratio_torch_ns"] = t / t_ref[steps]
            rows.append(row)
    return {**provenance(dev), "dtype": str(dtype).replace("torch.", ""), "gemm": path.path,
            "matmul_rate_tflops": rate / 1e12, "matmul_rate_fp32_tflops": rate32 / 1e12,
            "matmul_size": k, "rows": rows}


def format_rows(res: dict[str, Any]) -> str:
    nan = float("nan")
    lines = [f"{res['device']}, {res['dtype']} ({res['gemm']} products), torch {res['torch']}: "
             f"plain matmul {res['matmul_rate_tflops']:.3f} TFLOP/s, fp32 "
             f"{res['matmul_rate_fp32_tflops']:.3f} ({res['matmul_size']}^3 in this run)",
             f"{'shape':<16} {'method':<19} {'steps':>5} {'ms':>10} {'/torchNS':>8} "
             f"{'/fp32':>6} {'floor%':>7} {'own%':>6} {'/svd':>7}"]
    for r in res["rows"]:
        lines.append(
            f"{'x'.join(map(str, r['shape'])):<16} {r['method']:<19} {str(r['steps']):>5} "
            f"{1e3 * r['time_s']:>10.3f} {r.get('ratio_torch_ns', nan):>8.2f} "
            f"{r.get('ratio_fp32', nan):>6.2f} {100 * r.get('floor_fraction', nan):>7.1f} "
            f"{100 * r.get('floor_fraction_shape', nan):>6.1f} {r['ratio_svd']:>7.3f}")
    return "\n".join(lines)
