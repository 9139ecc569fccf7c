"""METHODS: the one registry of msign methods (name -> :class:`Method`).

A method is a function ``fn(X, steps, info) -> X`` on a float tensor of shape
(m, n) or (B, m, n) with m <= n (the API transposes tall input to the small Gram
side first), in the compute dtype.  ``info`` is None or a dict the method may fill
with what it did (``iterations``, ``matmuls``).  Adding a method is one entry here
(or one :func:`register` call) plus its tests.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from . import classical, exact
from .iterate import run_schedule
from .schedules import SCHEDULES, Schedule, check_steps

__all__ = ["Method", "METHODS", "compiled", "register", "resolve_method"]

MethodFn = Callable[[torch.Tensor, "int | None", "dict[str, Any] | None"], torch.Tensor]


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


def _schedule_method(s: Schedule) -> Method:
    def fn(X: torch.Tensor, steps: int | None, info: dict | None) -> torch.Tensor:
        k = s.resolve_steps(steps)
        if info is not None:
            info.update(iterations=k, matmuls=s.matmuls(k))
        return run_schedule(X, s, k)

    return Method(s.name, fn, s.source, schedule=s)


def _svd(X: torch.Tensor, steps: int | None, info: dict | None) -> torch.Tensor:
    if steps is not None:
        raise ValueError("method 'svd' is exact and takes no steps; pass steps=None")
    return exact.svd_msign(X)


def _classical(f: Callable[..., torch.Tensor]) -> MethodFn:
    def fn(X: torch.Tensor, steps: int | None, info: dict | None) -> torch.Tensor:
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
             overwrite: bool = False) -> Method:
    """Add a method to :data:`METHODS` and return its entry.

    Parameters
    ----------
    name : str
        The name ``msign.msign(G, method=name)`` will accept.
    fn : callable or Schedule
        A Schedule, or ``fn(X)`` / ``fn(X, steps)`` taking a float tensor of shape
        (m, n) or (B, m, n) with m <= n and returning the same shape.
    description : str
        One line shown by ``python -m msign methods``.
    overwrite : bool
        Replace an existing entry of that name instead of raising.

    Raises
    ------
    TypeError
        If ``name`` is not a string or ``fn`` is neither callable nor a Schedule.
    ValueError
        If ``name`` is taken and ``overwrite`` is false.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str; got {name!r}")
    if name in METHODS and not overwrite:
        raise ValueError(
            f"method {name!r} is already registered; pass overwrite=True to replace it"
        )
    if isinstance(fn, Schedule):
        entry = _schedule_method(fn)
        entry = Method(name, entry.fn, description or fn.source, schedule=fn)
    elif callable(fn):
        takes_steps = len(inspect.signature(fn).parameters) >= 2

        def wrapped(X: torch.Tensor, steps: int | None, info: dict | None) -> torch.Tensor:
            return fn(X, steps) if takes_steps else fn(X)

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

    def fn(X: torch.Tensor, steps: int | None, info: dict | None) -> torch.Tensor:
        k = sched.resolve_steps(steps)
        if info is not None:
            info.update(iterations=k, matmuls=sched.matmuls(k))
        return fn_c(X, sched, k)

    return Method(f"{base.name}+compile", fn, f"torch.compile({base.name})", schedule=sched)
