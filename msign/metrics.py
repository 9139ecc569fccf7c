"""Pure functions measuring how far X is from an exact polar factor.

All accept a torch tensor or numpy array of shape (..., m, n), compute in float64
(the quantity measured is the error of X as stored, whatever its dtype) and return
a float64 array of the batch shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .exact import default_rtol, svd_msign

__all__ = ["orthogonality_error", "polar_distance", "relative_distance", "singular_values",
           "sigma_band", "max_sigma_error", "nuclear_alignment", "alignment",
           "preconditioned_singular_values", "numerical_rank"]


def _f64(X: Any) -> torch.Tensor:
    T = torch.as_tensor(X) if isinstance(X, np.ndarray) else X.detach()
    if T.dim() < 2:
        raise ValueError(f"X must have shape (..., m, n); got {tuple(T.shape)}")
    return T.to(torch.float64)


def _out(t: torch.Tensor) -> np.ndarray:
    return t.cpu().numpy()


def orthogonality_error(X: Any) -> np.ndarray:
    """||X X^T - I||_F on the smaller side (X^T X - I when m >= n)."""
    T = _f64(X)
    m, n = T.shape[-2:]
    A = T @ T.mT if m <= n else T.mT @ T
    A.diagonal(dim1=-2, dim2=-1).sub_(1.0)
    return _out(torch.linalg.matrix_norm(A))


def relative_distance(X: Any, ref: Any) -> np.ndarray:
    """||X - ref||_F / ||ref||_F, e.g. to a polar factor computed once for many X."""
    T, R = _f64(X), _f64(ref)
    den = torch.linalg.matrix_norm(R).clamp_min(torch.finfo(torch.float64).tiny)
    return _out(torch.linalg.matrix_norm(T - R) / den)


def polar_distance(X: Any, G: Any, rank_dtype: Any = None) -> np.ndarray:
    """Relative distance ||X - msign(G)||_F / ||msign(G)||_F to the exact (SVD) factor.

    ``rank_dtype`` (e.g. ``torch.float32``, the dtype G was computed in): measure against
    U_r V_r^T, r the numerical rank of G in that dtype (:func:`numerical_rank`), instead of
    the float64 rank.  A gradient stored in fp32 whose smallest singular values lie below
    max(m, n) eps_fp32 sigma_1 has no direction there that a method should map to one.

    Examples
    --------
    >>> import numpy as np
    >>> G = np.diag([1.0, 1e-9])  # rank 2 in float64, rank 1 in float32
    >>> float(polar_distance(np.diag([1.0, 0.0]), G)), float(
    ...     polar_distance(np.diag([1.0, 0.0]), G, torch.float32))
    (0.7071067811865475, 0.0)
    """
    G64 = _f64(G)
    rtol = None if rank_dtype is None else default_rtol(*G64.shape[-2:], rank_dtype)
    return relative_distance(X, svd_msign(G64, rtol))


def numerical_rank(G: Any, rank_dtype: Any = torch.float64) -> np.ndarray:
    """Number of singular values above max(m, n) eps(rank_dtype) sigma_1 (numpy's rule).

    Examples
    --------
    >>> import numpy as np
    >>> int(numerical_rank(np.diag([1.0, 1e-9]))), int(numerical_rank(np.diag([1.0, 1e-9]),
    ...                                                             torch.float32))
    (2, 1)
    """
    T = _f64(G)
    s = torch.linalg.svdvals(T)
    tol = default_rtol(*T.shape[-2:], rank_dtype) * s.amax(dim=-1, keepdim=True)
    return _out((s > tol).sum(dim=-1))


def singular_values(X: Any) -> np.ndarray:
    """The min(m, n) singular values of X, descending, in float64."""
    return _out(torch.linalg.svdvals(_f64(X)))


def sigma_band(X: Any) -> tuple[np.ndarray, np.ndarray]:
    """(min sigma, max sigma) of X: the band the singular values landed in."""
    s = singular_values(X)
    return s[..., -1], s[..., 0]


def max_sigma_error(X: Any) -> np.ndarray:
    """``max_i |sigma_i(X) - 1|`` (for full-rank G, the spectral distance from orthogonality).

    From the eigenvalues of the smaller-side Gram matrix in float64 (sigma^2 = lambda): an
    eigensolve of min(m, n)^2 instead of an SVD of m x n, 8x faster at 1024 x 4096.  The
    absolute error in sigma is about eps * sigma_max^2 / (1 + sigma), so ~1e-16 for the
    quantity measured (a tiny sigma has ``|sigma - 1|`` ~ 1 either way).
    """
    T = _f64(X)
    m, n = T.shape[-2:]
    A = T @ T.mT if m <= n else T.mT @ T
    try:
        lam = torch.linalg.eigvalsh(A) if bool(torch.isfinite(A).all()) else None
    except torch.linalg.LinAlgError:
        lam = None
    if lam is None:
        # A blown-up X (entries ~1e160) overflows its Gram matrix: take the SVD instead.
        return np.abs(singular_values(X) - 1.0).max(axis=-1)
    return _out((lam.clamp_min(0).sqrt() - 1).abs().amax(dim=-1))


def nuclear_alignment(G: Any, X: Any) -> np.ndarray:
    """<G, X> / ||G||_*: the fraction of G's nuclear norm the update X captures.

    The training-relevant measure of an orthogonalizer: the exact polar factor U V^T
    maximizes <G, X> over ||X||_2 <= 1, where it equals ||G||_* (so the value is 1), and a
    first-order Muon step decreases the loss by lr * <G, X>.  A direction that misses the
    small singular values of G loses little; one that flips a sign loses a lot.  Not
    normalized by ||X||_2: an update with singular values above 1 can exceed 1, so it
    rewards overshoot; :func:`alignment` is the scale-free measure to compare methods by.

    Examples
    --------
    >>> import numpy as np
    >>> G = np.diag([3.0, 1.0])
    >>> float(nuclear_alignment(G, np.eye(2))), float(nuclear_alignment(G, np.diag([1.0, 0.0])))
    (1.0, 0.75)
    """
    return _out(_inner_over_nuclear(_f64(G), _f64(X)))


def _inner_over_nuclear(Gt: torch.Tensor, Xt: torch.Tensor) -> torch.Tensor:
    nuc = torch.linalg.matrix_norm(Gt, ord="nuc").clamp_min(torch.finfo(torch.float64).tiny)
    return (Gt * Xt).sum(dim=(-2, -1)) / nuc


def alignment(G: Any, X: Any) -> np.ndarray:
    """<G, X> / (||G||_* ||X||_2): how well X points along G, whatever X's scale.

    At most 1 (the trace duality <G, X> <= ||G||_* ||X||_2), with equality exactly for
    X = c msign(G) on G's rank, c > 0.  Unlike :func:`nuclear_alignment` it does not reward
    an update whose singular values overshoot 1: scaling X leaves it unchanged.  The zero
    matrix scores 0.

    Examples
    --------
    >>> import numpy as np
    >>> G = np.diag([3.0, 1.0])
    >>> float(alignment(G, 2 * np.eye(2))), float(alignment(G, np.diag([1.2, 1.0])))
    (1.0, 0.9583333333333333)
    """
    Xt = _f64(X)
    spec = torch.linalg.matrix_norm(Xt, ord=2).clamp_min(torch.finfo(torch.float64).tiny)
    return _out(_inner_over_nuclear(_f64(G), Xt) / spec)


def preconditioned_singular_values(G: Any, precondition: str | None = None) -> np.ndarray:
    """The singular values a schedule starts from: those of X_0 (descending, float64).

    ``None``: X_0 = G / ||G||_F.  ``"aol"``: X_0 = D G / ||G||_F with the AOL row scaling of
    :func:`msign.iterate.aol` on the smaller side (D = diag(sum_j abs(A_ij))^(-1/2), A = X X^T),
    computed in float64.  Every value is <= 1 in both cases (a theorem for AOL); how far
    above 0 the smallest ones lie is what this measures, and what a preconditioned
    schedule's certified band on [lower, 1] assumes.

    Examples
    --------
    >>> import numpy as np
    >>> G = np.diag([1.0, 1e-2]) @ np.array([[1.0, 0.5], [0.0, 1.0]])
    >>> s0, s1 = preconditioned_singular_values(G), preconditioned_singular_values(G, "aol")
    >>> bool(s1[-1] / s1[0] > s0[-1] / s0[0])  # AOL lifts the bottom of the spectrum
    True
    """
    from .iterate import aol
    from .schedules import PRECONDITIONS

    if precondition is not None and precondition not in PRECONDITIONS:
        raise ValueError(f"precondition must be None or one of {PRECONDITIONS}; "
                         f"got {precondition!r}")
    T = _f64(G)
    if T.shape[-2] > T.shape[-1]:
        T = T.mT
    T = T / torch.linalg.matrix_norm(T, keepdim=True).clamp_min(torch.finfo(T.dtype).tiny)
    if precondition == "aol":
        T = aol(T)[0]
    return _out(torch.linalg.svdvals(T))
