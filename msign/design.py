"""Coefficient design: exact Newton-Schulz derivations (sympy) and minimax schedules (mpmath).

- :func:`taylor_ns`, :func:`pade`: the Newton-Schulz polynomials and the Pade (Halley-type)
  rational iterations from the series of (1 - t)^(-1/2) at t = 1 - x^2, exactly.
- :func:`minimax_odd`: the best odd polynomial approximation of 1 on [lower, upper]
  (Remez exchange at >= 50 digits) with its equioscillation error.
- :func:`polar_express`: the greedy minimax composition of Amsel, Persson, Musco and
  Gower (2025), reproducing their published table.
- :func:`cans`: Chebyshev-alternance optimal steps on a chosen interval [lower, upper]
  (Grishina, Smirnov and Rakhuba 2025): the cubic in closed form, higher degrees by Remez.
- :func:`jordan_style`: Keller Jordan's criterion (largest slope at 0 under a band
  constraint on the composite map) as a reproducible constrained optimization.

References
----------
N. Amsel, D. Persson, C. Musco, R. M. Gower, "The Polar Express: Optimal matrix sign
methods and their application to the Muon algorithm", arXiv:2505.16932, 2025.
E. Grishina, M. Smirnov, M. Rakhuba, "Accelerating Newton-Schulz iteration for orthogonalization
via Chebyshev-type polynomials" (CANS), arXiv:2506.10935v1, 2025.
C. Kenney, A. J. Laub, "Rational iterative methods for the matrix sign function",
SIAM J. Matrix Anal. Appl. 12(2), 1991 (the Pade family).
K. Jordan, "Muon: An optimizer for hidden layers in neural networks", 2024.
"""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np
import sympy

from . import scalar
from .scalar import check_lower, stationary_points
from .schedules import SCHEDULES, Schedule, check_steps, odd_poly

__all__ = ["taylor_ns", "pade", "minimax_odd", "cubic_alternance", "cans", "polar_express",
           "jordan_style", "band_design", "fewest_matmuls", "coverage", "shared_band",
           "step_matmuls", "PE_CUSHION"]

#: Cushion of the published Polar Express table (NoahAmsel/PolarExpress).  The repository's
#: comment says 0.02, but only this value reproduces its table; it is also the value of Su
#: Jianlin's re-derivation (kexue.fm/archives/10996).  Test: tests/test_design.py.
PE_CUSHION = 0.02407327424182761
#: Interval ratio l/u above which a step is the Taylor polynomial scaled to u (Polar Express):
#: the minimax problem degenerates there and Taylor is optimal to rounding.
PE_TAYLOR_RATIO = 1 - 5e-6

_t, _x = sympy.symbols("t x")


def _odd_degree(degree: int) -> int:
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1 or degree % 2 == 0:
        raise ValueError(f"degree must be an odd positive int; got {degree!r}")
    return (degree - 1) // 2


def _series(k: int) -> list[sympy.Rational]:
    """Taylor coefficients binom(2j, j) / 4^j, j <= k, of (1 - t)^(-1/2) at t = 0."""
    s = sympy.series((1 - _t) ** sympy.Rational(-1, 2), _t, 0, k + 1).removeO()
    return [sympy.Rational(s.coeff(_t, j)) for j in range(k + 1)]


def _odd_coeffs(expr: sympy.Expr, d: int) -> tuple[sympy.Rational, ...]:
    poly = sympy.Poly(sympy.expand(expr), _x)
    return tuple(sympy.Rational(poly.coeff_monomial(_x ** (2 * j + 1))) for j in range(d + 1))


