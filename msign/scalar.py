"""Rigorous analysis of a schedule's composite scalar map f = p_k o ... o p_1.

The image of [lower, 1] under f_{j-1} is an interval, so the range of f_j is p_j of that
interval: the extremes of p_j over it, found among its endpoints and the stationary points
of p_j inside it.  :func:`band` and :func:`worst_case_error` make every part of that
argument rigorous:

- the coefficients are the exact binary values the engine uses (``Schedule.step_coeffs``,
  safety applied), converted to exact rationals;
- the stationary points of p (roots of p'(x) = sum (2j+1) c_j x^(2j), a polynomial in
  y = x^2) are isolated by a Sturm sequence in exact rational arithmetic and refined by
  bisection to intervals of relative width 2^-100, so none is missed or invented;
- p is evaluated at the endpoints and over those root intervals in outward-rounded interval
  arithmetic (``mpmath.iv``, 200 bits), and each step's enclosure [L, H] is carried to the
  next (p's range over [L, H] contains its range over the true, smaller interval);
- the returned floats are rounded outward (``math.nextafter``).

So every returned bound provably contains the true value: lo <= min f, hi >= max f.  The
earlier float path (mpmath round-to-nearest, ``polyroots`` with a tolerance deciding which
roots are real) is kept as a fast estimate: :func:`estimate_band`,
:func:`estimate_worst_case_error`.

Low-precision models, rigorous the same way: :func:`rounding_band` widens each step's
input by a relative ``rel`` (the earlier, optimistic model); :func:`noise_band` adds after
each step an absolute perturbation of the singular values, ``cu`` times the size of the
step's terms ``sum_j |c_j| ||X||^(2j+1)`` (a GEMM's rounding error scales with its operands'
norms, so small singular values move by about u ||X||, not by u times themselves;
``experiments/matrix/rounding_model.py`` measures the constant).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager
from fractions import Fraction

import mpmath
from mpmath import iv

from .schedules import Schedule, get_schedule, odd_poly

__all__ = ["band", "worst_case_error", "rounding_band", "noise_band", "noise_trajectory",
           "estimate_band",
           "estimate_worst_case_error", "stationary_points", "critical_intervals"]

#: bits of the interval arithmetic; root intervals are refined to relative width 2^-REFINE.
PREC_BITS = 200
REFINE = 100


@contextmanager
def _ivprec():
    """mpmath's interval context at PREC_BITS (it has no workprec of its own)."""
    old = iv.prec
    iv.prec = PREC_BITS
    try:
        yield
    finally:
        iv.prec = old


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


# -- exact real-root isolation (Sturm) ---------------------------------------------------------

Poly = list[Fraction]  # coefficients, lowest power first


def _trim(p: Poly) -> Poly:
    while len(p) > 1 and p[-1] == 0:
        p = p[:-1]
    return p


def _deriv(p: Poly) -> Poly:
    return _trim([i * c for i, c in enumerate(p)][1:] or [Fraction(0)])


def _rem(a: Poly, b: Poly) -> Poly:
    a = list(a)
    while len(a) >= len(b) and any(a):
        f = a[-1] / b[-1]
        shift = len(a) - len(b)
        for i, c in enumerate(b):
            a[shift + i] -= f * c
        a = _trim(a[:-1]) if len(a) > 1 else [Fraction(0)]
    return _trim(a)


def _eval(p: Poly, y: Fraction) -> Fraction:
    acc = Fraction(0)
    for c in reversed(p):
        acc = acc * y + c
    return acc


def _sturm(p: Poly) -> list[Poly]:
    chain = [_trim(p), _deriv(p)]
    while any(chain[-1]) and len(chain[-1]) > 1:
        r = _rem(chain[-2], chain[-1])
        if not any(r):
            break
        chain.append([-c for c in r])
    return chain


def _changes(chain: list[Poly], y: Fraction) -> int:
    signs = [v for v in (_eval(p, y) for p in chain) if v != 0]
    return sum(1 for a, b in zip(signs, signs[1:], strict=False) if (a > 0) != (b > 0))


