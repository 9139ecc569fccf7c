"""AOL preconditioning (msign.iterate.aol, Schedule.precondition, msign(..., precondition=))
and the 2026 registry entries (deepseek-v4, turbo-muon, cans)."""

import numpy as np
import pytest
import torch
from conftest import with_singular_values
from hypothesis import given, settings
from hypothesis import strategies as st

import msign
from msign import Schedule, design, get_schedule, metrics, scalar
from msign.iterate import aol, cost


def aol_reference(X: np.ndarray) -> np.ndarray:
    """D X with D = diag(sum_j |X X^T|_ij)^(-1/2), in float64 numpy (Prach and Lampert)."""
    A = X @ X.T
    return X / np.sqrt(np.abs(A).sum(axis=1))[:, None]


class TestAol:
    @given(st.integers(2, 12), st.integers(0, 8), st.integers(0, 10_000))
    def test_spectral_norm_is_at_most_one_for_any_matrix(self, m, extra, seed):
        # Prach and Lampert 2022, Theorem 1: ||D X||_2 <= 1 whatever X is.
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((m, m + extra)) * rng.lognormal(0, 2, size=(m, 1))
        Y, A = aol(torch.from_numpy(X))
        assert np.linalg.norm(Y.numpy(), 2) <= 1 + 1e-12
        np.testing.assert_allclose(Y.numpy(), aol_reference(X), rtol=1e-12)
        # The Gram matrix comes back without a product: D A D equals (D X)(D X)^T.
        np.testing.assert_allclose(A.numpy(), Y.numpy() @ Y.numpy().T, atol=1e-12)

    def test_orthogonal_rows_of_any_lengths_become_orthonormal(self):
        Q = np.linalg.qr(np.random.default_rng(0).standard_normal((40, 40)))[0][:8]
        X = Q * np.geomspace(1, 1e-4, 8)[:, None]
        Y, _ = aol(torch.from_numpy(X))
        np.testing.assert_allclose(metrics.singular_values(Y), 1.0, atol=1e-12)

    def test_zero_rows_stay_zero_and_finite(self):
        X = torch.zeros(3, 5, dtype=torch.float32)
        X[0] = torch.randn(5)
        Y, A = aol(X)
        assert torch.isfinite(Y).all() and torch.isfinite(A).all()
        assert torch.equal(Y[1:], torch.zeros(2, 5))

    def test_preconditioned_singular_values_lift_unequal_rows(self):
        G, _, _ = with_singular_values(6, 30, np.linspace(1, 0.5, 6))
        G = np.diag(np.geomspace(1, 1e-3, 6)) @ G
        plain = metrics.preconditioned_singular_values(G)
        pre = metrics.preconditioned_singular_values(G, "aol")
        assert pre[0] <= 1 + 1e-12
        assert pre[-1] / pre[0] > 10 * plain[-1] / plain[0]
        with pytest.raises(ValueError, match="precondition"):
            metrics.preconditioned_singular_values(G, "jacobi")


class TestPreconditionedSchedules:
    def test_msign_with_aol_equals_the_float64_reference_iteration(self):
        rng = np.random.default_rng(3)
        G = rng.standard_normal((12, 40)) * rng.lognormal(0, 1, size=(12, 1))
        s = get_schedule("turbo-muon")
        X = aol_reference(G / np.linalg.norm(G))
        for c in s.step_coeffs():
            A = X @ X.T
            X = c[0] * X + (c[1] * A + c[2] * A @ A) @ X
        np.testing.assert_allclose(msign.msign(G, "turbo-muon"), X, atol=1e-12)
        # The same through the keyword on the unpreconditioned list.
        plain = Schedule(s.coeffs, name="tm-list")
        np.testing.assert_allclose(msign.msign(G, plain, precondition="aol"), X, atol=1e-12)
        # Tall input is handled on its small side, as for every schedule.
        np.testing.assert_allclose(msign.msign(G.T, "turbo-muon"), X.T, atol=1e-12)

    def test_aol_costs_no_product_and_info_says_so(self):
        G = torch.randn(16, 64, dtype=torch.float64)
        _, info = msign.msign(G, "turbo-muon", return_info=True)
        assert info["matmuls"] == 12 and info["precondition"] == "aol"
        _, plain = msign.msign(G, Schedule(get_schedule("turbo-muon").coeffs), return_info=True)
        assert plain["matmuls"] == 12 and plain["precondition"] is None
        assert info["flops"] > plain["flops"]  # the elementwise scaling, counted
        # A plain first step has no use for the Gram product: it is counted then.
        s = Schedule([(2.0,), (1.5, -0.5)], precondition="aol")
        assert cost(s, 4, 8)[0] == 3

    def test_zero_and_extreme_scales(self):
        for dtype in (torch.float32, torch.bfloat16):
            assert torch.equal(msign.msign(torch.zeros(4, 6, dtype=dtype), "turbo-muon"),
                               torch.zeros(4, 6, dtype=dtype))
        G = torch.randn(8, 24)
        ref = msign.msign(G, "turbo-muon")
        for scale in (1e30, 1e-30):
            X = msign.msign(G * scale, "turbo-muon")
            assert torch.isfinite(X).all()
            torch.testing.assert_close(X, ref, atol=1e-4, rtol=1e-4)

    def test_bad_precondition_is_refused_with_its_name(self):
        G = torch.randn(4, 6)
        with pytest.raises(ValueError, match="precondition must be None or one of"):
            msign.msign(G, "jordan", precondition="jacobi")
        with pytest.raises(ValueError, match="schedule methods; 'svd'"):
            msign.msign(G, "svd", precondition="aol")
        with pytest.raises(ValueError, match="precondition must be None"):
            Schedule([(1.5, -0.5)], precondition="AOL")
        with pytest.raises(ValueError, match="normalization='fro'"):
            Schedule([(1.5, -0.5)], precondition="aol", normalization="schatten4")
        with pytest.raises(ValueError, match="preconditioned"):
            get_schedule("turbo-muon").divisor([1.0, 2.0])

    def test_json_round_trip_keeps_the_precondition(self):
        s = get_schedule("turbo-muon")
        assert Schedule.from_json(s.to_json()) == s
        # Schedules written before the field existed still load (no precondition).
        d = s.to_dict()
        d.pop("precondition")
        assert Schedule.from_dict(d).precondition is None


