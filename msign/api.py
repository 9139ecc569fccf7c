"""The public entry points ``msign`` and ``polar``: validation at the edge, then dispatch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch

from .registry import Method, resolve_method
from .schedules import Schedule

__all__ = ["msign", "polar", "as_dtype"]

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)

_DTYPE_NAMES = {
    "fp64": torch.float64, "float64": torch.float64,
    "fp32": torch.float32, "float32": torch.float32,
    "fp16": torch.float16, "float16": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}
_FLOAT_DTYPES = frozenset(_DTYPE_NAMES.values())


def as_dtype(dtype: Any, name: str = "compute_dtype") -> torch.dtype:
    """A torch floating dtype from a torch dtype or a name such as ``"bf16"``."""
    if isinstance(dtype, str):
        if dtype not in _DTYPE_NAMES:
            raise ValueError(f"{name} must be one of {sorted(_DTYPE_NAMES)}; got {dtype!r}")
        return _DTYPE_NAMES[dtype]
    if isinstance(dtype, torch.dtype) and dtype in _FLOAT_DTYPES:
        return dtype
    raise TypeError(
        f"{name} must be None, torch.float16/bfloat16/float32/float64 or one of "
        f"{sorted(_DTYPE_NAMES)}; got {dtype!r}"
    )


def _as_tensor(G: Any, name: str = "G") -> tuple[torch.Tensor, Callable[[torch.Tensor], Any]]:
    """Validate G and return it as a torch tensor plus the converter back to G's type."""
    if isinstance(G, np.ndarray):
        if np.iscomplexobj(G):
            raise TypeError(f"{name} must be real; complex input is not supported")
        if G.dtype not in (np.float16, np.float32, np.float64):
            raise TypeError(f"{name} must be a float16/32/64 array; got dtype {G.dtype}")
        X = torch.from_numpy(np.ascontiguousarray(G))

        def back(Y: torch.Tensor) -> np.ndarray:
            return Y.numpy()
    elif isinstance(G, torch.Tensor):
        if G.is_complex():
            raise TypeError(f"{name} must be real; complex input is not supported")
        if not G.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor; got dtype {G.dtype}")
        X = G.detach()

        def back(Y: torch.Tensor) -> torch.Tensor:
            return Y
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray; got {type(G).__name__}")
    if X.dim() < 2:
        raise ValueError(f"{name} must have shape (..., m, n) with at least 2 dimensions; "
                         f"got shape {tuple(X.shape)}")
    if X.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(X.shape)}); m and n must be >= 1")
    if not bool(torch.isfinite(X).all()):
        raise ValueError(f"{name} contains NaN or Inf")
    return X, back


def apply_method(X: torch.Tensor, method: Method, steps: int | None = None,
                 compute_dtype: torch.dtype | None = None,
                 info: dict[str, Any] | None = None) -> torch.Tensor:
    """Run a resolved method on a validated tensor of shape (..., m, n); no input checks.

    Batch dimensions are flattened, tall matrices are transposed to the wide (small
    Gram side) orientation, the method runs in ``compute_dtype`` (promoted to float32
    for ``min_float32`` methods) and the result comes back in X's dtype and shape.
    """
    cd = X.dtype if compute_dtype is None else compute_dtype
    if method.min_float32 and cd in (torch.float16, torch.bfloat16):
        cd = torch.float32
    if info is not None:
        info["compute_dtype"] = cd
    *batch, rows, cols = X.shape
    Y = X.reshape(-1, rows, cols) if batch else X
    tall = rows > cols
    if tall:
        Y = Y.mT
    Y = method.fn(Y.to(cd), steps, info)
    if tall:
        Y = Y.mT
    return Y.to(X.dtype).reshape(X.shape)


def msign(G: ArrayT, method: str | Schedule | Method = "polar-express", *,
          steps: int | None = None, compute_dtype: Any = None) -> ArrayT:
    """Matrix sign / polar factor msign(G) = U V^T of G = U diag(s) V^T.

    Parameters
    ----------
    G : torch.Tensor or numpy.ndarray, shape (..., m, n)
        Real floating-point input; leading dimensions are a batch.
    method : str or Schedule
        A name in ``msign.METHODS`` (``svd``, ``cubic``, ``quintic``, ``jordan``, ``you``,
        ``you-5``, ``su-5``, ``polar-express``, ``newton``, ``qdwh``) or any Schedule.
    steps : int, optional
        Iterations; ``None`` is the method's default (jordan 5, you 6, polar-express 8,
        cubic 21, quintic 14, newton/qdwh until their stopping rule).  A per-step schedule
        run longer than its table repeats the last tuple; shorter takes its first ones.
    compute_dtype : torch.dtype or str, optional
        Arithmetic dtype (``torch.bfloat16`` or ``"bf16"``, fp16, fp32, fp64); ``None``
        means G's dtype.  ``svd``, ``newton`` and ``qdwh`` need factorizations that torch
        provides only in float32/64, so they compute half-precision input in float32.

    Returns
    -------
    X : same type, shape and dtype as G
        The approximation of msign(G); exactly zero for a zero matrix.

    Raises
    ------
    TypeError
        G not a tensor/array, complex or integer G, a bad method or dtype type.
    ValueError
        G with fewer than 2 dimensions, empty, or holding NaN/Inf; an unknown method
        name; ``steps`` not a positive int; ``newton`` on rank-deficient G.

    References
    ----------
    N. J. Higham, *Functions of Matrices*, SIAM 2008, ch. 8 (polar decomposition).
    N. Amsel et al., "The Polar Express", arXiv:2505.16932, 2025.

    Examples
    --------
    >>> import numpy as np
    >>> G = np.array([[3.0, 0.0], [4.0, 5.0]])
    >>> X = msign(G, method="svd")
    >>> bool(np.allclose(X.T @ X, np.eye(2)))
    True
    >>> bool(np.allclose(msign(G, "qdwh"), X))
    True
    """
    X, back = _as_tensor(G)
    m = resolve_method(method)
    cd = None if compute_dtype is None else as_dtype(compute_dtype)
    return back(apply_method(X, m, steps, cd))


def polar(G: ArrayT, method: str | Schedule | Method = "svd",
          side: str = "right") -> tuple[ArrayT, ArrayT]:
    """Polar decomposition G = U P (``side="right"``) or G = P U (``side="left"``).

    Like ``scipy.linalg.polar``: U = msign(G) by ``method``; P is the symmetric
    positive semidefinite factor, ``U^T G`` (n x n) or ``G U^T`` (m x m), symmetrized.

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> G = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]])
    >>> U, P = polar(G)
    >>> Us, Ps = scipy.linalg.polar(G)
    >>> bool(np.allclose(U, Us) and np.allclose(P, Ps))
    True
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left'; got {side!r}")
    X, back = _as_tensor(G)
    U = apply_method(X, resolve_method(method))
    P = U.mT @ X if side == "right" else X @ U.mT
    P = 0.5 * (P + P.mT)
    return back(U), back(P)
