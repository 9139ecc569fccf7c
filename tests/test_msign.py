"""msign.msign / msign.polar against SciPy, the engine property, invariances, bad input."""

import mpmath
import numpy as np
import pytest
import scipy.linalg
import torch
from conftest import tol, with_singular_values
from hypothesis import given
from hypothesis import strategies as st

import msign
from msign import METHODS, Schedule, get_schedule
from msign.api import apply_method

JORDAN = get_schedule("jordan").coeffs[0]  # the registry holds the published list
F64 = np.float64

CONVERGING = ["svd", "cubic", "quintic", "polar-express", "newton", "qdwh"]
BANDED = ["jordan", "you", "you-5", "su-5", "band-12"]  # lists that stop short of 1
SHAPES = [(40, 24), (24, 40), (32, 32)]


def scipy_polar(G):
    """msign(G) from scipy.linalg.polar in float64 (wide input through its transpose)."""
    m, n = G.shape
    return scipy.linalg.polar(G)[0] if m >= n else scipy.linalg.polar(G.T)[0].T


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


class TestAgainstScipy:
    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize("method", CONVERGING)
    def test_converging_methods_match_polar(self, method, shape):
        G, _, _ = with_singular_values(*shape, np.geomspace(1, 0.1, min(shape)), seed=3)
        X = msign.msign(G, method)
        bound = tol(F64, 4500) if method in ("svd", "newton", "qdwh") else tol(F64, 45_000)
        assert rel(X, scipy_polar(G)) < bound

    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize("method", BANDED)
    def test_banded_methods_stay_within_their_scalar_band(self, method, shape):
        s = np.geomspace(1, 0.1, min(shape))
        G, _, _ = with_singular_values(*shape, s, seed=4)
        sched = get_schedule(method)
        x = np.linspace(s[-1], s[0], 20001) / (sched.safety * np.linalg.norm(G))
        bound = np.abs(sched.scalar_map(x) - 1).max()
        err = np.linalg.norm(msign.msign(G, method) - scipy_polar(G), 2)
        assert err <= bound + tol(F64, 4500)
        assert bound < 0.5  # and the band is a real constraint, not vacuous

    @pytest.mark.parametrize("method", ["svd", "newton", "qdwh", "polar-express"])
    def test_symmetric_input_matches_signm(self, method, rng):
        Q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
        lam = rng.choice([-1, 1], 30) * np.geomspace(1, 0.05, 30)
        G = (Q * lam) @ Q.T
        G = 0.5 * (G + G.T)
        assert rel(msign.msign(G, method), scipy.linalg.signm(G)) < tol(F64, 450_000)

    def test_svd_is_exact_to_1e12(self):
        for kappa in (1e2, 1e4):
            G, U, V = with_singular_values(60, 45, np.geomspace(1, 1 / kappa, 45), seed=5)
            assert rel(msign.msign(G, "svd"), U @ V.T) < tol(F64, 4500)

    @pytest.mark.parametrize("method", ["newton", "qdwh", "svd"])
    @pytest.mark.parametrize("shape", [(80, 80), (100, 60)])
    def test_classical_to_1e10_at_kappa_1e6(self, method, shape):
        G, U, V = with_singular_values(*shape, np.geomspace(1, 1e-6, min(shape)), seed=6)
        X = msign.msign(G, method)
        assert rel(X, U @ V.T) < tol(F64, 450_000)
        assert rel(X, scipy_polar(G)) < tol(F64, 450_000)

    def test_qdwh_iterations(self):
        # Six weighted iterations reach fp64 accuracy up to kappa 1e12 (Frobenius scaling).
        for kappa in (1e2, 1e6, 1e12):
            G, U, V = with_singular_values(50, 50, np.geomspace(1, 1 / kappa, 50), seed=7)
            info = {}
            X = apply_method(torch.from_numpy(G), METHODS["qdwh"], info=info).numpy()
            assert info["iterations"] <= 6
            assert rel(X, U @ V.T) < 1e-15 * kappa * 50

    def test_svd_rank_deficient_maps_null_space_to_zero(self):
        s = np.array([1.0, 0.5, 0.2, 0.0, 0.0])
        G, U, V = with_singular_values(9, 5, s, seed=8)
        X = msign.msign(G, "svd")
        assert rel(X, U[:, :3] @ V[:, :3].T) < tol(F64, 450_000)
        np.testing.assert_allclose(np.linalg.svd(X, compute_uv=False), [1, 1, 1, 0, 0],
                                   atol=tol(F64, 450_000))

    @pytest.mark.parametrize("method", ["svd", "qdwh"])
    def test_exact_zero_columns_stay_zero(self, method):
        A, U, V = with_singular_values(9, 3, [1.0, 0.5, 0.2], seed=8)
        G = np.concatenate([A, np.zeros((9, 2))], axis=1)
        X = msign.msign(G, method)
        np.testing.assert_array_equal(X[:, 3:], 0.0)
        assert rel(X[:, :3], U @ V.T) < tol(F64, 4500)

    def test_newton_rejects_rank_deficient(self):
        G = np.random.default_rng(9).standard_normal((6, 6))
        G[:, 2] = 0.0  # exactly singular: the inverse does not exist
        with pytest.raises(ValueError, match="newton"):
            msign.msign(G, "newton")