class TestAolEquivariance:
    """AOL's D depends on |X X^T| (X the small side): maps of the long side leave X X^T and
    so D unchanged, maps of the small side change |X X^T| unless they are signed
    permutations.  msign with AOL is equivariant exactly where D is."""

    @given(seed=st.integers(0, 2**32 - 1), m=st.integers(2, 6), extra=st.integers(1, 6))
    @settings(max_examples=20, deadline=None)
    def test_long_side_orthogonal_maps_and_signed_permutations_commute(self, seed, m, extra):
        rng = np.random.default_rng(seed)
        n = m + extra
        G = rng.standard_normal((m, n))
        P, _ = np.linalg.qr(rng.standard_normal((n, n)))
        S = np.eye(m)[rng.permutation(m)] * rng.choice([-1.0, 1.0], m)
        X = msign.msign(G, "turbo-muon")
        np.testing.assert_allclose(msign.msign(G @ P, "turbo-muon"), X @ P, atol=1e-12)
        np.testing.assert_allclose(msign.msign(S @ G, "turbo-muon"), S @ X, atol=1e-12)
        # tall input: the engine works on its transpose, so the roles of the sides swap
        np.testing.assert_allclose(msign.msign(G.T, "turbo-muon"), X.T, atol=1e-12)

    def test_a_small_side_rotation_changes_the_update(self):
        rng = np.random.default_rng(3)
        G = rng.standard_normal((4, 9)) * np.array([[3.0], [1.0], [0.3], [0.1]])
        Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
        gap = np.abs(msign.msign(Q @ G, "turbo-muon") - Q @ msign.msign(G, "turbo-muon")).max()
        assert gap > 1e-3  # not a rounding effect: AOL's target msign(DG) moved with D


class TestRegistryEntries2026:
    def test_deepseek_v4_is_eight_jordan_steps_then_two_contracting_ones(self):
        s = get_schedule("deepseek-v4")
        assert s.coeffs[:8] == (get_schedule("jordan").coeffs[0],) * 8
        assert s.coeffs[8:] == ((2.0, -1.5, 0.5),) * 2 and s.matmuls() == 30
        # The last polynomial fixes 1 with zero slope: its band contracts quadratically.
        lo, hi = scalar.band(s, 1e-3)
        j_lo, j_hi = scalar.band(get_schedule("jordan"), 1e-3, steps=8)
        assert 1 - lo < (1 - j_lo) ** 2 and hi - 1 < 10 * (j_hi - 1) ** 2

    def test_cans_entry_is_the_cans_design_and_matches_emerging_optimizers(self):
        s = get_schedule("cans")
        d = design.cans(1e-3, degree=5, steps=5)
        np.testing.assert_allclose(np.array(s.coeffs), np.array(d.coeffs), rtol=1e-13)
        # NVIDIA-NeMo/Emerging-Optimizers@fd772972 muon_utils.py "cans", as it prints them.
        published = [(8.4703, -25.1081, 18.6293), (4.1828, -3.1087, 0.5806),
                     (3.9619, -2.9541, 0.5630), (3.2866, -2.4647, 0.5074),
                     (2.2737, -1.6447, 0.4162)]
        np.testing.assert_allclose(np.array(s.coeffs), published, atol=6e-5)

    def test_turbo_muon_is_preconditioned_and_certified_on_the_aol_interval(self):
        s = get_schedule("turbo-muon")
        assert s.precondition == "aol" and s.matmuls() == 12
        lo, hi = scalar.band(s, 0.1)
        assert 0.8 < lo and hi < 1.06  # the band it was tuned for, above the AOL'd bulk

    @pytest.mark.parametrize("name", ["deepseek-v4", "turbo-muon", "cans"])
    def test_new_entries_run_in_bf16_and_are_listed(self, name):
        assert name in msign.METHODS
        X = msign.msign(torch.randn(32, 96), name, compute_dtype=torch.bfloat16)
        s = metrics.singular_values(X.float())
        assert np.isfinite(s).all() and s[0] < 1.7