def taylor_ns(k: int, as_expr: bool = False):
    """Degree-(2k+1) Newton-Schulz polynomial, exact, from the Taylor series.

    ``x * sum_{j<=k} binom(2j, j)/4^j (1 - x^2)^j``, the truncated series of
    x (x^2)^(-1/2) = sign(x) around x^2 = 1, so p(1) = 1 and p^(j)(1) = 0 for 1 <= j <= k.

    Parameters
    ----------
    k : int
        Order, k >= 1.
    as_expr : bool
        Return the sympy polynomial in ``x`` instead of its odd coefficients.

    Returns
    -------
    tuple of sympy.Rational
        ``(c0, c1, ..., ck)`` of ``c0 x + c1 x^3 + ... + ck x^(2k+1)``.

    Examples
    --------
    >>> taylor_ns(1)
    (3/2, -1/2)
    >>> taylor_ns(2)
    (15/8, -5/4, 3/8)
    >>> taylor_ns(3, as_expr=True)
    -5*x**7/16 + 21*x**5/16 - 35*x**3/16 + 35*x/16
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int; got {k!r}")
    expr = sympy.expand(_x * sum(c * (1 - _x**2) ** j for j, c in enumerate(_series(k))))
    return expr if as_expr else _odd_coeffs(expr, k)


def pade(m: int, n: int) -> tuple[tuple[sympy.Rational, ...], tuple[sympy.Rational, ...]]:
    """The [m/n] Pade iteration x P(1 - x^2) / Q(1 - x^2) for the sign function, exact.

    P/Q is the [m/n] Pade approximant of (1 - t)^(-1/2) at t = 0 (Kenney-Laub family).
    [1/1] is Halley's iteration x (3 + x^2) / (1 + 3 x^2), the map QDWH weights
    dynamically; [m/0] is :func:`taylor_ns`.

    Returns
    -------
    (num, den) : tuples of sympy.Rational
        ``num`` are the coefficients of x, x^3, ..., ``den`` of 1, x^2, x^4, ..., scaled
        so that ``den`` has leading (x^0) coefficient 1.

    Examples
    --------
    >>> pade(1, 1)
    ((3, 1), (1, 3))
    """
    for name, v in (("m", m), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name} must be a non-negative int; got {v!r}")
    c = _series(m + n)
    b = sympy.symbols(f"b1:{n + 1}")
    q = [sympy.Integer(1), *b]
    # Pade conditions: the t^(m+1..m+n) coefficients of Q * series vanish.
    eqs = [sum(q[i] * c[j - i] for i in range(n + 1) if j >= i)
           for j in range(m + 1, m + n + 1)]
    sol = sympy.solve(eqs, b, dict=True)[0] if n else {}
    q = [sympy.Rational(sympy.sympify(v).subs(sol)) for v in q]
    p = [sum(q[i] * c[j - i] for i in range(min(j, n) + 1)) for j in range(m + 1)]
    P = sum(pj * (1 - _x**2) ** j for j, pj in enumerate(p))
    Q = sum(qj * (1 - _x**2) ** j for j, qj in enumerate(q))
    num = sympy.Poly(sympy.expand(_x * P), _x)
    den = sympy.Poly(sympy.expand(Q), _x)
    d0 = den.coeff_monomial(1)
    return (
        tuple(sympy.Rational(num.coeff_monomial(_x ** (2 * j + 1)) / d0) for j in range(m + 1)),
        tuple(sympy.Rational(den.coeff_monomial(_x ** (2 * j)) / d0) for j in range(n + 1)),
    )


def minimax_odd(lower: float, upper: float, degree: int, *, dps: int = 60,
                max_iter: int = 100) -> tuple[tuple[mpmath.mpf, ...], mpmath.mpf]:
    """Best odd polynomial approximation of 1 on [lower, upper] (Remez exchange, mpmath).

    Parameters
    ----------
    lower, upper : float
        The interval, 0 < lower < upper.
    degree : int
        Odd degree 2d + 1; the optimum equioscillates at d + 2 = (degree + 3) / 2 points,
        ``lower``, the d interior extrema and ``upper``, with p(lower) = 1 - E.
    dps : int
        Decimal digits of the mpmath arithmetic (>= 50 recommended).

    Returns
    -------
    coeffs : tuple of mpmath.mpf
        ``(c0, ..., cd)`` of ``c0 x + c1 x^3 + ... + cd x^(2d+1)``.
    error : mpmath.mpf
        The equioscillation error E = ``max |p(x) - 1|`` on [lower, upper].

    Raises
    ------
    ValueError
        Bad interval or degree; ``RuntimeError`` if the exchange does not converge.

    Examples
    --------
    >>> c, E = minimax_odd(0.5, 1.0, 1)
    >>> float(c[0]), float(E)
    (1.3333333333333333, 0.3333333333333333)
    """
    d = _odd_degree(degree)
    if not (0 < lower < upper) or not math.isfinite(upper):
        raise ValueError(f"need 0 < lower < upper < inf; got lower={lower}, upper={upper}")
    with mpmath.workdps(dps):
        lo, hi = mpmath.mpf(lower), mpmath.mpf(upper)
        n = d + 2
        # Chebyshev extremal nodes in x^2 crowd the reference towards the steep end.
        ref = [mpmath.sqrt(lo**2 + (hi**2 - lo**2) * (1 - mpmath.cos(mpmath.pi * i / (n - 1))) / 2)
               for i in range(n)]
        tol = mpmath.mpf(10) ** (-(dps - 10))
        for _ in range(max_iter):
            A = mpmath.matrix([[x ** (2 * j + 1) for j in range(d + 1)] + [(-1) ** i]
                               for i, x in enumerate(ref)])
            sol = mpmath.lu_solve(A, mpmath.matrix([1] * n))
            c, E = tuple(sol[j] for j in range(d + 1)), sol[d + 1]
            crit = stationary_points(c, lo, hi)
            if len(crit) != d:
                raise RuntimeError(
                    f"Remez exchange lost alternation on [{lower}, {upper}] (degree {degree})"
                )
            new = [lo, *crit, hi]
            worst = max(abs(odd_poly(c, x) - 1) for x in new)
            shift = max(abs(a - b) for a, b in zip(new, ref, strict=True))
            ref = new
            if worst - abs(E) <= tol * abs(E) and shift <= tol:
                return c, abs(E)
        raise RuntimeError(f"Remez exchange did not converge in {max_iter} iterations")


def cubic_alternance(lower: Any, upper: Any) -> tuple[tuple[Any, Any], Any]:
    """The minimax odd cubic c0 x + c1 x^3 approximating 1 on [lower, upper], in closed form.

    Chebyshev's alternance theorem: the error equioscillates at a, x* and b (a = lower,
    b = upper, x* the interior maximum).  p(a) = p(b) gives c0 = -c1 (a^2 + ab + b^2), so
    x*^2 = (a^2 + ab + b^2) / 3; then p(a) + p(x*) = 2 gives
    -c1 = 2 / (2 x*^3 + ab (a + b)), and E = (p(x*) - p(a)) / 2 (CANS, Grishina et al. 2025).
    Works on floats or mpmath numbers alike.

    Examples
    --------
    >>> (c0, c1), E = cubic_alternance(0.5, 1.0)
    >>> round(c0, 6), round(c1, 6), round(E, 6)
    (2.132773, -1.218727, 0.085955)
    """
    a, b = lower, upper
    if not (0 < a < b):
        raise ValueError(f"need 0 < lower < upper; got lower={lower}, upper={upper}")
    s = a * a + a * b + b * b
    x = (s / 3) ** 0.5 if isinstance(s, float) else mpmath.sqrt(s / 3)
    c1 = -2 / (2 * x**3 + a * b * (a + b))
    c0 = -c1 * s
    return (c0, c1), (odd_poly((c0, c1), x) - odd_poly((c0, c1), a)) / 2


def cans(lower: float = 1e-3, degree: int = 5, steps: int = 5, upper: float = 1.0, *,
         dps: int = 60) -> Schedule:
    """CANS: each step the Chebyshev-optimal odd polynomial on the current interval.

    Start from [a, b] = [lower, upper] (``upper`` > 1 when the input is normalized by an
    estimate of sigma_max that may fall short of it); each step takes the minimax odd
    polynomial of ``degree`` approximating 1 on [a, b] (:func:`cubic_alternance` for cubics,
    :func:`minimax_odd` otherwise) and maps [a, b] onto [1 - E, 1 + E].  No cushion, no
    safety factor: on [lower, 1] it is Polar Express's greedy composition without its
    cushion (pure greedy), which CANS derives independently.  Certify the result with
    :func:`msign.scalar.band`.

    Parameters
    ----------
    lower, upper : float
        The interval the singular values of X_0 are assumed to lie in, 0 < lower < upper.
    degree : int
        Odd degree of every step (3, 5, 7, ...).
    steps : int
        Number of steps.

    Returns
    -------
    Schedule

    References
    ----------
    E. Grishina, M. Smirnov, M. Rakhuba, arXiv:2506.10935v1, 2025, section 3.

    Examples
    --------
    >>> s = cans(0.1, degree=3, steps=6)
    >>> lo, hi = scalar.band(s, 0.1)
    >>> bool(1 - lo < 1e-6 and hi - 1 < 1e-6)
    True
    """
    d = _validate_design(lower, steps, degree, 1.0)
    if not (isinstance(upper, (int, float)) and math.isfinite(upper) and upper > lower):
        raise ValueError(f"upper must be a finite number > lower; got {upper!r}")
    table = []
    with mpmath.workdps(dps):
        a, b = mpmath.mpf(lower), mpmath.mpf(upper)
        for _ in range(steps):
            if b - a <= mpmath.mpf(10) ** (-(dps - 10)):
                break  # converged to the working precision: further steps are identities
            c, E = cubic_alternance(a, b) if d == 1 else minimax_odd(a, b, degree, dps=dps)
            table.append(tuple(float(cj) for cj in c))
            a, b = 1 - E, 1 + E
    return Schedule(table, name=f"cans-{steps}x{degree}-l{lower:g}", default_steps=steps,
                    source=f"msign.design.cans(lower={lower:g}, degree={degree}, steps={steps}, "
                    f"upper={upper:g}): Chebyshev-optimal steps (Grishina, Smirnov, Rakhuba "
                    "2025, arXiv:2506.10935v1)")


def _validate_design(lower: float, steps: int, degree: int, safety: float) -> int:
    check_lower(lower)
    check_steps(steps)
    if not (isinstance(safety, (int, float)) and math.isfinite(safety) and safety >= 1):
        raise ValueError(f"safety must be a finite number >= 1; got {safety!r}")
    return _odd_degree(degree)


def polar_express(lower: float = 1e-3, steps: int = 8, degree: int = 5, safety: float = 1.01,
                  cushion: float | None = None, *, rel: float = 0.0, noise: float = 0.0,
                  noise_floor: bool = True, dps: int = 60) -> Schedule:
    """The Polar Express schedule: each step minimax-optimal on the current interval.

    Start from [l, u] = [lower, 1].  Each step takes the minimax odd polynomial of the given
    degree approximating 1 on [max(l, cushion * u), u]; when the cushion is active it is
    rescaled by 2 / (p(l) + p(u)) so that it is centred on 1 over [l, u] (a cushion keeps
    the first steps from spending their degree on the tiny end).  Then l <- p(l),
    u <- 2 - l.  Once l / u >= 1 - 5e-6 a step is the Taylor polynomial scaled to u.  The
    safety factor is not used during the design; the returned :class:`Schedule` applies it
    (every table entry but the last evaluated at x / safety, input divided by safety).

    Parameters
    ----------
    lower : float
        Lower bound on sigma_min / ||G||_F the schedule must handle, in (0, 1).
    steps : int
        Number of steps (>= 1).
    degree : int
        Odd polynomial degree (3, 5, 7, ...).
    safety : float
        Safety factor >= 1 for low-precision round-off (1.01 in the paper for bf16).
    cushion : float, optional
        Relative cushion; 0 disables it (pure greedy minimax).  ``None`` is the published
        :data:`PE_CUSHION` for quintics and 0 otherwise: the recentring is tuned for
        quintics, and for a cubic (whose minimax on [0.024, 1] ends at p(1) = 0.12) it
        would rescale by 17 and overshoot.
    rel : float
        Rounding-aware design (0 = the published procedure).  Each step is designed on the
        interval widened to [l (1 - rel), u (1 + rel)], the model of
        :func:`msign.scalar.rounding_band`, and [l, u] is then updated to the exact range
        of p over the widened interval, so the schedule is greedy-optimal under that model.
        ``rel = 2**-8`` is one bf16 unit of relative round-off.
    noise : float
        Design against the absolute model of :func:`msign.scalar.noise_band` instead: each
        step is fitted on [max(l - e, e), u + e] with e = noise * u (rounding moves singular
        values by up to noise * ||X||; below e they are at the noise floor, which the design
        cannot lower), and [l, u] is then the exact range of p over that interval.
    noise_floor : bool
        With ``noise``: False fits each step on [l, u + e] instead, widening only the top.
        The top is what blows up (a minimax polynomial rises steeply past its interval, the
        reason for Polar Express's safety factor); the lower end then stays the exact one,
        as :func:`band_design` certifies it, at the price of the noise model's lower end.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> s = polar_express()
    >>> [round(c, 6) for c in s.coeffs[0]]
    [8.287212, -23.595887, 17.300387]
    """
    d = _validate_design(lower, steps, degree, safety)
    if cushion is None:
        cushion = PE_CUSHION if degree == 5 else 0.0
    if not (isinstance(cushion, (int, float)) and 0 <= cushion < 1):
        raise ValueError(f"cushion must lie in [0, 1); got {cushion!r}")
    if not (isinstance(rel, (int, float)) and 0 <= rel < 0.5):
        raise ValueError(f"rel must lie in [0, 0.5); got {rel!r}")
    if not (isinstance(noise, (int, float)) and 0 <= noise < 0.5) or (noise and rel):
        raise ValueError(f"noise must lie in [0, 0.5) and exclude rel; got {noise!r}")
    if not isinstance(noise_floor, bool):
        raise TypeError(f"noise_floor must be a bool; got {noise_floor!r}")
    taylor = [mpmath.mpf(sympy.Rational(v).p) / sympy.Rational(v).q for v in taylor_ns(d)] \
        if d else [mpmath.mpf(1)]
    table = []
    with mpmath.workdps(dps):
        lo, hi = mpmath.mpf(lower), mpmath.mpf(1)
        for _ in range(steps):
            if noise:
                e = noise * hi
                lo, hi = (max(lo - e, e) if noise_floor else lo), hi + e
            else:
                lo, hi = lo * (1 - rel), hi * (1 + rel)
            if lo / hi >= PE_TAYLOR_RATIO:
                c = tuple(t / hi ** (2 * j + 1) for j, t in enumerate(taylor))
            else:
                a = max(lo, cushion * hi)
                c, _ = minimax_odd(a, hi, degree, dps=dps)
                if cushion * hi > lo:
                    r = 2 / (odd_poly(c, lo) + odd_poly(c, hi))
                    c = tuple(r * cj for cj in c)
            table.append(tuple(float(cj) for cj in c))
            if rel or noise:
                vals = [odd_poly(c, x) for x in [lo, hi, *stationary_points(c, lo, hi)]]
                lo, hi = min(vals), max(vals)
            else:
                lo = odd_poly(c, lo)
                hi = 2 - lo
    return Schedule(
        table,
        name=f"pe-{steps}x{degree}-l{lower:g}" + (f"-rel{rel:g}" if rel else "")
        + (f"-noise{noise:g}" if noise else ""),
        safety=float(safety),
        source=f"msign.design.polar_express(lower={lower:g}, steps={steps}, degree={degree}, "
        f"safety={safety:g}, cushion={cushion:g}, rel={rel:g}, noise={noise:g}"
        + ("" if noise_floor or not noise else ", noise_floor=False") + "): greedy "
        "minimax (Amsel et al. 2025)",
    )


def jordan_style(steps: int = 5, lower: float = 1e-2, band: tuple[float, float] = (0.7, 1.2),
                 *, extra_steps: int = 20, samples: int = 2000, tol: float = 1e-5) -> Schedule:
    """Keller Jordan's criterion as a reproducible optimization: the steepest banded quintic.

    Find the largest slope at zero a = p'(0) of one shared quintic (a, b, c) such that,
    for every x in [lower, 1] (``samples`` geometric points), the composite map after
    ``steps`` steps lies in ``band`` and stays there for ``extra_steps`` more steps (the
    iteration "converges into the band" rather than to 1).  Bisection on a; for each a,
    feasibility of (b, c) by Nelder-Mead on the band violation from fixed starting points,
    so the result is deterministic.  With the defaults it lands at about
    (3.586, -4.763, 1.924), near Jordan's hand-tuned (3.4445, -4.7750, 2.0315); certify
    any result with :func:`msign.scalar.band`.

    Examples
    --------
    >>> s = jordan_style()
    >>> [round(v, 2) for v in s.coeffs[0]]
    [3.59, -4.76, 1.92]
    """
    from scipy.optimize import minimize

    _validate_design(lower, steps, 5, 1.0)
    lo_b, hi_b = band
    if not 0 < lo_b < 1 < hi_b:
        raise ValueError(f"band must satisfy 0 < band[0] < 1 < band[1]; got {band!r}")
    x = np.geomspace(lower, 1, samples)

    def violation(bc: np.ndarray, a: float) -> float:
        y, worst = x, 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(steps + extra_steps):
                y = odd_poly((a, bc[0], bc[1]), y)
                if k >= steps - 1:
                    if not np.all(np.isfinite(y)):
                        return 1e6  # diverged: finite, so Nelder-Mead's simplex stays finite
                    worst = max(worst, lo_b - y.min(), y.max() - hi_b)
        return worst

    starts = [(-4.7, 2.0), (-2.0, 0.5), (-6.0, 3.0)]
    a_lo, a_hi, best = 1.0, 8.0, None
    while a_hi - a_lo > tol:
        a = 0.5 * (a_lo + a_hi)
        r = min((minimize(violation, s, args=(a,), method="Nelder-Mead",
                          options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 4000})
                 for s in starts), key=lambda r: r.fun)
        if r.fun <= 0:
            a_lo, best = a, (a, float(r.x[0]), float(r.x[1]))
            starts = [tuple(r.x), *starts[:2]]
        else:
            a_hi = a
    if best is None:
        raise RuntimeError(f"no quintic keeps the {steps}-step map in {band} on [{lower}, 1]")
    return Schedule([best], name=f"jordan-style-{steps}", default_steps=steps,
                    source=f"msign.design.jordan_style(steps={steps}, lower={lower:g}, "
                    f"band={band}): max slope at 0 s.t. the composite stays in the band")


# -- band design: the best schedule for a matmul budget, or the cheapest for a band ----------

def step_matmuls(degree: int) -> int:
    """Products of one step of odd degree 2d+1: the Gram matrix, d-1 Horner products, the
    application (:meth:`msign.Schedule.matmuls`)."""
    return _odd_degree(degree) + 1


def _certified_error(s: Schedule, lower: float, noise: float) -> tuple[float, tuple]:
    """Rigorous ``max |f - 1|`` on [lower, 1], and with ``noise`` the noise model's upper end."""
    lo, hi = scalar.band(s, lower)
    err = max(1 - lo, hi - 1)
    if noise:
        _, nhi = scalar.noise_band(s, lower, noise)
        err = max(err, nhi - 1)
    return err, (lo, hi)


def band_design(lower: float, matmuls: int, *, degrees: tuple[int, ...] = (3, 5, 7),
                shared: bool = False, noise: float = 0.0, precondition: str | None = None,
                dps: int = 60) -> tuple[Schedule, dict]:
    """For a budget of ``matmuls`` products per call: the schedule with the smallest certified
    band [1 - E, 1 + E] on [lower, 1].

    Candidates: for each degree, as many steps as the budget pays for, either per-step (the
    greedy minimax composition, which Amsel et al. prove optimal for the worst-case error at
    a given degree and step count: :func:`polar_express` without cushion or safety) or one
    shared polynomial (:func:`shared_band`).  Each is certified with :func:`msign.scalar.band`
    (rigorous); with ``noise`` (the c u of :func:`msign.scalar.noise_band`) each step's top
    is designed against that rounding model (:func:`polar_express` with
    ``noise_floor=False``) and E also covers the model's upper end.

    ``precondition="aol"`` returns the schedule with AOL preconditioning
    (:func:`msign.iterate.aol`): the interval [lower, 1] is then one of the singular values
    of D X_0, whose top 1 is a theorem (||D X||_2 <= 1) and whose ``lower`` is an assumption
    to be measured on the matrices it will meet
    (:func:`msign.metrics.preconditioned_singular_values`); the report's ``assumes`` says so.
    AOL reuses the first step's Gram product, so the budget is unchanged.

    Returns
    -------
    (Schedule, dict)
        The winner and a report: ``error`` E, ``band``, ``degree``, ``steps``, ``matmuls``,
        and every candidate's certified error.

    Examples
    --------
    >>> s, r = band_design(0.1, 9, degrees=(5,))
    >>> r["degree"], r["steps"], r["matmuls"], r["error"] < 1e-3
    (5, 3, 9, True)
    """
    check_lower(lower)
    if isinstance(matmuls, bool) or not isinstance(matmuls, int) or matmuls < 2:
        raise ValueError(f"matmuls must be an int >= 2 (a cubic step costs 2); got {matmuls!r}")
    cands = []
    for degree in degrees:
        k = matmuls // step_matmuls(degree)
        if k < 1:
            continue
        if shared:
            sched = shared_band(lower, k, degree)
        else:
            sched = polar_express(lower, k, degree, safety=1.0, cushion=0.0, noise=noise,
                                  noise_floor=False, dps=dps)
        err, b = _certified_error(sched, lower, noise)
        cands.append((err, k * step_matmuls(degree), degree, k, b, sched))
    if not cands:
        raise ValueError(f"no degree in {degrees} fits a budget of {matmuls} products")
    err, mm, degree, k, b, sched = min(cands, key=lambda c: (c[0], c[1]))
    kind = "shared" if shared else "per-step"
    name = (f"band-{mm}mm-{kind}-d{degree}-l{lower:g}" + (f"-noise{noise:g}" if noise else "")
            + (f"-{precondition}" if precondition else ""))
    pre = f", precondition={precondition!r}" if precondition else ""
    sched = Schedule(sched.coeffs, name=name, default_steps=k, precondition=precondition,
                     source=f"msign.design.band_design(lower={lower:g}, matmuls={matmuls}, "
                     f"shared={shared}, noise={noise:g}{pre}): {kind} degree {degree}, {k} "
                     f"steps, certified band [{b[0]:.4g}, {b[1]:.4g}] on [{lower:g}, 1]")
    assumes = (f"every singular value of X_0 = G / ||G||_F in [{lower:g}, 1] (the top: "
               "||G||_2 <= ||G||_F; the bottom: an assumption)" if precondition is None else
               f"every singular value of D X_0 (AOL) in [{lower:g}, 1] (the top: a theorem, "
               "||D X||_2 <= 1; the bottom: measured, not bounded)")
    report = {"error": err, "band": list(b), "degree": degree, "steps": k, "matmuls": mm,
              "lower": lower, "kind": kind, "noise": noise, "precondition": precondition,
              "assumes": assumes,
              "candidates": [{"degree": c[2], "steps": c[3], "matmuls": c[1], "error": c[0]}
                             for c in cands]}
    return sched, report


def fewest_matmuls(lower: float, delta: float, *, degrees: tuple[int, ...] = (3, 5, 7),
                   shared: bool = False, noise: float = 0.0, max_matmuls: int = 40
                   ) -> tuple[Schedule, dict]:
    """The cheapest schedule whose certified band on [lower, 1] lies in [1 - delta, 1 + delta].

    Budgets are tried upward from 2 products; the first that reaches the band wins (among
    its candidates the smallest error).

    Examples
    --------
    >>> s, r = fewest_matmuls(0.05, 0.3, degrees=(3, 5))
    >>> r["matmuls"], r["error"] <= 0.3
    (6, True)
    """
    if not (isinstance(delta, (int, float)) and 0 < delta < 1):
        raise ValueError(f"delta must lie in (0, 1); got {delta!r}")
    for mm in range(2, max_matmuls + 1):
        if all(mm // step_matmuls(d) == 0 for d in degrees):
            continue
        sched, rep = band_design(lower, mm, degrees=degrees, shared=shared, noise=noise)
        if rep["error"] <= delta:
            return sched, rep
    raise ValueError(f"no schedule of <= {max_matmuls} products reaches [1 - {delta}, "
                     f"1 + {delta}] from lower={lower:g}")


def coverage(matmuls: int, delta: float, *, degrees: tuple[int, ...] = (3, 5, 7),
             noise: float = 0.0, lo: float = 1e-6, hi: float = 0.5, iters: int = 14
             ) -> tuple[Schedule, dict]:
    """The smallest lower bound a budget covers at band ``delta``, and its schedule.

    The certified error of the best per-step schedule falls as ``lower`` grows, so the
    smallest ``lower`` whose band lies in [1 - delta, 1 + delta] is found by bisection on
    log(lower); every singular value above that fraction of ||G||_F lands in the band.

    Examples
    --------
    >>> s, r = coverage(6, 0.3, degrees=(5,), iters=6)
    >>> 0.01 < r["lower"] < 0.2 and r["error"] <= 0.3
    True
    """
    if not (isinstance(delta, (int, float)) and 0 < delta < 1):
        raise ValueError(f"delta must lie in (0, 1); got {delta!r}")
    best = band_design(hi, matmuls, degrees=degrees, noise=noise)
    if best[1]["error"] > delta:
        raise ValueError(f"{matmuls} products do not reach band {delta} even from lower={hi}")
    a, b = math.log(lo), math.log(hi)
    for _ in range(iters):
        m = 0.5 * (a + b)
        cand = band_design(math.exp(m), matmuls, degrees=degrees, noise=noise)
        if cand[1]["error"] <= delta:
            b, best = m, cand
        else:
            a = m
    return best


def shared_band(lower: float, steps: int, degree: int = 5, *, samples: int = 3000) -> Schedule:
    """One odd polynomial, repeated ``steps`` times, minimizing ``max |f - 1|`` on [lower, 1].

    Nelder-Mead on the sampled error (``samples`` geometric points) from deterministic
    starts (the greedy first step, the Taylor polynomial, and for quintics Jordan's); the
    result is a Schedule to certify (:func:`band_design` does).  Unlike a per-step list, a
    shared polynomial's band need not converge; it is the classical Muon design (Jordan's
    five steps, You's, Su's are variants of it).
    """
    from scipy.optimize import minimize

    d = _validate_design(lower, steps, degree, 1.0)
    x = np.geomspace(lower, 1, samples)

    def err(c: np.ndarray) -> float:
        y = x
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(steps):
                y = odd_poly(tuple(c), y)
        e = float(np.max(np.abs(y - 1)))
        return e if np.isfinite(e) else 1e6

    taylor = [float(v) for v in taylor_ns(d)] if d else [1.0]
    first = [float(v) for v in polar_express(lower, 1, degree, safety=1.0, cushion=0.0).coeffs[0]]
    starts = [first, taylor] + ([list(SCHEDULES["jordan"].coeffs[0])] if degree == 5 else [])
    best = min((minimize(err, np.array(s0), method="Nelder-Mead",
                         options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
                for s0 in starts), key=lambda r: r.fun)
    return Schedule([tuple(float(v) for v in best.x)], name=f"shared-{steps}x{degree}",
                    default_steps=steps,
                    source=f"msign.design.shared_band(lower={lower:g}, steps={steps}, "
                    f"degree={degree}): one polynomial minimizing the sampled max |f - 1|")
