"""The experiment scripts run end to end on tiny inputs (so they cannot silently rot)."""

import json
import sys

import pytest

from experiments.matrix import convergence


def test_convergence_tiny(tmp_path, monkeypatch):
    out = tmp_path / "conv"
    monkeypatch.setattr(sys, "argv", ["convergence", "--dtypes", "fp64,bf16", "--size", "12x20",
                                      "--out", str(out)])
    convergence.main()
    res = json.loads((tmp_path / "conv.json").read_text())
    assert (tmp_path / "conv.png").stat().st_size > 1000
    runs = {(r["dtype"], r["family"], r["method"]): r for r in res["runs"]}
    pe = runs[("fp64", "kappa1e2", "polar-express")]["steps"]
    # fp64: the measured iterates follow the scalar map to rounding, and converge
    assert max(s["scalar_map_gap"] for s in pe) < 1e-12
    assert pe[7]["max_sigma_err"] < 1e-12 and pe[7]["matmuls"] == 24
    assert runs[("bf16", "kappa1e2", "polar-express")]["steps"][7]["max_sigma_err"] < 0.05
    # full-rank families: the fp32-rank reference is the full one; alignment at most one
    assert pe[7]["dist_rank"] == pe[7]["dist_svd"] and pe[7]["alignment"] <= 1 + 1e-12
    low = runs[("fp64", "lowrank_noise", "newton")]["steps"]
    assert all("dist_rank" in s and "alignment" in s for s in low)


def test_precision_tiny(tmp_path):
    from experiments.matrix import precision

    res = precision.main(["--dtypes", "fp64,bf16", "--size", "8x16", "--gradients", "",
                          "--out", str(tmp_path / "p.json")])
    rows = {(r["dtype"], r["family"], r["schedule"], r["normalization"]): r for r in res["rows"]}
    assert json.loads((tmp_path / "p.json").read_text())["rows"] == res["rows"]
    fro = rows[("fp64", "gaussian", "polar-express", "fro")]
    assert fro["verdict"] == "ok" and fro["max_sigma_err"] < 1e-12
    # a tighter norm estimate hands the schedule larger normalized singular values
    s4 = rows[("fp64", "gaussian", "polar-express", "schatten4")]
    assert s4["x_min"] > fro["x_min"]
    assert {r["verdict"] for r in res["rows"]} <= {"ok", "stall", "blow-up"}


def test_gram_tiny(tmp_path):
    from experiments.matrix import gram

    res = gram.main(["--size", "8x32", "--gradients", "", "--big", "64", "--repeat", "1",
                     "--out", str(tmp_path / "g.json")])
    fp64 = [r for r in res["accuracy"] if r["dtype"] == "fp64"]
    assert fp64 and all(r["restart_2"]["max_diff_to_standard"] < 1e-12 for r in fp64)
    assert all(t["flop_ratio"] < 1 for t in res["timing"] if t["shape"][-1] >= 4 * t["shape"][-2])



def test_interleaved_ratios_take_each_round_on_its_own(monkeypatch):
    import types

    import pytest
    import torch

    from msign import bench

    # a fake clock: a costs 1 unit and b 3, times a load that changes 10x between rounds
    now, load, loads = [0.0], [1.0], iter([1.0, 10.0] * 4)

    def a():
        now[0] += load[0]

    def b():
        now[0] += 3 * load[0]
        load[0] = next(loads)

    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    times, ratios = bench.interleaved_ratios([a, b], torch.device("cpu"), 5)
    assert ratios == pytest.approx([1.0, 3.0])
    assert times == pytest.approx([1.0, 3.0])  # loads 1, 10, 1, 10, 1: the median is 1


def test_overhead_benchmark_runs_on_tiny_sizes(tmp_path):
    import json

    from experiments.bench import overhead

    res = overhead.main(["--shapes", "16x32", "--rounds", "2", "--threads", "1",
                         "--out", str(tmp_path / "o.json")])
    assert json.loads((tmp_path / "o.json").read_text())["rows"] == res["rows"]
    assert len(res["rows"]) == 2 and all(r["ratio"] > 0 and r["control"] > 0
                                         for r in res["rows"])


def test_iterate_values_follow_scalar_map_in_fp64():
    import numpy as np
    import torch

    from experiments.matrix.null_direction import iterate_values
    from msign import get_schedule

    G = np.random.default_rng(1).standard_normal((8, 16))
    x, vals = iterate_values(G, "polar-express", torch.float64, 3)
    pred = get_schedule("polar-express").scalar_map(x, 3)
    assert len(vals) == 3 and np.max(np.abs(vals[-1] - pred)) < 1e-12


