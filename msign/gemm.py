"""Matrix products in reduced precision: native, or emulated as a GPU tensor core computes them.

A bf16/fp16 GEMM on a GPU reads half-precision inputs, accumulates in fp32 and rounds the
output once to the storage dtype.  CPUs with AVX512-BF16 or AMX do the same in hardware.  On
CPUs without them (AVX2 only) torch's half-precision GEMM falls back to a slow generic loop:
30-250x the fp32 time, so a bf16 msign that takes 0.05 s in fp32 takes seconds.

The ``emulated`` path computes the same thing from the same inputs with an fp32 GEMM:
upcast the half-precision operands (exact), multiply and accumulate in fp32, round the
output to the compute dtype.  Elementwise work stays in the compute dtype; only the products
change path.  ``auto`` decides once per process, dtype and device: on CPU it times one small
product both ways and emulates when the native one is more than :data:`SLOW_FACTOR` times
slower; elsewhere (CUDA, and fp32/fp64 everywhere) products are native.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch

__all__ = ["GEMM_MODES", "Gemm", "resolve_gemm", "native_half_is_slow"]

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


@functools.cache
def native_half_is_slow(dtype: torch.dtype) -> bool:
    """Whether this CPU's native ``dtype`` GEMM is > SLOW_FACTOR x the emulated one (cached).

    Times a 128x128 by 128x512 product, the shape of a Newton-Schulz step's ``A @ X``, which
    is the slowest case of the fallback kernel (about 20 ms there, 0.1 ms on fast CPUs).  The
    answer reflects torch's current settings (``torch.backends.mkldnn.enabled``) at the
    first call.
    """
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
