"""An adaptive Newton-Schulz budget: per matrix, the steps its spectrum needs.

In the spirit of AMO (Zhuang et al. 2026, arXiv:2605.17806), which allots the iteration
budget per matrix from geometry it observes by operator type early in training and then
commits to; here each update is measured at every step instead, and the measurement is free:
the first step's Gram matrix A = X_0 X_0^T gives

    x_hat = ||A||_F / ||X_0||_F = (sum x_i^4 / sum x_i^2)^(1/2),

the Schatten-4-weighted typical singular value of X_0 (exactly x for r equal values x).
A matrix runs the fewest k steps of its schedule whose certified band on
[MARGIN * x_hat, 1] (:func:`msign.scalar.band`, rigorous) lies in [1 - DELTA, 1 + DELTA],
and never more than its budget of products.  A matrix of low effective rank (x_hat near 1,
as for the near-rank-one gradients of early training, or after AOL on nearly orthogonal rows)
stops early; one with many comparable singular values (x_hat ~ 1 / sqrt(rank)) runs longer.
The estimate is energy-weighted, not a bound: singular values below MARGIN * x_hat (a
spectrum's small tail) may end short of the band (:func:`below_margin` measures how many).

One host synchronization per matrix (the step count is data-dependent): an opt-in for
studies of the budget, ``Muon(msign_budget=...)``, not the default.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch

from .gemm import Gemm
from .iterate import iterate, iterate_gram, start, uses_gram_side
from .registry import Method, schedule_info
from .schedules import Schedule

__all__ = ["DELTA", "MARGIN", "max_steps", "coverage_by_steps", "steps_for", "typical_sigma",
           "method", "below_margin"]

#: Target band: the budget study's [1 - 0.35, 1 + 0.35], which band-12 reaches and which
#: trains as well as Jordan's 15 products (results/budget/more_seeds.json).
DELTA = 0.35
#: How far below the typical singular value the band must reach: a decade, so that the
#: spectrum's energy-weighted bulk lands in the band.
MARGIN = 0.1


def max_steps(schedule: Schedule, budget: int) -> int:
    """The most steps of ``schedule`` whose products fit ``budget``; ValueError if not one."""
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise TypeError(f"msign_budget must be an int (matrix products); got {budget!r}")
    first = schedule.matmuls(1)
    if budget < first:
        raise ValueError(f"msign_budget={budget} is below one step of {schedule.name!r} "
                         f"({first} products)")
    k = 1
    while k < 100 and schedule.matmuls(k + 1) <= budget:
        k += 1
    return k


@functools.lru_cache(maxsize=64)
def coverage_by_steps(schedule: Schedule, steps: int, delta: float = DELTA,
                      iters: int = 16) -> tuple[float, ...]:
    """For k = 1..steps: the smallest lower bound l (bisection on log l over [1e-6, 1))
    whose certified k-step band lies in [1 - delta, 1 + delta]; 1.0 where none does."""
    from . import scalar

    def fits(lo: float, k: int) -> bool:
        b = scalar.band(schedule, lo, steps=k)
        return max(1 - b[0], b[1] - 1) <= delta

    out = []
    for k in range(1, steps + 1):
        if not fits(0.999, k):
            out.append(1.0)
            continue
        a, b = math.log(1e-6), math.log(0.999)
        for _ in range(iters):
            m = 0.5 * (a + b)
            a, b = (a, m) if fits(math.exp(m), k) else (m, b)
        out.append(math.exp(b))
    return tuple(out)


def steps_for(x_hat: float, coverage: tuple[float, ...]) -> int:
    """The fewest steps whose coverage reaches MARGIN * x_hat (all of them if none does)."""
    lo = MARGIN * x_hat
    return next((k + 1 for k, c in enumerate(coverage) if c <= lo), len(coverage))


def typical_sigma(X: torch.Tensor, A: torch.Tensor) -> float:
    """x_hat = ||A||_F / ||X||_F for one matrix X and its Gram matrix A (in float64)."""
    fro = torch.linalg.vector_norm(X, dtype=torch.float64)
    return float(torch.linalg.vector_norm(A, dtype=torch.float64) / fro) if fro > 0 else 1.0


def method(schedule: Schedule, budget: int) -> Method:
    """A registry Method running ``schedule`` with per-matrix steps under ``budget`` products.

    ``info`` (``return_info``) gets ``iterations`` and ``matmuls`` as the mean over the
    batch and ``steps_per_matrix``.

    Examples
    --------
    >>> import torch, msign
    >>> m = method(msign.get_schedule("jordan"), 15)
    >>> Q = torch.linalg.qr(torch.randn(64, 64, dtype=torch.float64))[0]
    >>> X, info = msign.msign(Q[:16], m, return_info=True)  # orthogonal rows: x_hat = 1/4
    >>> info["steps_per_matrix"], info["matmuls"]
    ([3], 9.0)
    """
    k_max = max_steps(schedule, budget)
    cov = coverage_by_steps(schedule, k_max)

    def fn(X: torch.Tensor, steps: int | None, gemm: Gemm, info: dict | None,
           inplace: bool = False) -> torch.Tensor:
        if steps is not None:
            raise ValueError("an adaptive budget chooses the steps itself; pass steps=None")
        mats = X.unbind(0) if X.dim() == 3 else [X]
        out, ks = [], []
        for x in mats:
            x0, A = start(x, schedule, gemm, inplace)
            if A is None:
                A = gemm.mm(x0, x0.mT)  # the first step's Gram product, reused by it
            k = steps_for(typical_sigma(x0, A), cov)
            coeffs = schedule.step_coeffs(k)
            out.append(iterate_gram(x0, coeffs, schedule.gram_restart, A, gemm)
                       if uses_gram_side(schedule, *x0.shape) else iterate(x0, coeffs, A, gemm))
            ks.append(k)
        if info is not None:
            per = [schedule_info(schedule, x, k) for x, k in zip(mats, ks, strict=True)]
            info.update(iterations=float(np.mean(ks)), steps_per_matrix=ks,
                        matmuls=float(np.mean([p["matmuls"] for p in per])),
                        flops=float(sum(p["flops"] for p in per)), factorizations=0,
                        converged=None, precondition=schedule.precondition)
        return torch.stack(out) if X.dim() == 3 else out[0]

    return Method(f"{schedule.name}@budget{budget}", fn,
                  f"{schedule.name} with per-matrix steps (msign.adaptive), at most {budget} "
                  "products", schedule=schedule, checks_finite=True, takes_inplace=True)


def below_margin(G: Any, precondition: str | None = None) -> float:
    """Fraction of G's singular values that lie below MARGIN * x_hat after the schedule's
    start: those the adaptive rule does not promise to bring into the band."""
    from .metrics import preconditioned_singular_values

    x = preconditioned_singular_values(G, precondition)
    x_hat = np.sqrt((x**4).sum(-1, keepdims=True) / (x**2).sum(-1, keepdims=True))
    return float(np.mean(x < MARGIN * x_hat))