def positive_root_intervals(p: Poly) -> list[tuple[Fraction, Fraction]]:
    """Disjoint rational intervals [a, b], each holding exactly one distinct root y > 0 of p
    (multiple roots once), of relative width <= 2^-REFINE; a root hit exactly is [y, y]."""
    p = _trim(p)
    if len(p) == 1:
        return []
    chain = _sturm(p)
    bound = 1 + max(abs(c / p[-1]) for c in p[:-1])  # Cauchy: every root has |y| < bound
    lo = Fraction(0)
    if _eval(p, lo) == 0:  # y = 0 is not a positive root; step off it
        lo = Fraction(1, 2**(4 * REFINE)) / bound
    todo = [(lo, Fraction(bound))]
    found = []
    while todo:
        a, b = todo.pop()
        n = _changes(chain, a) - _changes(chain, b)  # distinct roots in (a, b]
        if n == 0:
            continue
        if n > 1:
            m = (a + b) / 2
            todo += [(a, m), (m, b)]
            continue
        while b - a > max(b, Fraction(1)) / 2**REFINE:
            m = (a + b) / 2
            if _eval(p, m) == 0:
                a = b = m
                break
            if _changes(chain, a) - _changes(chain, m) == 1:
                b = m
            else:
                a = m
        found.append((a, b))
    return sorted(found)


def _deriv_in_y(c: Sequence[Fraction]) -> Poly:
    """p'(x) = sum (2j+1) c_j x^(2j) as a polynomial in y = x^2."""
    return _trim([(2 * j + 1) * cj for j, cj in enumerate(c)])


def critical_intervals(c: Sequence[float]) -> list[tuple[iv.mpf, iv.mpf]]:
    """Interval enclosures (lo, hi ends as iv numbers) of the x > 0 with p'(x) = 0."""
    if len(c) < 2:
        return []
    exact = [Fraction(v) for v in c]
    out = []
    with _ivprec():
        for a, b in positive_root_intervals(_deriv_in_y(exact)):
            out.append((iv.sqrt(iv.mpf(a.numerator) / a.denominator),
                        iv.sqrt(iv.mpf(b.numerator) / b.denominator)))
    return out


def _iv_poly(c: Sequence[Fraction], x):
    """p(x) in interval arithmetic, Horner in x^2 (x an iv number or interval)."""
    x2 = x * x
    acc = iv.mpf(c[-1].numerator) / c[-1].denominator
    for cj in reversed(c[:-1]):
        acc = acc * x2 + iv.mpf(cj.numerator) / cj.denominator
    return acc * x


def _step_range(c: Sequence[float], crit, L, H):
    """Enclosure (L', H') of p's range over [L, H] (point intervals, L <= H), rigorous."""
    exact = [Fraction(v) for v in c]
    pts = [L, H]
    for lo, hi in crit:  # a root interval meeting [L, H] (either sign), taken whole
        for a, b in ((lo.a, hi.b), (-hi.b, -lo.a)):
            if b >= L and a <= H:
                pts.append(iv.mpf([max(a, L).a, min(b, H).b]))
    if L <= 0 <= H:
        pts.append(iv.mpf(0))
    vals = [_iv_poly(exact, x) for x in pts]
    return min(v.a for v in vals), max(v.b for v in vals)


def _propagate(sched: Schedule, lower: float, steps: int | None, widen=None,
               widen_result: bool = False, upper: float = 1.0) -> tuple:
    """Rigorous enclosure [L, H] (point intervals) of the composite's range over
    [lower, upper].

    ``widen(L, H) -> (L, H)`` models low-precision perturbations, applied before each step
    (and to the result if ``widen_result``).
    """
    with _ivprec():
        L, H = iv.mpf(lower), iv.mpf(upper)
        for step in sched.step_coeffs(steps):
            if widen is not None:
                L, H = widen(L, H)
            if len(step) == 1:
                lo, hi = L * step[0], H * step[0]
                L, H = min(lo.a, hi.a), max(lo.b, hi.b)
                continue
            L, H = _step_range(step, critical_intervals(step), L, H)
        return widen(L, H) if widen is not None and widen_result else (L, H)


def _down(v) -> float:
    """The largest float <= the (point) interval's value."""
    f = float(v.a)
    with _ivprec():
        return f if iv.mpf(f) <= v.a else math.nextafter(f, -math.inf)


def _up(v) -> float:
    """The smallest float >= the (point) interval's value."""
    f = float(v.b)
    with _ivprec():
        return f if iv.mpf(f) >= v.b else math.nextafter(f, math.inf)


def band(schedule: Schedule | str, lower: float = 1e-3, steps: int | None = None
         ) -> tuple[float, float]:
    """Rigorous (lo, hi) with lo <= min f and hi >= max f on [lower, 1].

    Parameters
    ----------
    schedule : Schedule or str
        The schedule (or its name); safety factors are included as in the iteration.
    lower : float
        Left end of the interval, in (0, 1); x = sigma / (safety * ||G||_F).
    steps : int, optional
        Number of steps (default: the schedule's).

    Returns
    -------
    (float, float)
        Outward-rounded bounds, tight to about 1e-30 relative (see the module docstring).

    Raises
    ------
    ValueError
        If ``lower`` is not in (0, 1).

    Examples
    --------
    >>> lo, hi = band("jordan", lower=1e-2)
    >>> round(lo, 4), round(hi, 4)
    (0.6818, 1.1344)
    """
    sched = _schedule(schedule)
    check_lower(lower)
    L, H = _propagate(sched, lower, steps)
    return _down(L), _up(H)


