"""A schedule in the form other Muon projects accept: ``python -m msign export NAME``.

- ``torch``: ``torch.optim.Muon``'s ``ns_coefficients`` and ``ns_steps`` (one quintic
  triple, Frobenius normalization, no safety factor or preconditioning: what torch runs);
- ``optax``: ``optax.contrib.muon``'s ``ns_coeffs`` of shape (steps, 3) and ``ns_steps``;
- ``emerging``: NVIDIA Emerging-Optimizers' ``newton_schulz(..., coefficient_type="custom",
  custom_coefficient_sets=...)``, one triple per step (cubic steps as (a, b, 0));
- ``dion``: a ``newton_schulz_func(X, epsilon)`` for microsoft/dion's ``Muon``/``Dion2``,
  any degree, with the safety factor and AOL preconditioning;
- ``json``: :meth:`msign.Schedule.to_json`.

The triple forms normalize by ||G||_F alone, so a safety factor s is folded into the first
step (its x^(2j+1) coefficient divided by s^(2j+1)); a schedule they cannot express (degree 7
steps, AOL, Schatten-4 normalization) raises ValueError naming what is missing.
"""

from __future__ import annotations

from .schedules import Schedule

__all__ = ["FORMATS", "export", "triples"]

FORMATS = ("torch", "optax", "dion", "emerging", "json")


def triples(schedule: Schedule, steps: int | None = None) -> list[tuple[float, float, float]]:
    """The schedule as per-step (a, b, c) of a X + (b A + c A^2) X on X = G / ||G||_F.

    Examples
    --------
    >>> from msign import get_schedule
    >>> triples(get_schedule("jordan"), 2)
    [(3.4445, -4.775, 2.0315), (3.4445, -4.775, 2.0315)]
    """
    why = [w for w, bad in (("AOL preconditioning", schedule.precondition is not None),
                            ("Schatten-4 normalization", schedule.normalization != "fro"),
                            ("steps of degree above 5", schedule.degree > 5)) if bad]
    if why:
        raise ValueError(f"schedule {schedule.name!r} needs {' and '.join(why)}, which a "
                         "coefficient-triple form cannot express; use --format dion or json")
    out = []
    for i, c in enumerate(schedule.step_coeffs(steps)):
        c = (tuple(c) + (0.0, 0.0))[:3]
        if i == 0 and schedule.safety != 1.0:  # the input's 1 / s, folded into step 1
            c = tuple(v / schedule.safety ** (2 * j + 1) for j, v in enumerate(c))
        out.append(c)
    return out


def _torch(s: Schedule) -> str:
    t = triples(s)
    if len(set(t)) != 1 or t[0][2] == 0.0:
        raise ValueError(f"torch.optim.Muon runs one quintic triple for every step; schedule "
                         f"{s.name!r} has {len(set(t))} distinct steps (use --format optax, "
                         "emerging or dion)")
    return (f"# {s.name}: {s.source}\n"
            f"torch.optim.Muon(params, ns_coefficients={t[0]!r}, ns_steps={len(t)})")


def _listed(s: Schedule, head: str, open_: str, close: str, call: str) -> str:
    t = triples(s)
    rows = ",\n".join(f"    {c!r}" for c in t)
    return f"# {s.name}: {s.source}\n{head} = {open_}\n{rows},\n{close}\n" + call.format(len(t))


def _optax(s: Schedule) -> str:
    return _listed(s, "ns_coeffs", "(", ")", "optax.contrib.muon(learning_rate, "
                   "ns_coeffs=ns_coeffs, ns_steps={})")


def _emerging(s: Schedule) -> str:
    return _listed(s, "custom_coefficient_sets", "[", "]", 'newton_schulz(x, steps={}, '
                   'coefficient_type="custom", custom_coefficient_sets=custom_coefficient_sets)')


_DION = '''import torch


def newton_schulz(X, epsilon=1e-7):
    """{name} in bf16, exported by msign {version}: pass as Muon(..., newton_schulz_func=...).

    {source}
    """
    steps = {steps!r}
    Y = X.to(torch.bfloat16)
    tall = Y.size(-2) > Y.size(-1)
    if tall:
        Y = Y.mT
    Y = Y / (Y.norm(dim=(-2, -1), keepdim=True) * {norm_safety!r} + epsilon)
    fma = torch.addmm if Y.dim() == 2 else torch.baddbmm  # one rounding per product
    A = None
{aol}    for c in steps:
        A = Y @ Y.mT if A is None else A
        if len(c) == 2:
            Y = fma(Y, A, Y, beta=c[0], alpha=c[1])
        else:  # Horner in A: c1 A + c2 A^2 + ... + cd A^d
            B = fma(A, A, A, beta=c[-2], alpha=c[-1])
            for cj in reversed(c[1:-2]):
                B = fma(A, B, A, beta=cj)
            Y = fma(Y, B, Y, beta=c[0])
        A = None
    if tall:
        Y = Y.mT
    return Y.to(X.dtype)
'''

_AOL = '''    A = Y @ Y.mT  # AOL: rows scaled by (sum_j |A_ij|)^(-1/2), the Gram matrix reused
    d = (torch.rsqrt(A.abs().sum(dim=-1).float().clamp_min(epsilon)) / {safety!r}).to(Y.dtype)
    Y, A = Y * d.unsqueeze(-1), A * d.unsqueeze(-1) * d.unsqueeze(-2)
'''


def _dion(s: Schedule) -> str:
    from . import __version__

    if s.normalization != "fro":
        raise ValueError(f"schedule {s.name!r} uses Schatten-4 normalization, which the "
                         "exported function does not implement; use --format json")
    steps = [tuple(c) for c in s.step_coeffs(None)]
    if any(len(c) < 2 for c in steps):
        raise ValueError(f"schedule {s.name!r} has a plain scaling step; use --format json")
    aol = s.precondition == "aol"  # AOL is scale-free: the safety factor goes after it
    return _DION.format(name=s.name, version=__version__, source=s.source, steps=steps,
                        norm_safety=1.0 if aol else s.safety,
                        aol=_AOL.format(safety=s.safety) if aol else "")


def export(schedule: Schedule, fmt: str) -> str:
    """The text of ``schedule`` in format ``fmt`` (one of :data:`FORMATS`).

    Raises
    ------
    ValueError
        An unknown format, or a schedule the format cannot express.

    Examples
    --------
    >>> from msign import get_schedule
    >>> print(export(get_schedule("jordan"), "torch").splitlines()[-1])
    torch.optim.Muon(params, ns_coefficients=(3.4445, -4.775, 2.0315), ns_steps=5)
    """
    forms = {"torch": _torch, "optax": _optax, "dion": _dion, "emerging": _emerging,
             "json": Schedule.to_json}
    if fmt not in forms:
        raise ValueError(f"format must be one of {FORMATS}; got {fmt!r}")
    return forms[fmt](schedule)
