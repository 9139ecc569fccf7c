"""The one odd-polynomial iteration engine, and its cost model.

Every schedule-based method (cubic and quintic Newton-Schulz, Jordan, You, Polar
Express, user schedules) runs through :func:`run_schedule`.  Each step applies
p(x) = c0 x + c1 x^3 + ... to the singular values of X through the Gram matrix
A = X X^T of the smaller side, using fused ``addmm``/``baddbmm`` so that no
identity matrix is built and each step costs (number of coefficients) products.
Every product goes through a :class:`msign.gemm.Gemm` (native, or fp32-accumulated
emulation of a half-precision GEMM); :func:`cost` counts the products and FLOPs of
exactly the path :func:`run_schedule` takes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .gemm import NATIVE, Gemm
from .schedules import Schedule

__all__ = ["NonFiniteInput", "normalize", "loops_over_batch", "iterate", "iterate_gram",
           "run_schedule", "start", "aol", "aol_flops", "uses_gram_side", "cost",
           "schedule_flops", "gram_flops"]


class NonFiniteInput(ValueError):
    """Raised by :func:`normalize` on CPU when X holds NaN or Inf (its norm is not finite)."""


def normalize(X: torch.Tensor, safety: float = 1.0, eps: float = 0.0,
              inplace: bool = False) -> torch.Tensor:
    """Return ``X / max(safety * ||X||_F, eps)`` per matrix; the zero matrix stays zero.

    fp32/bf16 input scaled by 1e+-30 must neither overflow nor underflow.  On CUDA the norm
    is accumulated in float64 in one kernel (no host sync).  On CPU, where that cast costs
    more than the fast native reduction, the norm is taken in X's dtype and recomputed in
    float64 only where it overflowed or fell below sqrt(tiny) * 1e4.  fp16 input is always
    normalized in fp32: its norm leaves fp16's range for ordinary matrices.

    On CPU a norm that is not finite in float64 (where no finite entry can overflow it) means
    a NaN or Inf entry: :class:`NonFiniteInput` is raised, so that :func:`msign.msign` needs
    no separate pass over its input to check it.  ``inplace`` divides X itself (for a copy
    the caller owns, e.g. a fresh cast): the same arithmetic without a second buffer.
    """
    cpu = X.device.type == "cpu" and not torch.compiler.is_compiling()
    if X.dtype == torch.float16:
        nu = torch.linalg.vector_norm(X, dim=(-2, -1), keepdim=True, dtype=torch.float32)
        if cpu and not bool(torch.isfinite(nu).all()):
            raise NonFiniteInput("X contains NaN or Inf")
        nu = (nu * safety).clamp_min(max(eps, torch.finfo(torch.float32).tiny))
        return (X.to(torch.float32) / nu).to(X.dtype)
    wide = torch.float64
    # Under torch.compile the float64 accumulation is fused into the reduction, and the
    # CPU path's data-dependent rescue branch would break the graph.
    if cpu or X.dtype == wide:
        nu = torch.linalg.vector_norm(X, dim=(-2, -1), keepdim=True)
        floor = torch.finfo(X.dtype).tiny ** 0.5 * 1e4
        in_range = X.dtype != wide and bool(((nu > floor) & torch.isfinite(nu)).all())
        if not in_range:
            if X.dtype != wide:
                nu = torch.linalg.vector_norm(X, dim=(-2, -1), keepdim=True, dtype=wide)
            if cpu and not bool(torch.isfinite(nu).all()):
                raise NonFiniteInput("X contains NaN or Inf")
    else:
        nu = torch.linalg.vector_norm(X, dim=(-2, -1), keepdim=True, dtype=wide)
    # Clamping at the smallest normal maps the zero matrix to 0 / tiny = 0, not NaN.
    nu = (nu * safety).clamp_min(max(eps, torch.finfo(X.dtype).tiny)).to(X.dtype)
    return X.div_(nu) if inplace else X / nu


def loops_over_batch(device: torch.device, batch: int) -> bool:
    """Whether a batch of matrices is faster one by one (addmm) than batched (baddbmm).

    Measured: on CPU a loop of addmm beats baddbmm (1.10 s vs 1.34 s for 12 bf16 768x2304
    matrices, and 1.22x for a batch of one); on GPU batches > 1 win.
    """
    return device.type == "cpu" or batch == 1


def iterate(X: torch.Tensor, coeffs: Sequence[Sequence[float]],
            gram: torch.Tensor | None = None, gemm: Gemm = NATIVE) -> torch.Tensor:
    """Apply the odd polynomials ``coeffs`` to X of shape (m, n) or (B, m, n), m <= n.

    Step ``(c0, c1, ..., cd)`` computes ``c0 X + (c1 A + c2 A^2 + ... + cd A^d) X``
    with ``A = X X^T`` (m x m), the inner polynomial by Horner in A.  ``gram``, if given,
    is X X^T already computed (used by the first step).
    """
    if X.dim() == 3 and loops_over_batch(X.device, X.shape[0]):
        grams = [None] * X.shape[0] if gram is None else gram.unbind(0)
        return torch.stack([iterate(x, coeffs, a, gemm) for x, a in zip(X.unbind(0), grams,
                                                                        strict=True)])
    for c in coeffs:
        if len(c) == 1:
            X, gram = X * c[0], None
            continue
        A = gemm.mm(X, X.mT) if gram is None else gram
        gram = None
        if len(c) == 2:
            X = gemm.addmm(X, A, X, beta=c[0], alpha=c[1])
            continue
        X = gemm.addmm(X, _horner(A, c, gemm), X, beta=c[0])
    return X


def _horner(A: torch.Tensor, c: Sequence[float], gemm: Gemm) -> torch.Tensor:
    """c1 A + c2 A^2 + ... + cd A^d for d >= 2, by Horner in A (d - 1 products)."""
    B = gemm.addmm(A, A, A, beta=c[-2], alpha=c[-1])
    for cj in reversed(c[1:-2]):
        B = gemm.addmm(A, B, A, beta=cj)
    return B


def _inner(A: torch.Tensor, c: Sequence[float], gemm: Gemm) -> torch.Tensor:
    """h(A) = c0 I + c1 A + ... + cd A^d for symmetric A."""
    H = A * c[1] if len(c) == 2 else _horner(A, c, gemm)
    H.diagonal(dim1=-2, dim2=-1).add_(c[0])
    return H


def restarts_at(step: int, restart: int | None) -> bool:
    """Whether the Gram-side iteration re-forms X and R before 0-based ``step``."""
    return bool(restart) and step > 0 and step % restart == 0


def iterate_gram(X: torch.Tensor, coeffs: Sequence[Sequence[float]],
                 restart: int | None = None, gram: torch.Tensor | None = None,
                 gemm: Gemm = NATIVE) -> torch.Tensor:
    """:func:`iterate` on the Gram side, for wide X (m << n); same result in exact arithmetic.

    With R_k = X_k X_k^T and h_k the step's inner polynomial, X_{k+1} = h_k(R_k) X_k, so
    X_k = Q_k X_0 with Q_{k+1} = h_k(R_k) Q_k and R_{k+1} = h_k(R_k) R_k h_k(R_k): all
    m x m.  Only the first Gram product and the final Q X_0 touch the n side.  Every
    ``restart`` steps X = Q X and R are re-formed (Gram Newton-Schulz restarts: R and Q
    drift in low precision).  ``gram``, if given, is X X^T already computed.
    """
    mm = gemm.mm
    R, Q = (mm(X, X.mT) if gram is None else gram), None
    for i, c in enumerate(coeffs):
        if restarts_at(i, restart) and Q is not None:
            X, Q = mm(Q, X), None
            R = mm(X, X.mT)
        if len(c) == 1:
            X, R = X * c[0], R * c[0] ** 2
            continue
        H = _inner(R, c, gemm)
        Q = H if Q is None else mm(H, Q)
        # R is needed by the next step unless that step re-forms it (or there is none).
        if i + 1 < len(coeffs) and not restarts_at(i + 1, restart):
            R = mm(H, mm(R, H))
    return X if Q is None else mm(Q, X)


def uses_gram_side(schedule: Schedule, m: int, n: int) -> bool:
    """Whether :func:`run_schedule` takes the Gram side for an (m, n) matrix, m <= n."""
    return schedule.gram_restart is not None and n >= 2 * m


def run_schedule(X: torch.Tensor, schedule: Schedule, steps: int | None = None,
                 gemm: Gemm = NATIVE, inplace: bool = False) -> torch.Tensor:
    """Normalize X (shape (m, n) or (B, m, n), m <= n) and run ``schedule`` on it.

    A schedule with ``gram_restart`` runs on the Gram side when n >= 2m, where that saves
    FLOPs; otherwise the standard iteration runs.  Both honour the schedule's normalization.
    """
    coeffs = schedule.step_coeffs(steps)
    X, A = start(X, schedule, gemm, inplace)
    if uses_gram_side(schedule, *X.shape[-2:]):
        return iterate_gram(X, coeffs, schedule.gram_restart, A, gemm)
    return iterate(X, coeffs, A, gemm)


def start(X: torch.Tensor, schedule: Schedule, gemm: Gemm = NATIVE, inplace: bool = False
          ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """X_0 = X / (safety * nu) by the schedule's normalization, and X_0 X_0^T if computed.

    Frobenius: :func:`normalize`.  Schatten-4: Frobenius first (keeps the Gram product in
    range), then divide by ||A||_F^(1/2) <= 1 with A = X X^T; the rescaled A is returned
    for the first step, which needs it anyway.  ``precondition="aol"``: Frobenius first
    (for the same reason), then :func:`aol`.
    """
    if schedule.precondition == "aol":
        X = normalize(X, eps=schedule.eps, inplace=inplace)
        return aol(X, gemm, schedule.safety)
    if schedule.normalization == "fro":
        return normalize(X, schedule.safety, schedule.eps, inplace), None
    X = normalize(X, eps=schedule.eps, inplace=inplace)
    A = gemm.mm(X, X.mT)
    nu2 = torch.linalg.matrix_norm(A, keepdim=True).clamp_min(torch.finfo(X.dtype).tiny)
    nu2 = nu2 * schedule.safety**2
    return X / nu2.sqrt(), A / nu2


def aol(X: torch.Tensor, gemm: Gemm = NATIVE, safety: float = 1.0
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(D X / safety, its Gram matrix) with D = diag(sum_j abs(A_ij))^(-1/2), A = X X^T.

    The almost-orthogonal-layer rescaling (Prach and Lampert 2022, Theorem 1: ||D X||_2 <= 1
    for every X, by the Schur test on D A D) as Turbo-Muon applies it before Newton-Schulz
    (Boissin et al. 2025).  The Gram matrix of D X is D A D, formed from A without a product;
    the first step uses it.  A zero row keeps a zero row (its sum is clamped, not divided by).
    """
    A = gemm.mm(X, X.mT)
    d = A.abs().sum(dim=-1).clamp_min(torch.finfo(A.dtype).tiny).rsqrt()
    if safety != 1.0:
        d = d / safety
    return X * d.unsqueeze(-1), A * d.unsqueeze(-1) * d.unsqueeze(-2)