def exact_scalar_prediction(G, sched, steps):
    """U f(Sigma / nu) V^T, the engine's exact-arithmetic result, from a float64 SVD."""
    U, s, Vt = np.linalg.svd(G, full_matrices=False)
    return (U * sched.scalar_map(s / sched.divisor(s), steps)) @ Vt


class TestEngine:
    CASES = [
        get_schedule("jordan"),
        get_schedule("polar-express"),
        get_schedule("you"),
        Schedule([(15 / 8, -10 / 8, 3 / 8)], name="quintic"),
        Schedule([(2.2, -2.0, 1.3, -0.5), (1.9, -1.1, 0.2)], name="user-deg7", safety=1.02),
        Schedule(get_schedule("polar-express").coeffs, name="pe-schatten4", safety=1.01,
                 normalization="schatten4"),
    ]

    @pytest.mark.parametrize("sched", CASES, ids=lambda s: s.name)
    @pytest.mark.parametrize("shape", [(30, 50), (50, 30)])
    def test_iterate_equals_scalar_map(self, sched, shape):
        G, _, _ = with_singular_values(*shape, np.geomspace(1, 0.02, min(shape)), seed=10)
        for steps in (1, 3, 9):
            X = msign.msign(G, sched, steps=steps)
            assert np.abs(X - exact_scalar_prediction(G, sched, steps)).max() < tol(F64, 450_000)

    def test_matmul_count(self):
        assert get_schedule("jordan").matmuls() == 15
        assert Schedule([(1.5, -0.5)]).matmuls(4) == 8
        assert Schedule([(2.0, -1.0, 0.5, -0.1)]).matmuls(2) == 8

    def test_steps_beyond_table_repeat_last_entry(self):
        s = get_schedule("polar-express")
        coeffs = s.step_coeffs(10)
        assert coeffs[8] == coeffs[9] == s.coeffs[-1] == (1.875, -1.25, 0.375)
        assert s.step_coeffs(3) == s.step_coeffs()[:3]

    def test_safety_scales_all_but_last(self):
        s = get_schedule("polar-express")
        a, b, c = s.coeffs[0]
        assert s.step_coeffs()[0] == pytest.approx((a / 1.01, b / 1.01**3, c / 1.01**5), rel=1e-15)
        assert s.step_coeffs()[-1] == s.coeffs[-1]

    def test_matches_torch_muon_newton_schulz_bitwise(self):
        from torch.optim._muon import _zeropower_via_newtonschulz

        g = torch.Generator().manual_seed(0)
        for shape in [(64, 256), (256, 64)]:
            G = torch.randn(shape, generator=g)
            ref = _zeropower_via_newtonschulz(G, JORDAN, 5, 1e-7)
            ours = msign.msign(G.bfloat16(), "jordan", gemm="native")
            assert torch.equal(ours, ref)

    def test_torch_ns_transcription_equals_torch(self):
        from msign.bench import torch_newton_schulz

        muon = pytest.importorskip("torch.optim._muon")
        ref_fn = getattr(muon, "_zeropower_via_newtonschulz", None)
        if ref_fn is None:
            pytest.skip("torch's private Newton-Schulz helper is gone")
        g = torch.Generator().manual_seed(3)
        for shape in [(32, 80), (80, 32)]:
            G = torch.randn(shape, generator=g)
            try:
                ref = ref_fn(G, JORDAN, 5, 1e-7)
            except TypeError:
                pytest.skip("torch's private Newton-Schulz helper changed its signature")
            assert torch.equal(torch_newton_schulz(G), ref)


