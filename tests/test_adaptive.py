"""msign.adaptive: per-matrix steps under a budget, and Muon(msign_budget=...)."""

import numpy as np
import pytest
import torch

import msign
from msign import adaptive, get_schedule, scalar
from msign.optim import Muon


def orthogonal_rows(m, n, seed=0):
    return torch.linalg.qr(torch.randn(n, n, dtype=torch.float64,
                                       generator=torch.Generator().manual_seed(seed)))[0][:m]


class TestRule:
    def test_coverage_is_certified_and_shrinks_with_steps(self):
        s = get_schedule("jordan")
        cov = adaptive.coverage_by_steps(s, 5)
        assert all(a > b for a, b in zip(cov, cov[1:], strict=False))
        for k, lo in enumerate(cov, start=1):
            b = scalar.band(s, lo * 1.001, steps=k)
            assert max(1 - b[0], b[1] - 1) <= adaptive.DELTA

    def test_typical_sigma_is_exact_for_a_flat_spectrum(self):
        X = orthogonal_rows(16, 64) / 4  # sixteen singular values 1/4
        assert adaptive.typical_sigma(X, X @ X.T) == pytest.approx(0.25, rel=1e-12)

    def test_low_effective_rank_stops_earlier_than_high(self):
        m = adaptive.method(get_schedule("jordan"), 15)
        few = orthogonal_rows(8, 64)  # x_hat = 1/sqrt(8): three steps reach the band
        many = orthogonal_rows(256, 512)  # x_hat = 1/16 after the normalization
        _, a = msign.msign(few, m, return_info=True)
        _, b = msign.msign(many, m, return_info=True)
        assert a["steps_per_matrix"][0] < b["steps_per_matrix"][0]
        assert a["matmuls"] == 3 * a["steps_per_matrix"][0]
        # The estimate is energy-weighted: a decade-spaced tail does not lengthen the run,
        # and below_margin says how much of the spectrum it leaves out.
        tail = torch.from_numpy(np.diag(np.geomspace(1, 1e-4, 32))) @ orthogonal_rows(32, 64)
        _, c = msign.msign(tail, m, return_info=True)
        assert c["steps_per_matrix"][0] <= 3 and adaptive.below_margin(tail) > 0.5

    def test_result_is_the_schedule_run_for_the_chosen_steps(self):
        G = torch.randn(3, 12, 40, dtype=torch.float64)
        G[1] = orthogonal_rows(12, 40) * 3.0
        m = adaptive.method(get_schedule("jordan"), 15)
        X, info = msign.msign(G, m, return_info=True)
        ks = info["steps_per_matrix"]
        for i, k in enumerate(ks):
            torch.testing.assert_close(X[i], msign.msign(G[i], "jordan", steps=k))
        assert info["matmuls"] == pytest.approx(3 * np.mean(ks))

    def test_budget_caps_the_steps_and_one_step_is_the_floor(self):
        s = get_schedule("jordan")
        assert adaptive.max_steps(s, 9) == 3 and adaptive.max_steps(s, 11) == 3
        with pytest.raises(ValueError, match="below one step"):
            adaptive.max_steps(s, 2)
        with pytest.raises(TypeError, match="int"):
            adaptive.max_steps(s, 9.0)
        m = adaptive.method(s, 6)
        with pytest.raises(ValueError, match="steps=None"):
            msign.msign(torch.randn(4, 8), m, steps=2)


class TestMuonBudget:
    def test_records_the_products_it_spent_and_matches_the_engine(self):
        torch.manual_seed(0)
        w = torch.nn.Parameter(torch.randn(32, 64))
        opt = Muon([("w", w)], msign="jordan", msign_budget=15, msign_dtype=torch.float64,
                   momentum=0.0, nesterov=False, diagnostics=True)
        g = orthogonal_rows(32, 64).float() * 2
        w.grad = g.clone()
        before = w.detach().clone()
        opt.step()
        x0 = g.double() / g.norm()
        k = adaptive.steps_for(adaptive.typical_sigma(x0, x0 @ x0.T),
                               adaptive.coverage_by_steps(get_schedule("jordan"), 5))
        assert opt.diagnostics["matmuls/w"] == 3 * k < 15
        upd = msign.msign(g.double(), "jordan", steps=k).float()
        torch.testing.assert_close(w.detach(), before - 0.02 * upd, atol=1e-6, rtol=0)

    @pytest.mark.parametrize("kw, err, match", [
        ({"msign_budget": 2}, ValueError, "below one step"),
        ({"msign_budget": "9"}, TypeError, "msign_budget must be an int"),
        ({"msign": "svd", "msign_budget": 9}, ValueError, "needs a schedule method"),
        ({"msign_budget": 9, "ns_steps": 3}, ValueError, "not both"),
    ])
    def test_bad_budgets_fail_at_construction(self, kw, err, match):
        w = torch.nn.Parameter(torch.randn(8, 8))
        with pytest.raises(err, match=match):
            Muon([w], **kw)

    def test_state_dict_round_trip_keeps_the_budget(self):
        w = torch.nn.Parameter(torch.randn(8, 16))
        opt = Muon([w], msign="jordan", msign_budget=9)
        w.grad = torch.randn(8, 16)
        opt.step()
        opt2 = Muon([w], msign="jordan")
        opt2.load_state_dict(opt.state_dict())
        assert opt2.param_groups[0]["msign_budget"] == 9
