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