class TestGramSide:
    """iterate_gram: the same map as the standard iteration, computed on the m x m side."""

    @pytest.mark.parametrize("name", ["cubic", "jordan", "polar-express", "you"])
    @pytest.mark.parametrize("restart", [None, 1, 2, 3])
    def test_equals_standard_in_float64(self, name, restart):
        import dataclasses

        G, _, _ = with_singular_values(20, 80, np.geomspace(1, 1e-3, 20), seed=4)
        s = get_schedule(name)
        ref = msign.msign(G, s)
        X = msign.msign(G, dataclasses.replace(s, gram_restart=restart or 100))
        # never re-forming X lets Q and R drift (1.3e-12 after 21 cubic steps here)
        assert np.abs(X - ref).max() < (tol(F64, 4500) if restart else tol(F64, 45_000))
        # the Gram path really ran: it is not bitwise the standard one
        assert restart is not None or not np.array_equal(X, ref)

    def test_batched_and_tall(self):
        import dataclasses

        s = dataclasses.replace(get_schedule("polar-express"), gram_restart=2)
        G = np.random.default_rng(0).standard_normal((3, 48, 12))
        X = msign.msign(G, s)
        ref = np.stack([scipy_polar(g) for g in G])
        assert np.abs(X - ref).max() < tol(F64, 4500)

    def test_only_wide_matrices_take_the_gram_path(self):
        import dataclasses

        s = get_schedule("jordan")
        G = torch.randn(32, 48, dtype=torch.float64)  # n < 2m: the standard iteration
        assert torch.equal(msign.msign(G, dataclasses.replace(s, gram_restart=2)),
                           msign.msign(G, s))

    def test_fewer_flops_at_one_to_four(self):
        from msign.iterate import gram_flops, schedule_flops

        c = get_schedule("polar-express").step_coeffs()
        assert gram_flops(256, 1024, c, 2) / schedule_flops(256, 1024, c) < 0.8
        assert gram_flops(256, 2048, c, 2) / schedule_flops(256, 2048, c) < 0.65
        # and more FLOPs for a square matrix, which is why run_schedule skips it there
        assert gram_flops(256, 256, c, 2) > schedule_flops(256, 256, c)

    @pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
    def test_bad_restart(self, bad):
        with pytest.raises(ValueError, match="gram_restart"):
            Schedule([(1.5, -0.5)], gram_restart=bad)

    def test_json_round_trip(self):
        s = Schedule([(1.5, -0.5)], name="g", gram_restart=2)
        assert Schedule.from_json(s.to_json()) == s

    def test_schatten4_on_the_gram_side(self):
        import dataclasses

        G, _, _ = with_singular_values(16, 64, np.geomspace(1, 1e-2, 16), seed=11)
        s = dataclasses.replace(get_schedule("polar-express"), normalization="schatten4")
        ref = exact_scalar_prediction(G, s, None)
        X = msign.msign(G, dataclasses.replace(s, gram_restart=2))
        assert np.abs(X - ref).max() < tol(F64, 45_000)
        # and it is not the Frobenius normalization in disguise
        fro = exact_scalar_prediction(G, get_schedule("polar-express"), 3)
        assert np.abs(msign.msign(G, dataclasses.replace(s, gram_restart=2), steps=3)
                      - fro).max() > 1e-3


orth = st.integers(0, 2**32 - 1)


def haar(n, seed):
    Q, R = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return Q * np.sign(np.diag(R))


@st.composite
def well_conditioned(draw):
    m, n = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    k = min(m, n)
    s = draw(st.lists(st.floats(0.2, 1.0), min_size=k, max_size=k))
    G, _, _ = with_singular_values(m, n, sorted(s, reverse=True), seed=draw(orth))
    return G


ALL = sorted(METHODS)
#: AOL rescales the rows of the small side by their Gram row sums |X X^T|: equivariant under
#: orthogonal maps of the long side, not of the small side (tests/test_preconditioning.py)
PRECONDITIONED = {n for n, m in METHODS.items() if m.schedule and m.schedule.precondition}
EQUIVARIANT = [n for n in ALL if n not in PRECONDITIONED]


