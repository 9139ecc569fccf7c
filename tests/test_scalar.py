"""msign.scalar: certified band / worst-case error against dense sampling and mpmath."""

import mpmath
import numpy as np
import pytest

from msign import SCHEDULES, Schedule, design, get_schedule, scalar

XS = np.geomspace(1e-3, 1, 1_000_000)
FAST = [n for n in SCHEDULES if n != "quintic"]  # quintic (14 steps) is certified below


@pytest.mark.parametrize("name", FAST)
def test_certified_never_below_dense_sampling(name):
    s = get_schedule(name)
    cert = scalar.worst_case_error(s, 1e-3)
    sampled = np.abs(s.scalar_map(XS) - 1).max()
    # float64 sampling itself carries ~1e-15 rounding; beyond that, never below, <= 1e-6 above.
    assert sampled - 4e-16 * 8 <= cert <= sampled + 1e-6


def test_quintic_and_degree7():
    for s in (get_schedule("quintic"), Schedule([(2.2, -2.0, 1.3, -0.5)], default_steps=3)):
        cert = scalar.worst_case_error(s, 1e-2)
        sampled = np.abs(s.scalar_map(np.geomspace(1e-2, 1, 200_000)) - 1).max()
        assert sampled - 1e-14 <= cert <= sampled + 1e-6


def test_extremum_found_between_samples():
    # A narrow bump a coarse grid misses: certification finds its true height.
    s = get_schedule("jordan")
    coarse = s.scalar_map(np.linspace(1e-3, 1, 50)).max()
    assert scalar.band(s, 1e-3)[1] > coarse + 1e-4


def test_band_published_numbers():
    assert scalar.band("jordan", 1e-3) == pytest.approx((0.4705, 1.2024), abs=1e-4)
    assert scalar.band("jordan", 1e-2) == pytest.approx((0.6818, 1.1344), abs=1e-4)
    # Polar Express (arXiv:2505.16932) without safety, errors recomputed independently by
    # dense float64 sampling: 5 steps 0.1236, 6 steps 1.18e-3, 7 steps 1e-9 on [1e-3, 1].
    pe = design.polar_express(safety=1.0)
    assert scalar.worst_case_error(pe, 1e-3, steps=5) == pytest.approx(0.1236, abs=1e-4)
    assert scalar.worst_case_error(pe, 1e-3, steps=6) == pytest.approx(1.18e-3, rel=1e-2)
    assert scalar.worst_case_error(pe, 1e-3, steps=7) == pytest.approx(1.0e-9, rel=0.1)


def test_band_against_mpmath_dense_evaluation():
    # The certified band contains the 50-digit values of f at many points and is attained
    # (to 1e-12) by the best of them near its extremes.
    s = get_schedule("you")
    with mpmath.workdps(50):
        xs = [mpmath.mpf(x) for x in np.geomspace(1e-3, 1, 3000)]
        vals = s.scalar_map(xs)
    lo, hi = scalar.band(s, 1e-3)
    assert lo <= float(min(vals)) and float(max(vals)) <= hi
    assert float(max(vals)) > hi - 1e-6 and float(min(vals)) < lo + 1e-6


def test_rounding_band_contains_exact_band():
    for name in ("jordan", "polar-express", "you"):
        lo, hi = scalar.band(name, 1e-3)
        rlo, rhi = scalar.rounding_band(name, 1e-3, rel=2**-8)
        assert rlo <= lo + 1e-15 and hi <= rhi + 1e-15
    assert scalar.rounding_band("jordan", 1e-3, rel=0.0) == pytest.approx(
        (scalar.band("jordan", 1e-3)[0], 1.2024), abs=1e-3)


@pytest.mark.parametrize("lower", [0.0, 1.0, -0.1, 2.0])
def test_bad_lower(lower):
    with pytest.raises(ValueError, match="lower"):
        scalar.worst_case_error("jordan", lower)


def test_bad_schedule():
    with pytest.raises(TypeError, match="schedule"):
        scalar.band(42, 1e-3)
    with pytest.raises(ValueError, match="unknown schedule"):
        scalar.band("nope", 1e-3)


# -- rigor: the bounds enclose the truth -------------------------------------------------------

