"""METHODS: the one registry of msign methods (name -> :class:`Method`).

A method is a function ``fn(X, steps, gemm, info) -> X`` on a float tensor of shape
(m, n) or (B, m, n) with m <= n (the API transposes tall input to the small Gram
side first), in the compute dtype.  ``gemm`` is the :class:`msign.gemm.Gemm` its
products go through; ``info`` is None or a dict the method fills with what it did
(``iterations``, ``matmuls``, ``factorizations``, ``flops``, ``converged``).  Adding a
method is one entry here (or one :func:`register` call) plus its tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from . import classical, exact
from .gemm import Gemm
from .iterate import cost, run_schedule
from .schedules import SCHEDULES, Schedule, check_steps

__all__ = ["Method", "METHODS", "compiled", "register", "resolve_method", "preconditioned"]

MethodFn = Callable[[torch.Tensor, "int | None", Gemm, "dict[str, Any] | None"], torch.Tensor]


@dataclass(frozen=True)
class Method:
    """A registry entry.

    ``min_float32`` marks methods built on LAPACK-style factorizations (SVD, QR,
    Cholesky, inverse), which torch offers only in float32/float64: half-precision
    compute dtypes are promoted to float32 for them (documented, shown by the CLI).
    """

    name: str
    fn: MethodFn
    description: str = ""
    schedule: Schedule | None = None
    min_float32: bool = False
    #: raises msign.iterate.NonFiniteInput on CPU for NaN/Inf input (from the norm it takes
    #: anyway), so that msign.msign skips its own pass over the input there
    checks_finite: bool = False
    #: ``fn`` takes ``inplace=True`` to work in the tensor it is given (apply_method passes
    #: it for a copy of its own, such as the cast to the compute dtype)
    takes_inplace: bool = False


def schedule_info(s: Schedule, X: torch.Tensor, steps: int) -> dict[str, Any]:
    """What a schedule costs on X (m <= n, optionally batched): the path that runs."""
    batch = X.shape[0] if X.dim() == 3 else 1
    mms, flops = cost(s, *X.shape[-2:], steps)
    return {"iterations": steps, "matmuls": mms, "factorizations": 0, "flops": batch * flops,
            "converged": None, "precondition": s.precondition}


def _schedule_method(s: Schedule, name: str | None = None, description: str = "") -> Method:
    def fn(X: torch.Tensor, steps: int | None, gemm: Gemm, info: dict | None,
           inplace: bool = False) -> torch.Tensor:
        k = s.resolve_steps(steps)
        if info is not None:
            info.update(schedule_info(s, X, k))
        return run_schedule(X, s, k, gemm, inplace)

    return Method(name or s.name, fn, description or s.source, schedule=s, checks_finite=True,
                  takes_inplace=True)


def _svd(X: torch.Tensor, steps: int | None, gemm: Gemm, info: dict | None) -> torch.Tensor:
    if steps is not None:
        raise ValueError("method 'svd' is exact and takes no steps; pass steps=None")
    if info is not None:
        m, n = X.shape[-2:]
        batch = X.shape[0] if X.dim() == 3 else 1
        # R-SVD with thin U and V (Golub & Van Loan, 4th ed., Fig. 8.6.1), then U V^T.
        info.update(iterations=None, matmuls=1, factorizations=1, converged=None,
                    flops=batch * float(6 * n * m * m + 20 * m**3 + 2 * m * m * n))
    return exact.svd_msign(X)


def _classical(f: Callable[..., torch.Tensor]) -> MethodFn:
    def fn(X: torch.Tensor, steps: int | None, gemm: Gemm, info: dict | None) -> torch.Tensor:
        return f(X, None if steps is None else check_steps(steps), info)

    return fn


METHODS: dict[str, Method] = {
    "svd": Method(
        "svd",
        _svd,
        "exact: U_r V_r^T from torch.linalg.svd; singular values <= max(m, n) eps s_max map to 0",
        min_float32=True,
    ),
    **{name: _schedule_method(s) for name, s in SCHEDULES.items()},
    "newton": Method(
        "newton",
        _classical(classical.newton),
        "scaled Newton (Higham 1986), Frobenius scaling, QR first for rectangular input",
        min_float32=True,
    ),
    "qdwh": Method(
        "qdwh",
        _classical(classical.qdwh),
        "QR-based dynamically weighted Halley (Nakatsukasa, Bai, Gygi 2010)",
        min_float32=True,
    ),
}


def register(name: str, fn: Callable[..., torch.Tensor] | Schedule, *, description: str = "",
             takes_steps: bool = False, overwrite: bool = False) -> Method:
    """Add a method to :data:`METHODS` and return its entry.

    Parameters
    ----------
    name : str
        The name ``msign.msign(G, method=name)`` will accept.
    fn : callable or Schedule
        A Schedule, or a function taking a float tensor of shape (m, n) or (B, m, n) with
        m <= n and returning the same shape: ``fn(X)``, or ``fn(X, steps)`` with
        ``takes_steps=True`` (``steps`` is then an int or None).
    description : str
        One line shown by ``python -m msign methods``.
    takes_steps : bool
        Whether ``fn`` takes ``steps`` as its second argument.  Said, not guessed from the
        signature: a function with other optional arguments must not receive ``steps``.
        A method without it raises ValueError when a caller passes ``steps``.
    overwrite : bool
        Replace an existing entry of that name instead of raising.

    Raises
    ------
    TypeError
        If ``name`` is not a string or ``fn`` is neither callable nor a Schedule.
    ValueError
        If ``name`` is taken and ``overwrite`` is false.

    Examples
    --------
    >>> import torch, msign
    >>> def via_svd(X):
    ...     U, _, Vh = torch.linalg.svd(X, full_matrices=False)
    ...     return U @ Vh
    >>> entry = register("doc-svd", via_svd, description="example")
    >>> msign.msign(torch.eye(2) * 3, "doc-svd")
    tensor([[1., 0.],
            [0., 1.]])
    >>> del METHODS["doc-svd"]
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str; got {name!r}")
    if name in METHODS and not overwrite:
        raise ValueError(
            f"method {name!r} is already registered; pass overwrite=True to replace it"
        )
    if isinstance(fn, Schedule):
        entry = _schedule_method(fn, name, description)
    elif callable(fn):
        def wrapped(X: torch.Tensor, steps: int | None, gemm: Gemm,
                    info: dict | None) -> torch.Tensor:
            if info is not None:
                info.update(iterations=None, matmuls=None, factorizations=None, flops=None,
                            converged=None)
            if takes_steps:
                return fn(X, steps)
            if steps is not None:
                raise ValueError(f"method {name!r} takes no steps (registered without "
                                 f"takes_steps=True); pass steps=None")
            return fn(X)

        entry = Method(name, wrapped, description)
    else:
        raise TypeError(f"fn must be callable or a Schedule; got {type(fn).__name__}")
    METHODS[name] = entry
    return entry