class TestProperties:
    @given(G=well_conditioned(), seeds=st.tuples(orth, orth), method=st.sampled_from(EQUIVARIANT))
    def test_orthogonal_invariance(self, G, seeds, method):
        Q, P = haar(G.shape[0], seeds[0]), haar(G.shape[1], seeds[1])
        lhs = msign.msign(Q @ G @ P, method)
        rhs = Q @ msign.msign(G, method) @ P
        np.testing.assert_allclose(lhs, rhs, atol=tol(F64, 4_500_000))

    @given(G=well_conditioned(), method=st.sampled_from(EQUIVARIANT))
    def test_transpose(self, G, method):
        np.testing.assert_allclose(msign.msign(G.T, method), msign.msign(G, method).T,
                                   atol=tol(F64, 4500))

    @given(G=well_conditioned(), c=st.floats(1e-3, 1e3), method=st.sampled_from(ALL))
    def test_positive_scale_invariance(self, G, c, method):
        np.testing.assert_allclose(msign.msign(c * G, method), msign.msign(G, method),
                                   atol=tol(F64, 45_000))

    @given(seed=orth, b=st.integers(1, 4), method=st.sampled_from(ALL))
    def test_batch_equals_loop(self, seed, b, method):
        Gs = np.stack([with_singular_values(7, 5, np.linspace(1, 0.3, 5), seed=seed + i)[0]
                       for i in range(2 * b)]).reshape(2, b, 7, 5)
        X = msign.msign(Gs, method)
        assert X.shape == Gs.shape
        for i in range(2):
            for j in range(b):
                np.testing.assert_allclose(X[i, j], msign.msign(Gs[i, j], method),
                                           atol=tol(F64, 4500))

    @given(G=well_conditioned(), method=st.sampled_from(ALL))
    def test_numpy_equals_torch(self, G, method):
        Xn = msign.msign(G, method)
        Xt = msign.msign(torch.from_numpy(G), method)
        assert isinstance(Xn, np.ndarray) and isinstance(Xt, torch.Tensor)
        np.testing.assert_array_equal(Xn, Xt.numpy())


class TestScalarMap:
    @pytest.mark.parametrize("name", sorted(msign.SCHEDULES))
    def test_float64_against_mpmath_50_digits(self, name):
        sched = get_schedule(name)
        xs = np.geomspace(1e-4, 1, 200)
        with mpmath.workdps(50):
            ref = []
            for x in xs:
                y = mpmath.mpf(x)
                for step in sched.step_coeffs():
                    y = mpmath.fsum(mpmath.mpf(c) * y ** (2 * j + 1) for j, c in enumerate(step))
                ref.append(y)
            got_mp = sched.scalar_map([mpmath.mpf(x) for x in xs])
            assert max(abs(a - b) for a, b in zip(got_mp, ref, strict=True)) < mpmath.mpf(1e-45)
        np.testing.assert_allclose(sched.scalar_map(xs), np.array(ref, dtype=float),
                                   rtol=tol(F64, 4500))

    def test_published_jordan_numbers(self):
        # Jordan's quintic (KellerJordan/Muon muon.py), 5 steps on [1e-3, 1]: min 0.4705 at
        # 1e-3, max 1.2024, worst |f-1| 0.52946 (independent dense float64 sampling).
        f = get_schedule("jordan").scalar_map(np.geomspace(1e-3, 1, 100001))
        assert f.min() == pytest.approx(0.4705, abs=1e-4)
        assert f.max() == pytest.approx(1.2024, abs=1e-4)
        g = get_schedule("jordan").scalar_map(np.geomspace(1e-2, 1, 100001))
        assert (g.min(), g.max()) == pytest.approx((0.6818, 1.1344), abs=1e-4)

    def test_default_steps_meet_documented_accuracy(self):
        x = np.geomspace(1e-3, 1, 100001)
        for name in ("cubic", "quintic"):
            assert np.abs(get_schedule(name).scalar_map(x) - 1).max() < 1e-7


def gaussian(shape, seed=0, dtype=torch.float32):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


