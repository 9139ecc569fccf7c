"""Classical polar-factor iterations: scaled Newton and QDWH, the accuracy anchors.

References
----------
N. J. Higham, "Computing the polar decomposition -- with applications",
SIAM J. Sci. Stat. Comput. 7(4), 1986 (scaled Newton, Frobenius-norm scaling).
Y. Nakatsukasa, Z. Bai, F. Gygi, "Optimizing Halley's iteration for computing the
matrix polar decomposition", SIAM J. Matrix Anal. Appl. 31(5), 2010 (QDWH).

Both take float32/float64 input of shape (m, n) or (B, m, n) and work on the tall
orientation (m >= n).  Like ``jax.lax.linalg.qdwh``, QDWH computes its whole list
of weights from the lower bound ``l0`` in plain Python before it touches a matrix.
"""

from __future__ import annotations

import math
import warnings

import torch

from .iterate import normalize

__all__ = ["newton", "qdwh", "qdwh_weights"]

#: Newton: stop once the relative change ||X_{k+1} - X_k||_F / ||X_{k+1}||_F is below
#: sqrt(eps) * NEWTON_TOL_FACTOR (the next quadratic step then reaches ~eps), then do it.
NEWTON_TOL_FACTOR = 10.0
#: Newton: drop the scaling once the relative change is below this (Higham 1986), so the
#: final steps converge quadratically without scale-estimate noise.
NEWTON_UNSCALE_BELOW = 1e-2
#: QDWH: QR-based step while c > this, Cholesky-based step after (Nakatsukasa et al.).
QDWH_CHOLESKY_BELOW_C = 100.0
MAX_ITERATIONS = 100
#: QDWH: end with one Newton-Schulz polish step, as jax does.  Measured
#: (experiments/matrix/qdwh_polish.py, results/qdwh_polish/cpu.json): in fp32 it lowers max |s - 1|
#: by a median 15% (11 of 12 matrices), distance to the polar factor unchanged; no effect in
#: fp64.  Two products against 4-6 factorizations.
QDWH_POLISH = True


def _tall(X: torch.Tensor) -> tuple[torch.Tensor, bool]:
    m, n = X.shape[-2:]
    return (X.mT, True) if m < n else (X, False)


def _rel_change(new: torch.Tensor, old: torch.Tensor) -> float:
    num = torch.linalg.matrix_norm(new - old)
    den = torch.linalg.matrix_norm(new).clamp_min(torch.finfo(new.dtype).tiny)
    return float((num / den).max())


def _cap_warning(name: str, change: float, tol: float) -> None:
    warnings.warn(f"method {name!r} stopped at its iteration cap ({MAX_ITERATIONS}) without "
                  f"meeting its stopping rule (relative change {change:.2e} > {tol:.2e}); "
                  "the result may be inaccurate", RuntimeWarning, stacklevel=4)


def newton(X: torch.Tensor, steps: int | None = None, info: dict | None = None) -> torch.Tensor:
    """Scaled Newton iteration X <- (z X + (z X)^{-T}) / 2 for the polar factor.

    Rectangular input is reduced by a QR factorization first (X = Q R, msign(X) =
    Q msign(R)).  ``steps`` fixes the number of iterations; ``None`` iterates to the
    stopping rule (``NEWTON_TOL_FACTOR``), at most ``MAX_ITERATIONS`` (a RuntimeWarning if
    that cap is hit).  Raises ValueError for exactly singular input, for which the
    iteration is undefined; numerically singular input gives the polar factor of a
    nearby full-rank matrix (its null directions end at +-1).  Use ``svd`` for U_r V_r^T.
    """
    X, transposed = _tall(normalize(X))
    m, n = X.shape[-2:]
    batch = X.shape[0] if X.dim() == 3 else 1
    nonzero = (X != 0).flatten(-2).any(-1)[..., None, None]
    Q = None
    if m != n:
        Q, X = torch.linalg.qr(X)
    eye = torch.eye(n, dtype=X.dtype, device=X.device)
    Y = torch.where(nonzero, X, eye)
    eps = torch.finfo(Y.dtype).eps
    tol = math.sqrt(eps) * NEWTON_TOL_FACTOR
    scaled, converged, change = True, False, float("inf")
    iterations = 0
    for _ in range(steps if steps is not None else MAX_ITERATIONS):
        Yinv, status = torch.linalg.inv_ex(Y)
        if bool((status != 0).any()) or not bool(torch.isfinite(Yinv).all()):
            raise ValueError(
                "method 'newton' needs full-rank input (its matrix inverse failed); "
                "use method='svd' for rank-deficient G"
            )
        if scaled:
            z = (torch.linalg.matrix_norm(Yinv) / torch.linalg.matrix_norm(Y)).sqrt()
            z = z[..., None, None]
            new = 0.5 * (z * Y + Yinv.mT / z)
        else:
            new = 0.5 * (Y + Yinv.mT)
        change = _rel_change(new, Y)
        Y = new
        iterations += 1
        converged = change <= tol
        if steps is None:
            if converged:
                # Quadratic convergence: one more step brings the error to ~eps.
                Yinv = torch.linalg.inv(Y)
                Y = 0.5 * (Y + Yinv.mT)
                iterations += 1
                break
            scaled = change > NEWTON_UNSCALE_BELOW
    if steps is None and not converged:
        _cap_warning("newton", change, tol)
    if info is not None:
        # Operation counts (Golub & Van Loan): thin QR with Q, 4mn^2 - 4n^3/3; an inverse,
        # 2n^3; the final Q Y, 2mn^2.
        rect = m != n
        info.update(iterations=iterations, converged=converged,
                    matmuls=int(rect), factorizations=iterations + int(rect),
                    flops=batch * float(iterations * 2 * n**3
                                        + rect * (4 * m * n * n - 4 * n**3 / 3 + 2 * m * n * n)))
    Y = torch.where(nonzero, Y, torch.zeros_like(Y))
    if Q is not None:
        Y = Q @ Y
    return Y.mT if transposed else Y


