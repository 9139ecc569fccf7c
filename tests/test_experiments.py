"""The experiment scripts run end to end on tiny inputs (so they cannot silently rot)."""

import json
import sys

from experiments import convergence


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
