"""Exact msign / polar factor through the SVD (the reference, and the slowest path).

msign(G) = U[:, :r] V[:, :r]^T for G = U diag(s) V^T of numerical rank r.
"""

from __future__ import annotations

import torch

__all__ = ["svd_msign", "default_rtol"]


def default_rtol(m: int, n: int, dtype: torch.dtype) -> float:
    """Rank tolerance relative to the largest singular value: max(m, n) * eps(dtype).

    The same rule as ``numpy.linalg.matrix_rank``: singular values at or below
    ``rtol * s_max`` are treated as zero and map to 0 instead of 1.
    """
    return max(m, n) * torch.finfo(dtype).eps


def svd_msign(X: torch.Tensor, rtol: float | None = None) -> torch.Tensor:
    """Polar factor of X (shape (..., m, n)) from its SVD, rank-deficiency aware.

    Singular values ``s <= rtol * s_max`` (default :func:`default_rtol`) are mapped to
    0, so the zero matrix maps to zero and a rank-r input gives a rank-r result.
    """
    m, n = X.shape[-2:]
    if rtol is None:
        rtol = default_rtol(m, n, X.dtype)
    U, s, Vh = torch.linalg.svd(X, full_matrices=False)
    keep = s > rtol * s.amax(dim=-1, keepdim=True)
    return (U * keep.unsqueeze(-2).to(U.dtype)) @ Vh