def worst_case_error(schedule: Schedule | str, lower: float = 1e-3,
                     steps: int | None = None) -> float:
    """Rigorous upper bound on ``max |f(x) - 1|`` over x in [lower, 1].

    Parameters and errors as :func:`band`.

    Examples
    --------
    >>> round(worst_case_error("jordan", lower=1e-3), 5)
    0.52946
    """
    sched = _schedule(schedule)
    check_lower(lower)
    L, H = _propagate(sched, lower, steps)
    with _ivprec():
        return _up(max((1 - L).b, (H - 1).b))


def _check_upper(lower: float, upper: float) -> None:
    if not (isinstance(upper, (int, float)) and lower <= upper <= 1):
        raise ValueError(f"upper must lie in [lower, 1]; got {upper!r}")


def _model_args(schedule, lower: float, upper: float, name: str, value: float) -> Schedule:
    """The schedule, after checking a rounding model's arguments (``value`` in [0, 1))."""
    sched = _schedule(schedule)
    check_lower(lower)
    _check_upper(lower, upper)
    if not (isinstance(value, (int, float)) and 0 <= value < 1):
        raise ValueError(f"{name} must lie in [0, 1); got {value!r}")
    return sched


def rounding_band(schedule: Schedule | str, lower: float = 1e-3, rel: float = 2.0**-8,
                  steps: int | None = None, upper: float = 1.0) -> tuple[float, float]:
    """Rigorous band when every step's input may move by a relative ``rel``.

    The earlier model of low-precision arithmetic: before step i each singular value y may
    be any point of [y (1 - rel), y (1 + rel)].  It is optimistic for bf16 GEMMs, whose error
    scales with ||X|| rather than with each singular value (see :func:`noise_band`).
    ``upper`` < 1 follows part of the spectrum (``lower = upper``: one singular value).
    """
    sched = _model_args(schedule, lower, upper, "rel", rel)

    def widen(L, H):
        lo = L * (1 - iv.mpf(rel)) if L > 0 else L * (1 + iv.mpf(rel))
        hi = H * (1 + iv.mpf(rel)) if H > 0 else H * (1 - iv.mpf(rel))
        return lo.a, hi.b

    L, H = _propagate(sched, lower, steps, widen, upper=upper)
    return _down(L), _up(H)


def _magnitudes(L, H):
    """The range of |x| for x in [L, H]: singular values are magnitudes."""
    if L < 0 < H:
        return iv.mpf(0), max(-L, H)
    return (-H, -L) if H <= 0 else (L, H)


def noise_band(schedule: Schedule | str, lower: float = 1e-3, cu: float = 2.0**-8,
               steps: int | None = None, upper: float = 1.0) -> tuple[float, float]:
    """Rigorous band of singular values when rounding moves each by up to ``cu * ||p(X)||``.

    Model (measured by ``experiments/matrix/rounding_model.py``, validated out of sample by
    ``experiments/matrix/rounding_heldout.py``): storing X_0 = G / nu, and every step
    x -> p(x), add to each singular value a delta with ``|delta| <= cu ||p(X)||_2`` (the upper
    end of the step's enclosure bounds ||p(X)||_2), ``cu = c u`` with u the unit round-off and
    c measured (``c_sigma`` there).  The standard normwise GEMM bound scales with the step's
    terms, ``sum_j |c_j| ||X||^(2j+1)`` (the study's ``kappa`` normalizes by that); the output's
    bf16 store scales with ||p(X)||, and either way a small singular value moves by about u
    times a norm, not by u times itself (the relative model of :func:`rounding_band`).  The
    result is rigorous for a given c; that c bounds real bf16 steps is measured, not proven.
    The band tracks singular values (magnitudes, >= 0) from
    [lower, 1]; once it reaches 0 its lower end says only that tiny singular values sit at
    the noise floor, and its upper end is the quantity to read (does the schedule stay
    bounded when rounding lifts tiny singular values into range?).  A sign flip of f is
    invisible here: :func:`band` shows it.  ``upper`` < 1 follows part of the spectrum
    (``lower = upper``: one singular value, with ||X|| taken as its own size, so use it
    for the largest).
    """
    sched = _model_args(schedule, lower, upper, "cu", cu)

    def widen(L, H):
        L, H = _magnitudes(L, H)
        if not abs(H) < iv.mpf(1e300):
            return iv.mpf(0), iv.mpf("inf")
        eps = (H * iv.mpf(cu)).b
        return max(iv.mpf(0), (L - eps).a), (H + eps).b

    L, H = _propagate(sched, lower, steps, widen, widen_result=True, upper=upper)
    return _down(L), _up(H) if abs(H) < iv.mpf(1e300) else math.inf


