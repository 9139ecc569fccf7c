"""Matrix products in reduced precision: native, or emulated as a GPU tensor core computes them.

A bf16/fp16 GEMM on a GPU reads half-precision inputs, accumulates in fp32 and rounds the
output once to the storage dtype.  CPUs with AVX512-BF16 or AMX do the same in hardware.  On
CPUs without them (AVX2 only) torch's half-precision GEMM falls back to a slow generic loop:
30-250x the fp32 time, so a bf16 msign that takes 0.05 s in fp32 takes seconds.

The ``emulated`` path computes the same thing from the same inputs with an fp32 GEMM:
upcast the half-precision operands (exact), multiply and accumulate in fp32, round the
output to the compute dtype.  Elementwise work stays in the compute dtype; only the products
change path.  ``auto`` decides once per process, dtype and device: on an x86 CPU it reads the
CPU's flags (native where the instructions torch's oneDNN kernel needs are present and oneDNN
is enabled), so every process of a machine decides alike; on other CPUs it times one small
product both ways and emulates when the native one is more than :data:`SLOW_FACTOR` times
slower; elsewhere (CUDA, and fp32/fp64 everywhere) products are native.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["GEMM_MODES", "Gemm", "resolve_gemm", "native_half_is_slow", "cpu_flags"]

GEMM_MODES = ("auto", "native", "emulated")
#: auto emulates when a native half-precision product is this many times slower than the
#: emulated one.  Measured: 1.0-1.5x on AVX512-BF16/AMX CPUs, 30-250x on AVX2-only ones.
SLOW_FACTOR = 2.0
_HALF = (torch.bfloat16, torch.float16)


@dataclass(frozen=True)
class Gemm:
    """The products of one msign call: ``mm(a, b)`` and ``addmm(c, a, b, beta, alpha)``.

    Both take (m, k) x (k, n) or batched (B, m, k) x (B, k, n) operands in the compute dtype
    and return the compute dtype.  ``addmm`` is ``beta * c + alpha * (a @ b)`` with one
    rounding at the end on the emulated path, as a fused GPU epilogue does.
    """

    path: str  # "native" or "emulated"

    def mm(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.path == "native":
            return a @ b
        return (a.float() @ b.float()).to(a.dtype)

    def addmm(self, c: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, beta: float = 1.0,
              alpha: float = 1.0) -> torch.Tensor:
        f = torch.baddbmm if a.dim() == 3 else torch.addmm
        if self.path == "native":
            return f(c, a, b, beta=beta, alpha=alpha)
        return f(c.float(), a.float(), b.float(), beta=beta, alpha=alpha).to(a.dtype)


NATIVE = Gemm("native")
EMULATED = Gemm("emulated")


def _best_time(fn, repeat: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


#: x86 flags under which torch's native half-precision GEMM runs in hardware (oneDNN's
#: avx512_core_bf16 / amx kernels); without them it is the generic loop (fp16 on this
#: project's AVX512-BF16 machines: 41x the emulated time, measured).
FAST_FLAGS = {torch.bfloat16: ("avx512_bf16", "amx_bf16"),
              torch.float16: ("avx512_fp16", "amx_fp16")}


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str] | None:
    """The x86 feature flags of this CPU, or None where ``cpuinfo`` has no ``flags`` line."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return None


@functools.cache
def native_half_is_slow(dtype: torch.dtype) -> bool:
    """Whether this CPU's native ``dtype`` GEMM is the slow generic kernel (cached).

    With oneDNN disabled (``torch.backends.mkldnn.enabled``, read at the first call) it is.
    On x86 the CPU's flags decide (:data:`FAST_FLAGS`), not a timing: a timing near the
    threshold flips with the machine's load, and two processes that decide differently (an
    FSDP rank and its single-process reference) compute different bf16 arithmetic.  Where
    there are no x86 flags, one 128x128 by 128x512 product (a Newton-Schulz step's
    ``A @ X``) is timed both ways: slow means > :data:`SLOW_FACTOR` x the emulated time.
    """
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return True
    flags = cpu_flags()
    if flags is not None:
        return not any(f in flags for f in FAST_FLAGS[dtype])
    g = torch.Generator().manual_seed(0)
    a = torch.randn(128, 128, generator=g).to(dtype)
    x = torch.randn(128, 512, generator=g).to(dtype)
    t_native = _best_time(lambda: NATIVE.mm(a, x))
    t_emulated = _best_time(lambda: EMULATED.mm(a, x))
    return t_native > SLOW_FACTOR * t_emulated


def resolve_gemm(mode: str, dtype: torch.dtype, device: torch.device | str = "cpu") -> Gemm:
    """The product path for ``mode`` ("auto", "native" or "emulated") in ``dtype``.

    fp32/fp64 products are always native (there is nothing to emulate).  ``emulated`` on a
    GPU is allowed (it is the reference the CPU emulation is checked against).

    Raises
    ------
    ValueError
        For a mode not in :data:`GEMM_MODES`.

    Examples
    --------
    >>> resolve_gemm("emulated", torch.bfloat16).path
    'emulated'
    >>> resolve_gemm("emulated", torch.float32).path
    'native'
    """
    if mode not in GEMM_MODES:
        raise ValueError(f"gemm must be one of {GEMM_MODES}; got {mode!r}")
    if dtype not in _HALF or mode == "native":
        return NATIVE
    if mode == "emulated":
        return EMULATED
    if torch.device(device).type != "cpu":
        return NATIVE
    return EMULATED if native_half_is_slow(dtype) else NATIVE