class TestLowPrecision:
    @pytest.mark.parametrize(
        "method,lo,hi",
        [("jordan", 0.65, 1.25), ("polar-express", 0.97, 1.03), ("you", 0.85, 1.03),
         ("quintic", 0.97, 1.03)],
    )
    def test_bf16_bands_on_gaussian(self, method, lo, hi):
        G = gaussian((128, 512), seed=1).bfloat16()
        X = msign.msign(G, method)
        assert X.dtype == torch.bfloat16
        s_min, s_max = msign.metrics.sigma_band(X)
        assert lo <= s_min and s_max <= hi

    def test_compute_dtype_argument(self):
        G = gaussian((64, 128), seed=2, dtype=torch.float64)
        X16 = msign.msign(G, "polar-express", compute_dtype=torch.bfloat16)
        X64 = msign.msign(G, "polar-express")
        assert X16.dtype == torch.float64
        err16 = float(msign.metrics.max_sigma_error(X16))
        assert 1e-4 < err16 < 0.05  # bf16 arithmetic really was used
        assert float(msign.metrics.max_sigma_error(X64)) < tol(F64, 4500)
        assert torch.equal(X16, msign.msign(G, "polar-express", compute_dtype="bf16"))

    @pytest.mark.parametrize("method", ALL)
    @pytest.mark.parametrize("scale", [1e30, 1e-30])
    def test_extreme_scales_fp32(self, method, scale):
        G = gaussian((24, 40), seed=3)
        X = msign.msign(G * scale, method)
        assert torch.isfinite(X).all()
        assert torch.allclose(X, msign.msign(G, method), atol=1e-4)

    @pytest.mark.parametrize("method", ALL)
    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
    def test_zero_maps_to_zero(self, method, dtype):
        Z = torch.zeros(2, 5, 3, dtype=dtype)
        X = msign.msign(Z, method)
        assert X.dtype == dtype and torch.equal(X, Z)

    def test_fp16_large_norm_does_not_overflow(self):
        G = (gaussian((64, 64), seed=4) * 3000).half()
        X = msign.msign(G, "polar-express")
        assert torch.isfinite(X).all() and float(msign.metrics.max_sigma_error(X)) < 0.1


class TestPolar:
    @pytest.mark.parametrize("shape", [(9, 5), (5, 9), (6, 6)])
    @pytest.mark.parametrize("side", ["right", "left"])
    def test_matches_scipy(self, shape, side, rng):
        G = rng.standard_normal(shape)
        U, P = msign.polar(G, side=side)
        Us, Ps = scipy.linalg.polar(G, side=side)
        np.testing.assert_allclose(U, Us, atol=tol(F64, 4500))
        np.testing.assert_allclose(P, Ps, atol=tol(F64, 4500))
        np.testing.assert_allclose(U @ P if side == "right" else P @ U, G, atol=tol(F64, 4500))

    def test_other_method_and_torch(self, rng):
        G = torch.from_numpy(rng.standard_normal((12, 7)))
        U, P = msign.polar(G, method="qdwh")
        assert isinstance(U, torch.Tensor)
        assert torch.allclose(U @ P, G, atol=tol(F64, 4500))
        assert torch.all(torch.linalg.eigvalsh(P) > 0)

    def test_bad_side(self):
        with pytest.raises(ValueError, match="side"):
            msign.polar(np.eye(3), side="up")

    @pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0)])
    @pytest.mark.parametrize("side", ["right", "left"])
    def test_polar_empty_like_scipy(self, shape, side):
        U, P = msign.polar(np.ones(shape), side=side)
        Us, Ps = scipy.linalg.polar(np.ones(shape), side=side)
        assert U.shape == Us.shape and P.shape == Ps.shape
        assert np.array_equal(P, Ps)
        with pytest.raises(ValueError, match="empty"):
            msign.msign(np.ones(shape))


