"""Every figure function and the numbers file run on tiny inputs (no TeX needed)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from experiments import compare_optimizers
from experiments.convergence import run_classical, run_schedule_steps
from msign import get_schedule
from paper import figures, numbers

ROOT = Path(__file__).resolve().parent.parent


def pdf_ok(path: Path) -> bool:
    return path.read_bytes()[:5] == b"%PDF-" and path.stat().st_size > 3000


@pytest.fixture(scope="module")
def tiny_convergence():
    G = torch.randn(6, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = torch.linalg.svd(G, full_matrices=False)
    ref = ref.U @ ref.Vh
    runs = []
    for dt, dtype in (("fp64", torch.float64), ("bf16", torch.bfloat16)):
        for m in ("jordan", "polar-express"):
            runs.append({"dtype": dt, "family": "gaussian", "method": m,
                         "steps": run_schedule_steps(G, m, dtype, 3, ref)})
    runs.append({"dtype": "fp64", "family": "gaussian", "method": "newton",
                 "steps": run_classical(G, "newton", torch.float64, ref, max_steps=3)})
    return {"size": [6, 10], "runs": runs}


@pytest.fixture(scope="module")
def tiny_lm():
    def run(opt, method, lr, seed, drop):
        return {"optimizer": opt, "msign": method, "lr": lr, "seed": seed,
                "tokens_per_step": 64, "wall_s": 3.0 + seed,
                "val": [[s, 3.0 - drop * s / 10] for s in (0, 5, 10)],
                "wall": [[s, (3.0 + seed) * s / 10] for s in (0, 5, 10)]}

    runs = [run("adamw", None, 1e-3, s, 0.5) for s in (0, 1)]
    runs += [run("muon", "jordan", 0.02, s, 1.0) for s in (0, 1)]
    return {"table": compare_optimizers.analyse(runs), "runs": runs, "n_params": 1234,
            "model": {"layers": 1, "d_model": 8, "block": 4}, "device": "x86_64 cpu",
            "val_works": ["hamlet", "twelfth_night"]}


class TestFigures:
    def test_scalar_map_figures(self, tmp_path):
        assert pdf_ok(figures.fig_jordan(tmp_path / "j.pdf", points=50))
        assert pdf_ok(figures.fig_composites(tmp_path / "c.pdf", points=50))
        assert pdf_ok(figures.fig_pe_steps(tmp_path / "p.pdf", name="you", points=20))

    def test_iterates(self, tmp_path):
        G = np.random.default_rng(0).standard_normal((12, 6))
        assert pdf_ok(figures.fig_iterates(G, tmp_path / "i.pdf", steps=(1, 2)))

    def test_iterate_values_follow_scalar_map_in_fp64(self):
        G = np.random.default_rng(1).standard_normal((8, 16))
        x, vals = figures.iterate_values(G, "polar-express", torch.float64, 3)
        pred = get_schedule("polar-express").scalar_map(x, 3)
        assert len(vals) == 3 and np.max(np.abs(vals[-1] - pred)) < 1e-12

    def test_error_vs_flops(self, tmp_path, tiny_convergence):
        for err in figures.ERRORS:
            assert pdf_ok(figures.fig_error_vs_flops(tiny_convergence, tmp_path / "e.pdf",
                                                     error=err))
        # the FLOP axis is the library's cost model: Jordan's k steps on 6 x 10
        flops = figures._flops_per_step("jordan", (10, 6), 3)
        assert flops == [k * (4 * 36 * 10 + 2 * 216) for k in (1, 2, 3)]

    def test_timing(self, tmp_path):
        res = {"device": "cpu", "dtype": "bfloat16", "torch": "2.13", "date": "2026-11-23",
               "rows": [{"shape": [4, 8], "method": "jordan", "ratio_torch_ns": 0.9},
                        {"shape": [2, 4, 4], "method": "svd"}]}
        assert pdf_ok(figures.fig_timing([res, res], tmp_path / "t.pdf"))

    def test_lm(self, tmp_path, tiny_lm):
        assert pdf_ok(figures.fig_lm(tiny_lm, tmp_path / "lm.pdf"))


class TestNumbers:
    def test_sci(self):
        assert numbers.sci(3.2e-3) == "3.2\\times10^{-3}"
        assert numbers.sci(0.529456) == "0.529"
        assert numbers.sci(0.0) == "0"

    def test_macro_names_are_checked(self):
        with pytest.raises(ValueError, match="letters only"):
            numbers.macros({"Bad1": "x"})

    def test_lm_numbers(self, tiny_lm):
        v = numbers.lm_numbers(tiny_lm)
        # Muon (drop 1.0/10 steps) reaches AdamW's final 2.5 at step 5 of 10
        assert v["LMBestFraction"] == "0.50" and v["LMBestMethod"] == "jordan"
        assert v["LMAdamW"] == "2.500" and v["LMValWorks"] == "hamlet, twelfth night"
        assert v["LMRows"].count("\\\\") == 2

    def test_derivation_numbers_come_from_sympy(self):
        v = numbers.derivation_numbers()
        assert v["TaylorQuintic"] == "\\frac{15 x}{8} - \\frac{5 x^{3}}{4} + \\frac{3 x^{5}}{8}"
        assert v["JordanA"] == "3.4445"

    def test_every_macro_the_paper_uses_is_written(self, tmp_path):
        out = numbers.main(["--out", str(tmp_path / "numbers.tex")])
        defined = set(re.findall(r"\\newcommand\{\\(\w+)\}", out.read_text()))
        text = (ROOT / "paper" / "paper.tex").read_text()
        used = set(re.findall(r"\\([A-Z]\w*)", text)) - {"Sigma"}  # \Sigma is LaTeX's
        assert used - defined == set()
        json.loads((ROOT / "results" / "lm" / "summary.json").read_text())
