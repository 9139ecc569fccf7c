"""The public entry points ``msign`` and ``polar``: validation at the edge, then dispatch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch

from .gemm import GEMM_MODES, resolve_gemm
from .iterate import NonFiniteInput
from .registry import METHODS, Method, preconditioned, resolve_method
from .schedules import PRECONDITIONS, Schedule

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


def _as_tensor(G: Any, name: str = "G", allow_empty: bool = False, check_finite: bool = True
               ) -> tuple[torch.Tensor, Callable[[torch.Tensor], Any]]:
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
    if X.numel() == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (shape {tuple(X.shape)}); m and n must be >= 1")
    if check_finite and not _finite(X):
        raise ValueError(f"{name} contains NaN or Inf")
    return X, back


def _finite(X: torch.Tensor) -> bool:
    """Whether every entry of X is finite, in one reduction where possible.

    ``isfinite(X).all()`` makes four passes over X (11% of a bf16 Jordan msign of 512x2048 on
    a CPU); a finite Frobenius norm implies finite entries in one pass.  Only a non-finite
    norm (a NaN/Inf entry, or finite entries whose norm leaves the dtype's range) needs the
    exact test.
    """
    if X.numel() == 0 or bool(torch.isfinite(torch.linalg.vector_norm(X))):
        return True
    return bool(torch.isfinite(X).all())


def apply_method(X: torch.Tensor, method: Method, steps: int | None = None,
                 compute_dtype: torch.dtype | None = None,
                 info: dict[str, Any] | None = None, gemm: str = "auto") -> torch.Tensor:
    """Run a resolved method on a validated tensor of shape (..., m, n); no input checks.

    Batch dimensions are flattened, tall matrices are transposed to the wide (small
    Gram side) orientation, the method runs in ``compute_dtype`` (promoted to float32
    for ``min_float32`` methods) with its products on the ``gemm`` path
    (:func:`msign.gemm.resolve_gemm`), and the result comes back in X's dtype and shape.
    """
    cd = X.dtype if compute_dtype is None else compute_dtype
    if method.min_float32 and cd in (torch.float16, torch.bfloat16):
        cd = torch.float32
    path = resolve_gemm(gemm, cd, X.device)
    if info is not None:
        info.update(method=method.name, compute_dtype=cd, gemm=path.path)
    *batch, rows, cols = X.shape
    Y = X.reshape(-1, rows, cols) if batch else X
    tall = rows > cols
    if tall:
        Y = Y.mT
    Z = Y.to(cd)
    # A cast made a copy of our own: the method may normalize it in place (one buffer less).
    Y = method.fn(Z, steps, path, info, inplace=True) \
        if method.takes_inplace and Z.dtype != X.dtype else method.fn(Z, steps, path, info)
    if tall:
        Y = Y.mT
    return Y.to(X.dtype).reshape(X.shape)


def msign(G: ArrayT, method: str | Schedule | Method = "polar-express", *,
          steps: int | None = None, compute_dtype: Any = None, gemm: str = "auto",
          precondition: str | None = None, return_info: bool = False
          ) -> ArrayT | tuple[ArrayT, dict[str, Any]]:
    """Matrix sign / polar factor msign(G) = U V^T of G = U diag(s) V^T.

    Parameters
    ----------
    G : torch.Tensor or numpy.ndarray, shape (..., m, n)
        Real floating-point input; leading dimensions are a batch.
    method : str or Schedule
        A name in ``msign.METHODS`` ({methods}) or any Schedule.
    steps : int, optional
        Iterations; ``None`` is the method's default (jordan 5, you 6, polar-express 8,
        cubic 21, quintic 14, newton/qdwh until their stopping rule).  A per-step schedule
        run longer than its table repeats the last tuple; shorter takes its first ones.
    compute_dtype : torch.dtype or str, optional
        Arithmetic dtype (``torch.bfloat16`` or ``"bf16"``, fp16, fp32, fp64); ``None``
        means G's dtype.  ``svd``, ``newton`` and ``qdwh`` need factorizations that torch
        provides only in float32/64, so they compute half-precision input in float32.
    gemm : {{"auto", "native", "emulated"}}
        How bf16/fp16 matrix products are computed (fp32/fp64 are always native).
        ``native``: torch's half-precision GEMM.  ``emulated``: an fp32 GEMM of the
        half-precision inputs, rounded once to the compute dtype, as a GPU tensor core
        does; for CPUs whose native bf16 GEMM is a slow fallback (AVX2 only).  ``auto``
        (default): native on GPUs and on CPUs with fast half-precision GEMMs, emulated
        where a once-per-process check finds the native one slow (:mod:`msign.gemm`).
    precondition : {{None, "aol"}}
        For schedule methods: rescale the input before the first step (``"aol"``: the
        almost-orthogonal-layer row scaling of Turbo-Muon, :func:`msign.iterate.aol`; its
        Gram product is the first step's own).  Overrides the schedule's own setting;
        ``None`` keeps it (``turbo-muon`` is preconditioned by default).
    return_info : bool
        Also return a dict of what was done (see Returns).

    Returns
    -------
    X : same type, shape and dtype as G
        The approximation of msign(G); exactly zero for a zero matrix.
    info : dict, only with ``return_info=True``
        ``method``; ``iterations`` (None for svd and plain callables); ``matmuls`` (matrix
        products, as run: a ``-gram`` schedule counts its Gram-side products);
        ``factorizations`` (QR/Cholesky/inverse/SVD calls); ``flops`` (the cost model of
        :func:`msign.iterate.cost`, or standard operation counts for the factorizations);
        ``compute_dtype``; ``gemm`` (the path used: "native" or "emulated");
        ``converged`` (newton/qdwh: whether the stopping rule was met; None for fixed
        schedules and svd); ``precondition`` (schedules: None or "aol").  A newton/qdwh
        run that reaches its iteration cap warns.

    Raises
    ------
    TypeError
        G not a tensor/array, complex or integer G, a bad method or dtype type.
    ValueError
        G with fewer than 2 dimensions, empty, or holding NaN/Inf; an unknown method
        name; ``steps`` not a positive int; ``newton`` on rank-deficient G; an unknown
        ``precondition`` or one given to a method without a schedule.

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
    >>> X, info = msign(G, "jordan", return_info=True)
    >>> info["iterations"], info["matmuls"], info["flops"], info["converged"]
    (5, 15, 240.0, None)
    """
    m = resolve_method(method)
    if precondition is not None:
        if precondition not in PRECONDITIONS:
            raise ValueError(f"precondition must be None or one of {PRECONDITIONS}; "
                             f"got {precondition!r}")
        m = preconditioned(m, precondition)
    # A schedule on CPU finds NaN/Inf in the norm it takes anyway: no pass of our own.
    engine_checks = m.checks_finite and isinstance(G, (torch.Tensor, np.ndarray)) and (
        not isinstance(G, torch.Tensor) or G.device.type == "cpu")
    X, back = _as_tensor(G, check_finite=not engine_checks)
    cd = None if compute_dtype is None else as_dtype(compute_dtype)
    if gemm not in GEMM_MODES:
        raise ValueError(f"gemm must be one of {GEMM_MODES}; got {gemm!r}")
    if not isinstance(return_info, bool):
        raise TypeError(f"return_info must be a bool; got {return_info!r}")
    info: dict[str, Any] | None = {} if return_info else None
    try:
        Y = back(apply_method(X, m, steps, cd, info, gemm))
    except NonFiniteInput:
        if not _finite(X):
            raise ValueError("G contains NaN or Inf") from None
        raise ValueError(f"G has entries outside the range of compute_dtype {cd}") from None
    return (Y, info) if return_info else Y


# The method list is the registry's, not a copy that can drift from it.
msign.__doc__ = msign.__doc__.format(methods=", ".join(f"``{n}``" for n in METHODS))


def polar(G: ArrayT, method: str | Schedule | Method = "svd",
          side: str = "right") -> tuple[ArrayT, ArrayT]:
    """Polar decomposition G = U P (``side="right"``) or G = P U (``side="left"``).

    Like ``scipy.linalg.polar``: U = msign(G) by ``method``; P is the symmetric
    positive semidefinite factor, ``U^T G`` (n x n) or ``G U^T`` (m x m), symmetrized.
    Empty input is accepted as SciPy accepts it: for shape (0, n) U is (0, n) and P the
    (n, n) zero matrix (side="right").  :func:`msign` itself rejects empty input.  Unlike
    SciPy, leading batch dimensions are allowed and the method is selectable.

    Parameters
    ----------
    G : torch.Tensor or numpy.ndarray, shape (..., m, n)
    method : str or Schedule
        As for :func:`msign`; ``svd`` (default) is exact.
    side : {"right", "left"}

    Returns
    -------
    U, P : same type and dtype as G

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
    X, back = _as_tensor(G, allow_empty=True)
    U = apply_method(X, resolve_method(method)) if X.numel() else X.clone()
    P = U.mT @ X if side == "right" else X @ U.mT
    P = 0.5 * (P + P.mT)
    return back(U), back(P)