class TestBadInput:
    @pytest.mark.parametrize("method", ["jordan", "polar-express-gram", "svd", "qdwh"])
    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16,
                                       torch.float16])
    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
    def test_nonfinite_named_by_every_path(self, method, dtype, bad):
        # schedules find it in the engine's own norm, factorizations at the API edge
        G = torch.randn(6, 24, dtype=torch.float64)
        G[2, 5] = bad
        with pytest.raises(ValueError, match="G contains NaN or Inf"):
            msign.msign(G.to(dtype), method)
        with pytest.raises(ValueError, match="G contains NaN or Inf"):
            msign.msign(G, method, compute_dtype=dtype)

    def test_finite_input_outside_the_compute_range_is_named(self):
        with pytest.raises(ValueError, match="outside the range of compute_dtype"):
            msign.msign(torch.full((4, 8), 1e30), "jordan", compute_dtype=torch.float16)
        X = msign.msign(torch.full((4, 8), 1e30), "jordan", compute_dtype=torch.bfloat16)
        assert bool(torch.isfinite(X).all())

    @pytest.mark.parametrize(
        "G,exc,match",
        [
            (np.array([[1.0, np.nan], [0.0, 1.0]]), ValueError, "NaN or Inf"),
            (torch.tensor([[1.0, float("inf")]]), ValueError, "NaN or Inf"),
            (np.ones(5), ValueError, "at least 2 dimensions"),
            (np.ones((0, 3)), ValueError, "empty"),
            (torch.ones(2, 0, 3), ValueError, "empty"),
            (np.ones((2, 2), dtype=complex), TypeError, "complex"),
            (torch.ones(2, 2, dtype=torch.complex64), TypeError, "complex"),
            (np.ones((2, 2), dtype=int), TypeError, "float"),
            (torch.ones(2, 2, dtype=torch.int64), TypeError, "floating-point"),
            ([[1.0, 0.0], [0.0, 1.0]], TypeError, "torch.Tensor or numpy.ndarray"),
        ],
    )
    def test_bad_G(self, G, exc, match):
        with pytest.raises(exc, match=match):
            msign.msign(G)

    def test_bad_method(self):
        with pytest.raises(ValueError, match="unknown method 'nope'.*polar-express"):
            msign.msign(np.eye(2), "nope")
        with pytest.raises(TypeError, match="method"):
            msign.msign(np.eye(2), 3)

    @pytest.mark.parametrize("steps", [0, -1, 1.5, True, "3"])
    def test_bad_steps(self, steps):
        for method in ("jordan", "qdwh"):
            with pytest.raises(ValueError, match="steps"):
                msign.msign(np.eye(2), method, steps=steps)

    def test_svd_takes_no_steps(self):
        with pytest.raises(ValueError, match="svd.*steps"):
            msign.msign(np.eye(2), "svd", steps=3)

    @pytest.mark.parametrize("dtype,exc", [("int8", ValueError), (torch.int32, TypeError),
                                           (np.float32, TypeError)])
    def test_bad_compute_dtype(self, dtype, exc):
        with pytest.raises(exc, match="compute_dtype"):
            msign.msign(np.eye(2), compute_dtype=dtype)

    @pytest.mark.parametrize(
        "kwargs,exc,match",
        [
            ({"coeffs": []}, ValueError, "at least one step"),
            ({"coeffs": [3.4, -4.7, 2.0]}, TypeError, "per-step tuples"),
            ({"coeffs": [(1.0, float("nan"))]}, ValueError, "finite"),
            ({"coeffs": [()]}, ValueError, "empty"),
            ({"coeffs": [("a", 1.0)]}, TypeError, "real number"),
            ({"coeffs": "abc"}, TypeError, "list of coefficient tuples"),
            ({"coeffs": [(1.5, -0.5)], "safety": 0.9}, ValueError, "safety"),
            ({"coeffs": [(1.5, -0.5)], "default_steps": 0}, ValueError, "default_steps"),
            ({"coeffs": [(1.5, -0.5)], "name": ""}, TypeError, "name"),
            ({"coeffs": [(1.5, -0.5)], "normalization": "spectral"}, ValueError, "normalization"),
        ],
    )
    def test_malformed_schedule(self, kwargs, exc, match):
        with pytest.raises(exc, match=match):
            Schedule(**kwargs)

    def test_unknown_schedule_name(self):
        with pytest.raises(ValueError, match="unknown schedule"):
            get_schedule("jordan-typo")

    def test_input_is_not_modified(self):
        G = gaussian((8, 16), seed=5)
        G0 = G.clone()
        for method in ALL:
            msign.msign(G, method)
        assert torch.equal(G, G0)