def qdwh_weights(lower: float, eps: float) -> list[tuple[float, float, float]]:
    """Dynamically weighted Halley weights (a, b, c) from a lower bound on sigma_min.

    Step k maps x -> x (a + b x^2) / (1 + c x^2), optimal on [l_k, 1]; then
    l_{k+1} = l_k (a + b l_k^2) / (1 + c l_k^2).  The list stops once 1 - l_k < 10 eps.
    For ``lower = eps(float64)`` it has 6 entries (the paper's bound for kappa <= 1e16).

    Examples
    --------
    >>> len(qdwh_weights(2.0**-52, 2.0**-52))
    6
    """
    if not 0.0 < lower <= 1.0:
        raise ValueError(f"lower must lie in (0, 1]; got {lower}")
    out = []
    lk = lower
    while 1.0 - lk >= 10 * eps and len(out) < MAX_ITERATIONS:
        l2 = lk * lk
        dd = (4.0 * (1.0 - l2) / (l2 * l2)) ** (1.0 / 3.0)
        sqd = math.sqrt(1.0 + dd)
        a = sqd + 0.5 * math.sqrt(8.0 - 4.0 * dd + 8.0 * (2.0 - l2) / (l2 * sqd))
        b = (a - 1.0) ** 2 / 4.0
        c = a + b - 1.0
        lk = lk * (a + b * l2) / (1.0 + c * l2)
        out.append((a, b, c))
    return out


def _qdwh_step(X: torch.Tensor, a: float, b: float, c: float) -> torch.Tensor:
    m, n = X.shape[-2:]
    if c > QDWH_CHOLESKY_BELOW_C:
        # QR form: avoids forming I + c X^T X, whose condition number ~ c would lose accuracy.
        eye = torch.eye(n, dtype=X.dtype, device=X.device).expand(*X.shape[:-2], n, n)
        Q, _ = torch.linalg.qr(torch.cat([math.sqrt(c) * X, eye], dim=-2))
        return (b / c) * X + ((a - b / c) / math.sqrt(c)) * (Q[..., :m, :] @ Q[..., m:, :].mT)
    Z = c * (X.mT @ X)
    Z.diagonal(dim1=-2, dim2=-1).add_(1.0)
    L = torch.linalg.cholesky(Z)
    W = torch.cholesky_solve(X.mT, L)
    return (b / c) * X + (a - b / c) * W.mT


def _qdwh_flops(m: int, n: int, c: float) -> float:
    """Operation count of one QDWH step on an m x n (m >= n) matrix (Golub & Van Loan)."""
    if c > QDWH_CHOLESKY_BELOW_C:  # QR of (m+n) x n with thin Q, then Q1 Q2^T
        return 4 * (m + n) * n * n - 4 * n**3 / 3 + 2 * m * n * n
    return 2 * m * n * n + n**3 / 3 + 2 * m * n * n  # X^T X, Cholesky, two triangular solves


def qdwh(X: torch.Tensor, steps: int | None = None, info: dict | None = None,
         polish: bool = QDWH_POLISH) -> torch.Tensor:
    """QR-based dynamically weighted Halley iteration (QDWH) for the polar factor.

    X is scaled by its Frobenius norm (an upper bound on the spectral norm) and the
    weights assume sigma_min(X) >= eps(dtype) after that scaling, i.e. kappa_F <= 1/eps.
    Singular values below that bound are still driven to 1 by the Halley steps that
    follow the weighted ones.  Exactly zero structure (zero rows or columns) stays zero,
    but numerically rank-deficient input (singular values at rounding level) has those
    directions driven to +-1 like any other: use ``svd`` for U_r V_r^T.
    Stopping rule (``QDWH_TOL``): the weighted list is done and the relative change is
    below eps^(1/3) (cubic convergence then leaves ~eps), at most ``MAX_ITERATIONS`` (a
    RuntimeWarning if that cap is hit); ``steps`` fixes the number of iterations instead.
    ``polish`` ends with one Newton-Schulz step X <- 1.5 X - 0.5 X X^T X, as
    ``jax.lax.linalg.qdwh`` does (default :data:`QDWH_POLISH`, chosen by measurement).
    """
    X, transposed = _tall(normalize(X))
    m, n = X.shape[-2:]
    batch = X.shape[0] if X.dim() == 3 else 1
    eps = torch.finfo(X.dtype).eps
    tol = eps ** (1.0 / 3.0)
    weights = qdwh_weights(eps, eps)
    halley = (3.0, 1.0, 3.0)
    flops, qr_steps, converged, change = 0.0, 0, False, float("inf")
    for k in range(steps if steps is not None else MAX_ITERATIONS):
        a, b, c = weights[k] if k < len(weights) else halley
        new = _qdwh_step(X, a, b, c)
        flops += _qdwh_flops(m, n, c)
        qr_steps += c > QDWH_CHOLESKY_BELOW_C
        change = _rel_change(new, X)
        X = new
        converged = k >= len(weights) - 1 and change <= tol
        if steps is None and converged:
            break
    if steps is None and not converged:
        _cap_warning("qdwh", change, tol)
    if polish:
        X = 1.5 * X - 0.5 * (X @ (X.mT @ X))
        flops += 4 * m * n * n
    if info is not None:
        # Products: Q1 Q2^T per QR step, X^T X per Cholesky step, 2 for the polish.
        info.update(iterations=k + 1, converged=converged,
                    matmuls=k + 1 + 2 * polish, factorizations=k + 1, flops=batch * flops)
    return X.mT if transposed else X