def noise_trajectory(schedule: Schedule | str, lower: float, upper: float, cu: float,
                     points: Sequence[float] = (), steps: int | None = None) -> dict:
    """Step-by-step rigorous enclosures under :func:`noise_band`'s model.

    ``band``: after each step, the interval holding every singular value that started in
    [lower, upper] (its upper end bounds ||X_k||).  ``points``: for each starting x, the
    interval holding that singular value, each step widened by cu times the band's upper
    end (the noise scales with ||X||, whatever the singular value).  Lists of (lo, hi)
    floats, outward rounded; an entry of ``inf`` means the model lets it blow up.
    """
    sched = _schedule(schedule)
    check_lower(lower)
    _check_upper(lower, upper)
    with _ivprec():
        cu_iv = iv.mpf(cu)
        band_k = (iv.mpf(lower), iv.mpf(upper))
        tracks = [(iv.mpf(x), iv.mpf(x)) for x in points]
        out = {"band": [], "points": [[] for _ in points]}

        def step_of(c, LH, eps):
            L, H = LH
            if len(c) == 1:
                lo, hi = L * c[0], H * c[0]
                L, H = min(lo.a, hi.a), max(lo.b, hi.b)
            else:
                L, H = _step_range(c, crit, L, H)
            L, H = _magnitudes(L, H)
            return max(iv.mpf(0), (L - eps).a), (H + eps).b

        eps = (band_k[1] * cu_iv).b  # storing X_0
        band_k = (max(iv.mpf(0), (band_k[0] - eps).a), (band_k[1] + eps).b)
        tracks = [(max(iv.mpf(0), (a - eps).a), (b + eps).b) for a, b in tracks]
        for c in sched.step_coeffs(steps):
            crit = critical_intervals(c)
            if not abs(band_k[1]) < iv.mpf(1e300):
                out["band"].append((0.0, math.inf))
                for t in out["points"]:
                    t.append((0.0, math.inf))
                continue
            # the noise of this step is set by the norm of its output, bounded by the band
            new_band = step_of(c, band_k, iv.mpf(0))
            eps = (new_band[1] * cu_iv).b
            band_k = (max(iv.mpf(0), (new_band[0] - eps).a), (new_band[1] + eps).b)
            tracks = [step_of(c, t, eps) for t in tracks]
            big = iv.mpf(1e300)
            out["band"].append((_down(band_k[0]), _up(band_k[1]) if band_k[1] < big
                                else math.inf))
            for t, acc in zip(tracks, out["points"], strict=True):
                acc.append((_down(t[0]), _up(t[1]) if t[1] < big else math.inf))
        return out


# -- the fast estimate (the earlier float path) ----------------------------------------------

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
    """Real x in (lo, hi) with p'(x) = 0 for the odd polynomial c, at mpmath precision.

    A floating-point estimate (a tolerance decides which roots are real), for design
    iterations that need speed; certification uses :func:`critical_intervals`.
    """
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


def estimate_band(schedule: Schedule | str, lower: float = 1e-3, steps: int | None = None,
                  dps: int = 50) -> tuple[float, float]:
    """Fast estimate of (min f, max f): round-to-nearest mpmath, tolerance-based real roots.

    Agrees with :func:`band` to about 1e-25 on the named schedules, but is not a proof.
    """
    sched = _schedule(schedule)
    check_lower(lower)
    with mpmath.workdps(dps):
        lo, hi = mpmath.mpf(lower), mpmath.mpf(1)
        for step in sched.step_coeffs(steps):
            c = [mpmath.mpf(v) for v in step]
            pts = [lo, hi, *stationary_points(c, lo, hi)]
            vals = [odd_poly(c, x) for x in pts]
            lo, hi = min(vals), max(vals)
        return float(lo), float(hi)


def estimate_worst_case_error(schedule: Schedule | str, lower: float = 1e-3,
                              steps: int | None = None, dps: int = 50) -> float:
    """Fast estimate of ``max |f - 1|`` on [lower, 1] (see :func:`estimate_band`)."""
    lo, hi = estimate_band(schedule, lower, steps, dps)
    return max(1 - lo, hi - 1)