class TestRegistry:
    def test_named_methods_present(self):
        for name in ["svd", "cubic", "quintic", "jordan", "you", "polar-express", "newton", "qdwh"]:
            assert name in METHODS

    def test_register_schedule_and_callable(self):
        try:
            msign.register("tmp-sched", Schedule([(1.5, -0.5)], default_steps=30))
            msign.register("tmp-fn", lambda X: torch.linalg.svd(X, full_matrices=False)[0]
                           @ torch.linalg.svd(X, full_matrices=False)[2])
            G = np.random.default_rng(0).standard_normal((6, 4))
            np.testing.assert_allclose(msign.msign(G, "tmp-sched"), scipy_polar(G),
                                       atol=tol(F64, 450_000))
            np.testing.assert_allclose(msign.msign(G, "tmp-fn"), scipy_polar(G),
                                       atol=tol(F64, 4500))
            with pytest.raises(ValueError, match="already registered"):
                msign.register("tmp-fn", Schedule([(1.5, -0.5)]))
            with pytest.raises(TypeError, match="callable"):
                msign.register("tmp-bad", 42)
        finally:
            METHODS.pop("tmp-sched", None)
            METHODS.pop("tmp-fn", None)

    def test_register_does_not_guess_arity(self):
        calls = []

        def fn(X, rtol=1e-3):  # an optional argument that is not `steps`
            calls.append(rtol)
            return exact_svd(X)

        try:
            msign.register("tmp-rtol", fn)
            msign.msign(np.eye(3), "tmp-rtol")
            assert calls == [1e-3]
            with pytest.raises(ValueError, match="takes no steps"):
                msign.msign(np.eye(3), "tmp-rtol", steps=4)
            msign.register("tmp-steps", lambda X, steps: calls.append(steps) or X,
                           takes_steps=True)
            msign.msign(np.eye(3), "tmp-steps", steps=4)
            assert calls[-1] == 4
        finally:
            METHODS.pop("tmp-rtol", None)
            METHODS.pop("tmp-steps", None)

    def test_docstring_lists_every_method(self):
        for name in METHODS:
            assert f"``{name}``" in msign.msign.__doc__


class TestScheduleJson:
    def test_roundtrip_exact(self, tmp_path):
        s = get_schedule("polar-express")
        path = tmp_path / "s.json"
        s.to_json(path)
        t = Schedule.from_json(path)
        assert t == s and t.step_coeffs() == s.step_coeffs()
        assert Schedule.from_json(s.to_json()) == s

    def test_normalization_roundtrips(self):
        s = Schedule([(1.5, -0.5)], normalization="schatten4")
        assert Schedule.from_json(s.to_json()).normalization == "schatten4"

    def test_schatten4_is_tighter_and_safe(self):
        s = Schedule([(1.5, -0.5)], default_steps=1, normalization="schatten4")
        G = gaussian((64, 256), seed=6, dtype=torch.float64)
        # one cubic step from a larger x: closer to 1 than with the Frobenius bound
        fro = Schedule([(1.5, -0.5)], default_steps=1)
        assert (msign.metrics.sigma_band(msign.msign(G, s))[0]
                > msign.metrics.sigma_band(msign.msign(G, fro))[0])
        for scale in (1e30, 1e-30):
            assert torch.isfinite(msign.msign((G * scale).float(), s)).all()
        assert torch.equal(msign.msign(torch.zeros(2, 3, 4), s), torch.zeros(2, 3, 4))

    def test_unknown_key(self):
        with pytest.raises(ValueError, match="unknown schedule keys"):
            Schedule.from_dict({"coeffs": [[1.5, -0.5]], "colour": "red"})

    def test_bool_default_steps_rejected(self):
        with pytest.raises(ValueError, match="default_steps"):
            Schedule([(1.5, -0.5)], default_steps=True)


class TestCompiled:
    def test_plumbing_and_name(self):
        m = msign.compiled("polar-express", backend="eager")
        assert m.name == "polar-express+compile" and m.schedule is get_schedule("polar-express")
        G = torch.randn(2, 16, 40, dtype=torch.float64)
        assert torch.allclose(msign.msign(G, m), msign.msign(G, "polar-express"), atol=tol(F64, 45))

    def test_inductor_matches_eager(self):
        # one real compilation (a few seconds of C++ codegen on CPU)
        G = torch.randn(24, 64, generator=torch.Generator().manual_seed(0))
        X = msign.msign(G, msign.compiled("jordan"))
        assert (X - msign.msign(G, "jordan")).abs().max() < 1e-5

    def test_zero_and_huge_input_under_compile(self):
        m = msign.compiled("jordan", backend="eager")
        assert torch.equal(msign.msign(torch.zeros(4, 8), m), torch.zeros(4, 8))
        X = msign.msign(torch.randn(4, 8) * 1e30, m)
        assert torch.isfinite(X).all() and X.abs().max() > 0.1

    def test_rejects_factorization_methods(self):
        with pytest.raises(ValueError, match="polynomial schedule"):
            msign.compiled("svd")

    def test_muon_accepts_it(self):
        from msign.optim import Muon

        p = torch.nn.Parameter(torch.randn(8, 12))
        p.grad = torch.randn(8, 12)
        before = p.detach().clone()
        Muon([p], lr=0.1, msign=msign.compiled("jordan", backend="eager")).step()
        assert not torch.equal(p, before) and torch.isfinite(p).all()