def aol_flops(m: int, n: int) -> float:
    """Elementwise FLOPs of :func:`aol` on an (m, n) matrix beside its (reused) Gram product:
    the row sums of abs(A), the row scaling of X and the two-sided scaling of A."""
    return float(2 * m * m + m * n + 2 * m * m)


# -- cost model -----------------------------------------------------------------------------

def schedule_flops(m: int, n: int, coeffs: Sequence[Sequence[float]]) -> float:
    """FLOPs of :func:`iterate` on one (m, n) matrix, m <= n: Gram and apply 2m^2n each,
    Horner 2m^3 each."""
    return float(sum(4 * m * m * n + 2 * m**3 * (len(c) - 2) for c in coeffs if len(c) >= 2))


def _gram_plan(m: int, n: int, coeffs: Sequence[Sequence[float]],
               restart: int | None) -> tuple[int, float]:
    """(products, FLOPs) of :func:`iterate_gram` on one (m, n) matrix, m <= n."""
    mms, f = 1, 2.0 * m * m * n  # R = X X^T
    fresh = True  # Q is still the identity (not formed)
    for i, c in enumerate(coeffs):
        if restarts_at(i, restart) and not fresh:
            mms, f = mms + 2, f + 4.0 * m * m * n  # X = Q X, R = X X^T
            fresh = True
        if len(c) == 1:
            continue
        mms, f = mms + len(c) - 2, f + 2.0 * m**3 * (len(c) - 2)  # Horner for h(R)
        if not fresh:
            mms, f = mms + 1, f + 2.0 * m**3  # Q = H Q
        fresh = False
        if i + 1 < len(coeffs) and not restarts_at(i + 1, restart):
            mms, f = mms + 2, f + 4.0 * m**3  # R = H R H
    if fresh:
        return mms, f
    return mms + 1, f + 2.0 * m * m * n  # Q X