@pytest.mark.parametrize("name", FAST)
def test_rigorous_band_encloses_estimate_and_50_digit_sampling(name):
    s = get_schedule(name)
    lo, hi = scalar.band(s, 1e-3)
    elo, ehi = scalar.estimate_band(s, 1e-3)
    assert lo <= elo and ehi <= hi  # never inside the earlier (round-to-nearest) values
    assert ehi - elo == pytest.approx(hi - lo, abs=1e-12)  # and tight around them
    with mpmath.workdps(50):
        xs = [mpmath.mpf(x) for x in np.geomspace(1e-3, 1, 400)]
        vals = s.scalar_map(xs)
    assert lo <= float(min(vals)) and float(max(vals)) <= hi
    # (the estimate's 1 - lo carries the float rounding of lo: one ulp of 1)
    assert scalar.worst_case_error(s, 1e-3) >= max(1 - elo, ehi - 1) - 2.3e-16


def test_sturm_isolation_exact():
    from fractions import Fraction as F

    from msign.scalar import positive_root_intervals

    def contains(iv, r):
        return iv[0] <= r <= iv[1]

    # (y - 1)^2: a double root, found once
    (a,) = positive_root_intervals([F(1), F(-2), F(1)])
    assert contains(a, 1)
    # (y - 1/3)(y - 2): two roots, each in its own interval, of width <= 2^-100 relative
    roots = positive_root_intervals([F(2, 3), F(-7, 3), F(1)])
    assert len(roots) == 2 and contains(roots[0], F(1, 3)) and contains(roots[1], 2)
    assert all(b - a <= max(b, 1) / 2**100 for a, b in roots)
    # y^2 + 1 and (y + 1)(y + 2): no positive root
    assert positive_root_intervals([F(1), F(0), F(1)]) == []
    assert positive_root_intervals([F(2), F(3), F(1)]) == []
    # a root at 0 is not positive; (y)(y - 5)
    (b,) = positive_root_intervals([F(0), F(-5), F(1)])
    assert contains(b, 5)


def test_critical_points_of_taylor_steps_are_found():
    # the quintic Newton-Schulz step has p'(x) = (15/8)(1 - x^2)^2: a double root at x = 1
    (crit,) = scalar.critical_intervals((15 / 8, -10 / 8, 3 / 8))
    assert crit[0].a <= 1 <= crit[1].b
    assert scalar.band("quintic", 1e-2, steps=1)[1] <= 1.0 + 1e-15  # p(1) = 1 is the max


def test_noise_model_bands():
    # cu = 0 is the exact band (in magnitudes); more noise, wider; Polar Express designed
    # without safety blows up under a half-unit noise, the published s = 1.01 does not.
    lo, hi = scalar.noise_band("jordan", 1e-3, 0.0)
    assert (lo, hi) == pytest.approx(scalar.band("jordan", 1e-3), abs=1e-12)
    his = [scalar.noise_band("you", 1e-3, c * 2**-8)[1] for c in (0.5, 1, 2)]
    assert his == sorted(his) and his[0] > scalar.band("you", 1e-3)[1]
    assert scalar.noise_band(design.polar_express(safety=1.0), 1e-3, 2**-9)[1] == float("inf")
    assert scalar.noise_band("polar-express", 1e-3, 2**-8)[1] < 1.01
    with pytest.raises(ValueError, match="cu"):
        scalar.noise_band("jordan", 1e-3, 1.5)


def test_noise_trajectory_tracks_a_point_and_the_band():
    t = scalar.noise_trajectory("polar-express", 1e-4, 0.5, 2**-8, points=(1e-4, 0.5))
    steps = len(get_schedule("polar-express").step_coeffs())
    assert len(t["band"]) == steps and len(t["points"][0]) == steps
    for (blo, bhi), (plo, phi), (qlo, qhi) in zip(t["band"], *t["points"], strict=True):
        assert blo <= plo <= phi <= bhi and blo <= qlo <= qhi <= bhi
    # the smallest singular value is lifted by the noise floor (u ||X|| ~ 4e-3) and then
    # driven up by the schedule: far above what the exact map makes of 1e-4
    exact = float(get_schedule("polar-express").scalar_map(1e-4))
    assert t["points"][0][-1][1] > 0.9 > exact
    with pytest.raises(ValueError, match="upper"):
        scalar.noise_trajectory("jordan", 0.5, 0.1, 2**-8)