class TestInfo:
    """return_info: what ran, what it cost, whether it converged."""

    @pytest.mark.parametrize("name", ["jordan", "polar-express", "jordan-gram",
                                      "polar-express-gram", "cubic"])
    @pytest.mark.parametrize("shape", [(3, 16, 64), (64, 16), (24, 32)])
    def test_schedule_cost_is_the_path_that_ran(self, name, shape):
        from msign.iterate import cost

        G = torch.randn(shape, dtype=torch.float64)
        X, info = msign.msign(G, name, return_info=True)
        sched = get_schedule(name)
        m, n = sorted(shape[-2:])
        batch = shape[0] if len(shape) == 3 else 1
        mms, flops = cost(sched, m, n)
        assert (info["iterations"], info["matmuls"], info["flops"]) == (
            sched.resolve_steps(None), mms, batch * flops)
        assert info["converged"] is None and info["factorizations"] == 0
        assert info["compute_dtype"] == torch.float64 and info["method"] == name
        gram = sched.gram_restart is not None and n >= 2 * m
        # The Gram side runs more (small) products and fewer FLOPs; the standard path
        # counts one product per coefficient.
        assert (mms != sched.matmuls()) == gram
        if gram:
            from msign.iterate import schedule_flops
            assert flops < schedule_flops(m, n, sched.step_coeffs())

    def test_gram_product_count_by_hand(self):
        from msign.iterate import cost

        # jordan-gram, 5 steps, restart 2 on a wide matrix: R = XX^T (1); step 0: Horner (1)
        # and R = HRH (2); step 1: Horner, Q = HQ (2); restart: QX, XX^T (2); step 2:
        # Horner (1), R = HRH (2); step 3: Horner, Q = HQ (2); restart (2); step 4: Horner
        # (1); final QX (1) = 17.
        assert cost(get_schedule("jordan-gram"), 8, 32)[0] == 17

    @pytest.mark.parametrize("name", ["newton", "qdwh"])
    def test_classical_converged_and_cap(self, name, monkeypatch):
        G = np.random.default_rng(0).standard_normal((20, 12))
        _, info = msign.msign(G, name, return_info=True)
        assert info["converged"] is True and info["iterations"] >= 2
        assert info["factorizations"] >= info["iterations"] and info["flops"] > 0
        _, info = msign.msign(G, name, steps=1, return_info=True)
        assert info["iterations"] == 1 and info["converged"] is False
        from msign import classical

        # kappa 1e12 needs every weighted step; a cap of 3 stops it short
        G, _, _ = with_singular_values(20, 12, np.geomspace(1, 1e-12, 12), seed=2)
        monkeypatch.setattr(classical, "MAX_ITERATIONS", 3)
        with pytest.warns(RuntimeWarning, match="iteration cap"):
            _, info = msign.msign(G, name, return_info=True)
        assert info["converged"] is False and info["iterations"] == 3

    def test_svd_and_callables(self):
        _, info = msign.msign(np.eye(3), "svd", return_info=True)
        assert info["iterations"] is None and info["converged"] is None
        assert info["factorizations"] == 1
        try:
            msign.register("tmp-id", lambda X: X)
            X, info = msign.msign(np.eye(3), "tmp-id", return_info=True)
            assert info["matmuls"] is None and info["gemm"] == "native"
        finally:
            METHODS.pop("tmp-id", None)

    def test_half_precision_reports_its_path(self):
        _, info = msign.msign(torch.randn(8, 16).bfloat16(), "jordan", return_info=True)
        assert info["compute_dtype"] == torch.bfloat16
        assert info["gemm"] in ("native", "emulated")
        _, info = msign.msign(torch.randn(8, 16).bfloat16(), "qdwh", return_info=True)
        assert info["compute_dtype"] == torch.float32  # factorizations: promoted

    def test_return_info_must_be_bool(self):
        with pytest.raises(TypeError, match="return_info"):
            msign.msign(np.eye(2), return_info="yes")


def exact_svd(X):
    U, _, Vh = torch.linalg.svd(X, full_matrices=False)
    return U @ Vh
