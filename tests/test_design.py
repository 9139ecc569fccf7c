"""msign.design: exact derivations (sympy), Remez (mpmath), Polar Express, Jordan's criterion."""

import mpmath
import numpy as np
import pytest
import sympy

from msign import Schedule, design, get_schedule, scalar
from msign.schedules import odd_poly

JORDAN = get_schedule("jordan").coeffs[0]  # the registry holds the published list


class TestTaylorNS:
    @pytest.mark.parametrize(
        "k,expected",
        [
            (1, ("3/2", "-1/2")),
            (2, ("15/8", "-5/4", "3/8")),
            (3, ("35/16", "-35/16", "21/16", "-5/16")),
            (4, ("315/128", "-105/32", "189/64", "-45/32", "35/128")),
        ],
    )
    def test_exact_rationals(self, k, expected):
        assert design.taylor_ns(k) == tuple(sympy.Rational(e) for e in expected)

    @pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
    def test_fixed_point_and_flatness_at_one(self, k):
        x = sympy.Symbol("x")
        p = design.taylor_ns(k, as_expr=True)
        assert p.subs(x, 1) == 1
        for j in range(1, k + 1):
            assert sympy.diff(p, x, j).subs(x, 1) == 0
        assert sympy.diff(p, x, k + 1).subs(x, 1) != 0

    def test_matches_named_schedules(self):
        assert get_schedule("cubic").coeffs[0] == tuple(float(c) for c in design.taylor_ns(1))
        assert get_schedule("quintic").coeffs[0] == tuple(float(c) for c in design.taylor_ns(2))

    @pytest.mark.parametrize("k", [0, -1, 1.5])
    def test_bad_k(self, k):
        with pytest.raises(ValueError, match="k must"):
            design.taylor_ns(k)


class TestPade:
    def test_halley(self):
        assert design.pade(1, 1) == ((3, 1), (1, 3))

    def test_m0_is_taylor(self):
        num, den = design.pade(2, 0)
        assert num == design.taylor_ns(2) and den == (1,)

    @pytest.mark.parametrize("m,n", [(1, 1), (2, 1), (1, 2), (2, 2), (0, 1)])
    def test_fixes_one_and_matches_series(self, m, n):
        x = sympy.Symbol("x")
        num, den = design.pade(m, n)
        f = sum(c * x ** (2 * j + 1) for j, c in enumerate(num)) / sum(
            c * x ** (2 * j) for j, c in enumerate(den))
        assert sympy.simplify(f.subs(x, 1)) == 1
        # Order of contact with sign(x) = 1 at x = 1 is m + n + 1.
        for j in range(1, m + n + 1):
            assert sympy.simplify(sympy.diff(f, x, j).subs(x, 1)) == 0

    def test_bad_args(self):
        with pytest.raises(ValueError, match="m must"):
            design.pade(-1, 1)


class TestMinimaxOdd:
    @pytest.mark.parametrize("lower,degree", [(1e-3, 5), (0.1, 3), (0.02, 7), (0.5, 9)])
    def test_equioscillates(self, lower, degree):
        c, E = design.minimax_odd(lower, 1.0, degree, dps=60)
        with mpmath.workdps(60):
            pts = [mpmath.mpf(lower), *scalar.stationary_points(c, mpmath.mpf(lower), 1), 1]
            assert len(pts) == (degree + 3) // 2
            errs = [odd_poly(c, x) - 1 for x in pts]
            for i, e in enumerate(errs):
                assert abs(e - (-1) ** (i + 1) * E) < mpmath.mpf(10) ** -20
            # and E really is the max over the interval (dense check)
            xs = np.linspace(lower, 1, 20001)
            vals = np.abs(np.array([float(odd_poly(c, mpmath.mpf(x))) for x in xs]) - 1)
            assert vals.max() <= float(E) * (1 + 1e-12)

    def test_published_no_cushion_first_step(self):
        # Greedy minimax without cushion (arXiv:2505.16932 sec. 4; Su Jianlin,
        # kexue.fm/archives/10996): (8.470329, -25.108075, 18.629276), error 0.9915.
        c, E = design.minimax_odd(1e-3, 1.0, 5)
        assert [round(float(v), 6) for v in c] == [8.470329, -25.108075, 18.629276]
        assert round(float(E), 4) == 0.9915

    @pytest.mark.parametrize(
        "args,match",
        [((0.0, 1.0, 5), "lower"), ((0.5, 0.4, 5), "lower"), ((0.1, 1.0, 4), "degree"),
         ((0.1, 1.0, 0), "degree")],
    )
    def test_bad_args(self, args, match):
        with pytest.raises(ValueError, match=match):
            design.minimax_odd(*args)