def test_null_direction_measures_against_the_rank_r_factor(tmp_path):
    # A gradient whose input space loses the all-ones direction (as after a LayerNorm),
    # stored tall (out, in) like a Linear weight's gradient.
    import numpy as np

    from experiments.matrix import null_direction

    rng = np.random.default_rng(0)
    n = 12
    P = np.eye(n) - np.ones((n, n)) / n
    G = (rng.standard_normal((30, n)) @ P + 1e-9 * rng.standard_normal((30, n))).astype(np.float32)
    np.savez(tmp_path / "g.npz", **{"w/step300/grad": G})
    res = null_direction.main(["--gradients", str(tmp_path / "g.npz"), "--key", "w/step300/grad",
                               "--out", str(tmp_path / "n.json")])
    assert json.loads((tmp_path / "n.json").read_text())["rank"] == res["rank"] == n - 1
    assert res["rank_fp64"] == n and res["ones_cos"] > 0.999
    pe, newton = res["methods"]["polar-express"]["fp64"], res["methods"]["newton"]["fp64"]
    # Newton inverts the null direction (to one): exact against U V^T, off U_r V_r^T by one
    # of n singular pairs; Polar Express leaves it near zero, the other way round.
    assert newton["dist_svd"] < 1e-6 and abs(newton["dist_rank"] - 1 / np.sqrt(n - 1)) < 1e-3
    assert pe["dist_rank"] < 1e-3 < pe["dist_svd"] and pe["null_lift"] < 1e-2
    assert 0.99 < pe["alignment"] <= 1 + 1e-12
    assert res["iterate_gap"]["float64"] < 1e-12 < res["iterate_gap"]["bfloat16"]
    with pytest.raises(SystemExit, match="not in"):
        null_direction.main(["--gradients", str(tmp_path / "g.npz"), "--key", "nope"])


def test_rounding_heldout_smoke(tmp_path):
    from experiments.matrix import rounding_heldout as rh

    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps({"c_sigma": {"max": 1.18}, "kappa": {"max": 0.7},
                               "size": [256, 512]}))
    res = rh.main(["--configs", "smoke", "--calibration", str(cal),
                   "--out", str(tmp_path / "h.json")])
    assert json.loads((tmp_path / "h.json").read_text())["rows"] == res["rows"]
    assert res["c_star"] == 1.18 and len(res["rows"]) == 2 * len(rh.GEMMS)
    for r in res["rows"]:  # a measured constant beside the store's first-order account
        assert r["finite"] and r["c_sigma_max"] > 0 and r["c_weyl_max"] >= r["c_sigma_max"] - 1e-9
        assert isinstance(r["contained_at_c_star"], bool)
        # a wider enclosure contains whatever the narrower one does
        assert r["contained_at_c_design"] or not r["contained_at_c_star"]
    assert res["exceed_c_star"] == sum(r["c_sigma_max"] > 1.18 for r in res["rows"])
    # the store term grows with the aspect ratio m/n and is largest for a square output
    sq, wide = rh.store_prediction(64, 64), rh.store_prediction(64, 4096)
    assert sq["c_sigma_store"] > wide["c_sigma_store"] > 0
    assert abs(sq["c_weyl_store"] - 2 / 6**0.5) < 1e-12
    assert rh.store_prediction(4096, 64) == wide  # m <= n either way


def test_rounding_account_smoke(tmp_path):
    import numpy as np

    from experiments.matrix import rounding_account as ra

    res = ra.main(["--configs", "smoke", "--out", str(tmp_path / "a.json")])
    assert json.loads((tmp_path / "a.json").read_text())["steps"] == res["steps"] > 0
    # the diagonal bound of the Gram and polynomial stores holds at every step
    assert res["bound_holds"] == res["steps_checked"]
    assert res["subadditive"] == res["steps"]
    for r in res["runs"]:
        for st in r["steps"]:
            assert st["measured"]["all"] > 0 and 0 <= st["snapped"] <= 1
    # h is half a bf16 spacing: u at [1, 2), u/2 just below 1
    assert ra.h([1.0, 1.5, 0.99])[0] == ra.U_BF16 == ra.h([1.5])[0]
    assert ra.h([0.99])[0] == ra.U_BF16 / 2
    # at a converged cluster of Polar Express's last step the bound is 1/2 + 1/2
    p = ra.predicted(np.array([1.0]), (1.875, -1.25, 0.375), 64, 4096)
    assert abs(p["A"] - 0.5) < 1e-12 and abs(p["B"] - 0.5) < 1e-12