def gram_flops(m: int, n: int, coeffs: Sequence[Sequence[float]],
               restart: int | None) -> float:
    """FLOPs of :func:`iterate_gram` on one (m, n) matrix, m <= n."""
    return _gram_plan(m, n, coeffs, restart)[1]


def cost(schedule: Schedule, m: int, n: int, steps: int | None = None) -> tuple[int, float]:
    """(matrix products, FLOPs) of :func:`run_schedule` on one (m, n) matrix, m <= n.

    Counts the path that actually runs: the Gram side for ``gram_restart`` schedules on
    wide matrices, the standard iteration otherwise.  Schatten-4 normalization and AOL
    preconditioning reuse their Gram product as the first step's, so they add none (one,
    if the first step is a plain scaling that needs no Gram matrix); AOL's elementwise work
    is :func:`aol_flops`.

    Examples
    --------
    >>> from msign import get_schedule
    >>> cost(get_schedule("jordan"), 256, 1024)  # 5 x (4 m^2 n + 2 m^3)
    (15, 1509949440.0)
    >>> cost(get_schedule("jordan-gram"), 256, 1024)  # the Gram side: more products, fewer FLOPs
    (17, 1174405120.0)
    """
    coeffs = schedule.step_coeffs(steps)
    if uses_gram_side(schedule, m, n):
        mms, f = _gram_plan(m, n, coeffs, schedule.gram_restart)
    else:
        mms, f = sum(len(c) for c in coeffs if len(c) > 1), schedule_flops(m, n, coeffs)
    pre = schedule.normalization == "schatten4" or schedule.precondition is not None
    if pre and len(coeffs[0]) == 1:  # its Gram product is computed and not reused
        mms, f = mms + 1, f + 2.0 * m * m * n
    if schedule.precondition == "aol":
        f += aol_flops(m, n)
    return mms, f