class TestPolarExpress:
    def test_reproduces_published_table(self):
        ours = design.polar_express(lower=1e-3, steps=8, degree=5, safety=1.01)
        pub = get_schedule("polar-express")
        assert ours.safety == pub.safety == 1.01
        got, ref = np.array(ours.coeffs), np.array(pub.coeffs)
        rel = np.abs(got - ref) / np.abs(ref)
        # Steps 1-6: equal up to the float64 rounding of the published computation.
        assert rel[:6].max() < 3e-15
        # Step 7 is a minimax fit on [0.99881, 1.00119]; the published float64 solve of that
        # nearly singular 4x4 system is off by 2.5e-11 (largest per-coefficient relative
        # difference), ours is computed at 60 digits.
        assert 1e-11 < rel[6].max() < 3e-11
        # Step 8: the procedure gives Taylor scaled to u = 1 + 1.04e-9; the table prints
        # the unscaled Taylor quintic (15/8, -5/4, 3/8): 5.2e-9 per coefficient.
        assert 5e-9 < rel[7].max() < 6e-9 and pub.coeffs[7] == (1.875, -1.25, 0.375)
        # Both schedules are equally accurate: certified worst case at rounding level.
        assert scalar.worst_case_error(ours, 1e-3) < 1e-14

    @pytest.mark.parametrize("degree", [3, 5, 7])
    @pytest.mark.parametrize("lower", [1e-4, 1e-2])
    def test_any_degree_and_lower_converges(self, degree, lower):
        s = design.polar_express(lower=lower, steps=14, degree=degree, safety=1.0)
        assert s.degree == degree
        assert scalar.worst_case_error(s, lower) < 1e-6

    def test_first_step_is_minimax_without_cushion(self):
        s = design.polar_express(lower=0.1, steps=1, degree=5, safety=1.0, cushion=0.0)
        c, _ = design.minimax_odd(0.1, 1.0, 5)
        np.testing.assert_allclose(s.coeffs[0], [float(v) for v in c], rtol=1e-15)

    def test_beats_jordan_at_equal_cost(self):
        s = design.polar_express(lower=1e-3, steps=5, degree=5, safety=1.0)
        jordan = scalar.worst_case_error("jordan", 1e-3)
        assert jordan == pytest.approx(0.52946, abs=1e-5)
        assert scalar.worst_case_error(s, 1e-3) < jordan
        assert s.matmuls() == get_schedule("jordan").matmuls()

    def test_named_bf16_schedule_is_the_noise_aware_design(self):
        s = design.polar_express(safety=1.0, noise=2**-7)
        named = get_schedule("polar-express-bf16")
        np.testing.assert_allclose(s.coeffs, named.coeffs, rtol=1e-14)
        assert named.safety == 1.0
        # bounded under the absolute bf16 noise model up to the c = 2 it was designed for,
        # where the earlier relative-model design (the previous table) is not
        assert scalar.noise_band(named, 1e-3, 2 * 2**-8)[1] < 1.01
        earlier = design.polar_express(safety=1.0, rel=2**-8)
        assert scalar.noise_band(earlier, 1e-3, 2 * 2**-8)[1] == float("inf")

    def test_rounding_aware_design_survives_the_rounding_model(self):
        plain = design.polar_express(safety=1.0)
        aware = design.polar_express(safety=1.0, rel=2**-8)
        assert scalar.rounding_band(plain, 1e-3, rel=2**-8)[1] > 2  # blows up under the model
        lo, hi = scalar.rounding_band(aware, 1e-3, rel=2**-8)
        assert 1 - 1e-5 < lo <= hi < 1 + 1e-5

    @pytest.mark.parametrize(
        "kwargs,match",
        [({"lower": 0.0}, "lower"), ({"lower": 1.0}, "lower"), ({"degree": 4}, "degree"),
         ({"steps": 0}, "steps"), ({"safety": 0.5}, "safety"), ({"cushion": 1.5}, "cushion"),
         ({"rel": -1.0}, "rel"), ({"noise": 0.6}, "noise"),
         ({"noise": 0.01, "rel": 0.01}, "noise")],
    )
    def test_bad_args(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            design.polar_express(**kwargs)

    def test_json_roundtrip_into_msign(self, tmp_path):
        import msign

        s = design.polar_express(lower=1e-2, steps=4, degree=3)
        s.to_json(tmp_path / "pe.json")
        t = Schedule.from_json(tmp_path / "pe.json")
        G = np.random.default_rng(0).standard_normal((10, 6))
        np.testing.assert_array_equal(msign.msign(G, s), msign.msign(G, t))


def test_jordan_style_lands_near_jordan():
    s = design.jordan_style()
    a, b, c = s.coeffs[0]
    assert all(abs(x - j) < 0.2 for x, j in zip((a, b, c), JORDAN, strict=True))
    lo, hi = scalar.band(s, 1e-2)
    assert 0.7 - 1e-3 <= lo and hi <= 1.2 + 1e-3


class TestBandDesign:
    """Band design: the best schedule for a budget, or the cheapest for a band (certified)."""

    def test_budget_picks_the_smallest_certified_band(self):
        s, r = design.band_design(0.05, 6, degrees=(3, 5))
        errs = {c["degree"]: c["error"] for c in r["candidates"]}
        assert r["error"] == min(errs.values()) and r["matmuls"] <= 6
        assert s.matmuls() == r["matmuls"] and s.resolve_steps(None) == r["steps"]
        lo, hi = scalar.band(s, 0.05)
        assert max(1 - lo, hi - 1) == pytest.approx(r["error"], abs=1e-15)
        # the greedy per-step design beats Jordan's shared quintic at equal products
        assert r["error"] < scalar.worst_case_error(
            Schedule([JORDAN], default_steps=2), 0.05)

    def test_fewest_matmuls_reaches_the_band_and_one_fewer_does_not(self):
        s, r = design.fewest_matmuls(0.05, 0.3, degrees=(3, 5))
        assert r["error"] <= 0.3
        fewer = [design.band_design(0.05, m, degrees=(3, 5))[1]["error"]
                 for m in range(2, r["matmuls"])]
        assert all(e > 0.3 for e in fewer)

    def test_coverage_is_the_smallest_lower_bound(self):
        s, r = design.coverage(6, 0.3, degrees=(5,), iters=8)
        assert r["error"] <= 0.3
        below = design.band_design(r["lower"] * 0.8, 6, degrees=(5,))[1]
        assert below["error"] > 0.3

    def test_noise_aware_design_stays_bounded_under_its_model(self):
        exact, _ = design.band_design(0.01, 9, degrees=(5,))
        robust, r = design.band_design(0.01, 9, degrees=(5,), noise=2**-7)
        assert scalar.noise_band(robust, 0.01, 2**-7)[1] < 1 + r["error"] + 1e-12
        assert scalar.noise_band(exact, 0.01, 2**-7)[1] > 2  # the exact design is not

    def test_top_only_noise_design_keeps_the_exact_lower_end(self):
        kw = {"safety": 1.0, "cushion": 0.0, "noise": 2**-7}
        floor = design.polar_express(1e-3, 5, 5, **kw)
        top = design.polar_express(1e-3, 5, 5, noise_floor=False, **kw)
        lo_top, hi_top = scalar.band(top, 1e-3)
        # clamping the design interval at the noise floor gives up [1e-3, 2^-7] ...
        assert lo_top > scalar.band(floor, 1e-3)[0] + 0.2
        # ... which the top-only design keeps, still bounded under the model, and far
        # inside Jordan's band at the same 15 products
        assert scalar.noise_band(top, 1e-3, 2**-7)[1] < 1.2
        assert max(1 - lo_top, hi_top - 1) < scalar.worst_case_error("jordan", 1e-3) / 3
        with pytest.raises(TypeError, match="noise_floor"):
            design.polar_express(1e-3, 2, 5, noise=0.01, noise_floor=1)

    def test_shared_design(self):
        s = design.shared_band(0.05, 3, 5, samples=800)
        assert len(s.coeffs) == 1 and s.resolve_steps(None) == 3
        greedy = design.band_design(0.05, 9, degrees=(5,))[1]["error"]
        shared = scalar.worst_case_error(s, 0.05)
        assert greedy <= shared + 1e-12  # greedy per-step is optimal (Amsel et al.)
        assert shared < scalar.worst_case_error(
            Schedule([JORDAN], default_steps=3), 0.05)

    @pytest.mark.parametrize("kwargs,match", [({"matmuls": 1}, "matmuls"),
                                              ({"matmuls": 3, "degrees": (7,)}, "no degree")])
    def test_bad_budget(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            design.band_design(0.1, **kwargs)


def test_registered_band_12_is_the_budget_studys_design():
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "results/budget/schedules/band-12.json"
    saved = json.loads(path.read_text())
    s = get_schedule("band-12")
    assert [list(c) for c in s.coeffs] == saved["coeffs"] and s.matmuls() == 12
    lo, hi = scalar.band(s, 0.00195)  # certified (rigorous) on the lower bound it covers
    assert 0.65 <= lo and hi <= 1.35


class TestCans:
    @pytest.mark.parametrize("lo, hi", [(1e-3, 1.0), (0.1, 1.0), (0.5, 1.3), (0.9, 1.1)])
    def test_closed_form_cubic_is_the_remez_optimum(self, lo, hi):
        with mpmath.workdps(60):
            (c0, c1), E = design.cubic_alternance(mpmath.mpf(lo), mpmath.mpf(hi))
            ref, Eref = design.minimax_odd(lo, hi, 3, dps=60)
            assert abs(c0 - ref[0]) < mpmath.mpf(10) ** -45
            assert abs(c1 - ref[1]) < mpmath.mpf(10) ** -45
            assert abs(E - Eref) < mpmath.mpf(10) ** -45
            # Alternance: the error is +-E at lower, the interior maximum and upper.
            x = mpmath.sqrt(-c0 / (3 * c1))
            errs = [odd_poly((c0, c1), t) - 1 for t in (mpmath.mpf(lo), x, mpmath.mpf(hi))]
            assert all(abs(abs(e) - E) < mpmath.mpf(10) ** -45 for e in errs)
            assert errs[0] < 0 < errs[1] and errs[2] < 0

    def test_quintic_cans_is_pure_greedy_polar_express(self):
        s = design.cans(1e-3, degree=5, steps=5)
        pe = design.polar_express(1e-3, 5, 5, safety=1.0, cushion=0.0)
        np.testing.assert_allclose(np.array(s.coeffs), np.array(pe.coeffs), rtol=1e-12)

    def test_band_contracts_to_the_predicted_error(self):
        s = design.cans(0.05, degree=3, steps=4)
        a, b = 0.05, 1.0
        for _ in range(4):
            _, E = design.cubic_alternance(a, b)
            a, b = 1 - E, 1 + E
        lo, hi = scalar.band(s, 0.05)
        assert abs((1 - lo) - E) < 1e-12 and abs((hi - 1) - E) < 1e-12

    def test_an_upper_end_above_one_is_honoured(self):
        s = design.cans(0.01, degree=5, steps=4, upper=1.2)
        x = np.linspace(0.01, 1.2, 4001)
        assert np.max(np.abs(s.scalar_map(x) - 1)) < 0.1

    @pytest.mark.parametrize("kw", [{"lower": 0.0}, {"upper": 1e-4}, {"steps": 0},
                                    {"degree": 4}])
    def test_bad_arguments(self, kw):
        with pytest.raises(ValueError):
            design.cans(**{"lower": 1e-3, **kw})


def test_band_design_with_aol_states_what_it_assumes():
    s, r = design.band_design(0.05, 9, degrees=(5,), precondition="aol")
    assert s.precondition == "aol" and r["precondition"] == "aol"
    assert "theorem" in r["assumes"] and "measured" in r["assumes"]
    plain, rp = design.band_design(0.05, 9, degrees=(5,))
    assert s.coeffs == plain.coeffs and r["error"] == rp["error"]  # the same polynomials
