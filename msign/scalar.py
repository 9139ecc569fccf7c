"""Certified analysis of a schedule's composite scalar map f = p_k o ... o p_1.

The image of the interval [lower, 1] under f_{j-1} = p_{j-1} o ... o p_1 is an interval
R_{j-1} = [min, max] (a continuous image of an interval), so the range of f_j is exactly
p_j(R_{j-1}): the min and max of p_j over R_{j-1}, found among its endpoints and the
stationary points of p_j inside it (roots of p_j', by mpmath at >= 50 digits).  Level by
level this gives the band [min f, max f] on [lower, 1] and the worst-case error
max |f - 1| exactly, up to the root-finding precision, with one small polynomial solve per
step: never an under-estimate, as sampling can be.

:func:`rounding_band` adds a model of low-precision arithmetic: before every step the
singular values may move by a relative ``rel`` (e.g. a bf16 unit of round-off); the same
propagation on the widened intervals then encloses every value the perturbed iteration
can take.
"""

from __future__ import annotations

import mpmath

from .schedules import Schedule, get_schedule, odd_poly

__all__ = ["band", "worst_case_error", "rounding_band", "stationary_points"]


def _schedule(s: Schedule | str) -> Schedule:
    if isinstance(s, str):
        return get_schedule(s)
    if not isinstance(s, Schedule):
        raise TypeError(f"schedule must be a Schedule or a schedule name; got {type(s).__name__}")
    return s


def check_lower(lower: float) -> None:
    """ValueError unless 0 < lower < 1 (the left end of a design/analysis interval)."""
    if not (isinstance(lower, (int, float)) and 0 < lower < 1):
        raise ValueError(f"lower must lie in (0, 1); got {lower!r}")


def _real_roots(poly_high_first, tol):
    # Multiple roots (Taylor steps: p'(x) = c (1 - x^2)^d) need the extra precision.
    roots = mpmath.polyroots(poly_high_first, maxsteps=1000, extraprec=4 * mpmath.mp.prec)
    real = sorted(mpmath.re(r) for r in roots if abs(mpmath.im(r)) <= tol * max(1, abs(r)))
    # A double root comes back as two nearly equal roots; keep one so preimages don't double.
    out = []
    for r in real:
        if not out or abs(r - out[-1]) > tol * max(1, abs(r)):
            out.append(r)
    return out


def stationary_points(c, lo, hi) -> list:
    """Real x in (lo, hi) with p'(x) = 0 for the odd polynomial c, at mpmath precision."""
    if len(c) < 2:
        return []
    tol = mpmath.mpf(10) ** (-(mpmath.mp.dps // 2))
    # p'(x) = sum (2j+1) c_j y^j with y = x^2; polyroots wants the highest power first.
    d = [(2 * j + 1) * cj for j, cj in reversed(list(enumerate(c)))]
    out = []
    for y2 in _real_roots(d, tol):
        if y2 > 0:
            out += [x for x in (mpmath.sqrt(y2), -mpmath.sqrt(y2)) if lo < x < hi]
    return sorted(out)


def _propagate(sched: Schedule, lower: float, steps: int | None, rel: float):
    """Exact range of p_k o ... o p_1 over [lower, 1], each input widened by ``rel``."""
    lo, hi = mpmath.mpf(lower), mpmath.mpf(1)
    for step in sched.step_coeffs(steps):
        c = [mpmath.mpf(v) for v in step]
        a, b = lo * (1 - rel), hi * (1 + rel)
        pts = [a, b, *stationary_points(c, a, b)]
        vals = [odd_poly(c, x) for x in pts]
        lo, hi = min(vals), max(vals)
    return lo, hi


def band(schedule: Schedule | str, lower: float = 1e-3, steps: int | None = None,
         dps: int = 50) -> tuple[float, float]:
    """Certified (min f, max f) of the composite map on [lower, 1].

    Examples
    --------
    >>> lo, hi = band("jordan", lower=1e-2)
    >>> round(lo, 4), round(hi, 4)
    (0.6818, 1.1344)
    """
    sched = _schedule(schedule)
    check_lower(lower)
    with mpmath.workdps(dps):
        fmin, fmax = _propagate(sched, lower, steps, 0)
        return float(fmin), float(fmax)


def worst_case_error(schedule: Schedule | str, lower: float = 1e-3, steps: int | None = None,
                     dps: int = 50) -> float:
    """Certified max |f(x) - 1| over x in [lower, 1] for the composite map f.

    Parameters
    ----------
    schedule : Schedule or str
        The schedule (or its name); safety factors are included as in the iteration.
    lower : float
        Left end of the interval, in (0, 1); x = sigma / (safety * ||G||_F).
    steps : int, optional
        Number of steps (default: the schedule's).
    dps : int
        mpmath decimal digits (>= 50 recommended).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``lower`` is not in (0, 1).

    Examples
    --------
    >>> round(worst_case_error("jordan", lower=1e-3), 5)
    0.52946
    """
    sched = _schedule(schedule)
    check_lower(lower)
    with mpmath.workdps(dps):
        fmin, fmax = _propagate(sched, lower, steps, 0)
        return float(max(1 - fmin, fmax - 1))


def rounding_band(schedule: Schedule | str, lower: float = 1e-3, rel: float = 2.0**-8,
                  steps: int | None = None, dps: int = 30) -> tuple[float, float]:
    """Interval enclosure of the band when every step's input is perturbed by ``rel``.

    Model of low-precision arithmetic: before step i each singular value y may be any
    point of [y (1 - rel), y (1 + rel)].  Starting from [lower, 1], each interval is
    widened so, then replaced by the exact range of p_i over it (endpoints and stationary
    points).  The result contains every value the perturbed iteration can produce, so a
    schedule whose ``rounding_band`` stays near 1 cannot blow up under this model.
    ``rel = 2**-8`` is one bf16 unit of relative round-off.
    """
    sched = _schedule(schedule)
    check_lower(lower)
    if not (isinstance(rel, (int, float)) and 0 <= rel < 1):
        raise ValueError(f"rel must lie in [0, 1); got {rel!r}")
    with mpmath.workdps(dps):
        lo, hi = _propagate(sched, lower, steps, rel)
        return float(lo), float(hi)