def resolve_method(method: str | Schedule | Method) -> Method:
    """Turn a method name, a Schedule or a Method into a registry entry."""
    if isinstance(method, Method):
        return method
    if isinstance(method, Schedule):
        return _schedule_method(method)
    if isinstance(method, str):
        try:
            return METHODS[method]
        except KeyError:
            raise ValueError(
                f"unknown method {method!r}; expected one of {sorted(METHODS)} or a Schedule"
            ) from None
    raise TypeError(f"method must be a name, a Schedule or a Method; got {type(method).__name__}")


def preconditioned(method: Method, precondition: str) -> Method:
    """``method``'s schedule with ``precondition`` (e.g. "aol") before its first step."""
    from dataclasses import replace

    if method.schedule is None:
        raise ValueError(f"precondition applies to schedule methods; {method.name!r} is not one")
    s = method.schedule
    if s.precondition == precondition:
        return method
    return _schedule_method(replace(s, precondition=precondition,
                                    name=f"{s.name}+{precondition}"))


def compiled(method: str | Schedule, **compile_kwargs: Any) -> Method:
    """The polynomial method ``method`` with its iteration wrapped in ``torch.compile``.

    Use it wherever a method is accepted: ``msign.msign(G, compiled("jordan"))`` or
    ``Muon(..., msign=compiled("polar-express"))``.  Compilation happens on the first call
    per shape and dtype (seconds); after that the normalization and every step run as one
    graph, which saves kernel launches where they dominate (small matrices on a GPU).  The
    result equals the eager one up to rounding (fused elementwise ops may round differently).

    Parameters
    ----------
    method : str or Schedule
        A schedule name (not ``svd``/``newton``/``qdwh``, whose factorizations do not
        compile usefully) or a Schedule.
    **compile_kwargs
        Passed to ``torch.compile`` (e.g. ``mode="max-autotune"``).

    Raises
    ------
    ValueError
        If ``method`` names a method that is not a polynomial schedule.

    Examples
    --------
    >>> import torch
    >>> m = compiled("jordan", backend="eager")
    >>> m.name
    'jordan+compile'
    """
    base = resolve_method(method)
    if base.schedule is None:
        raise ValueError(f"compiled() takes a polynomial schedule; {base.name!r} is not one")
    sched = base.schedule
    fn_c = torch.compile(run_schedule, **compile_kwargs)

    def fn(X: torch.Tensor, steps: int | None, gemm: Gemm, info: dict | None) -> torch.Tensor:
        k = sched.resolve_steps(steps)
        if info is not None:
            info.update(schedule_info(sched, X, k))
        return fn_c(X, sched, k, gemm)

    return Method(f"{base.name}+compile", fn, f"torch.compile({base.name})", schedule=sched)
