"""Every figure function and the numbers file run on tiny inputs (no TeX needed)."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from experiments.lm import compare_optimizers
from experiments.matrix import rounding_model
from experiments.matrix.convergence import run_classical, run_schedule_steps
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
                         "steps": run_schedule_steps(G, m, dtype, 3, ref, ref_r=ref)})
    runs.append({"dtype": "fp64", "family": "gaussian", "method": "newton",
                 "steps": run_classical(G, "newton", torch.float64, ref, max_steps=3,
                                        ref_r=ref)})
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


@pytest.fixture(scope="module")
def tiny_rounding():
    g = torch.Generator().manual_seed(0)
    G = torch.randn(8, 16, generator=g, dtype=torch.float64)
    runs = [{"family": "gaussian", "repeat": 0, "schedule": name, "gemm": "native",
             **rounding_model.run_one(G, name, "native")} for name in ("polar-express", "jordan")]
    c = max(s["c_sigma"] for r in runs for s in r["steps"])
    stat = {"max": c, "median": c / 2, "p99": c, "count": sum(len(r["steps"]) for r in runs)}
    return {"size": [8, 16], "u": 2.0**-8, "repeats": 1, "runs": runs, "c_sigma": stat,
            "c_top": stat, "c_weyl": {**stat, "max": 2 * c}, "kappa": stat,
            "models": rounding_model.compare_models(runs, c)}


@pytest.fixture(scope="module")
def tiny_family():
    def run(arm, opt, lr, seed, drop):
        return {"arm": arm, "optimizer": opt, "msign": None if opt == "adamw" else "jordan",
                "lr": lr, "seed": seed, "tokens_per_step": 64, "wall_s": 3.0 + seed,
                "val": [[s, 3.0 - drop * s / 10] for s in (0, 5, 10)],
                "wall": [[s, (3.0 + seed) * s / 10] for s in (0, 5, 10)]}

    runs = [run("adamw", "adamw", lr, 0, d) for lr, d in ((1e-3, 0.4), (2e-3, 0.5), (4e-3, 0.45))]
    runs += [run("adamw", "adamw", 2e-3, s, 0.5 + 0.01 * s) for s in (1, 2)]
    for arm, drop in (("muon-jordan", 1.0), ("muon-polar-express", 0.98),
                      ("normuon-polar-express", 0.99), ("muonclip-jordan", 1.0)):
        runs += [run(arm, "muon", 0.02, s, drop + 0.01 * s) for s in (0, 1, 2)]
        runs += [run(arm, "muon", 0.04, 0, drop - 0.2)]
    for r in runs:  # logits 30 at 0.02, 80 at 0.04: the clip (tau 50) fires only there
        if r["arm"] in ("muon-jordan", "muonclip-jordan"):
            r["qk_max"] = 30.0 if r["lr"] == 0.02 else 80.0
            r["qk_clips"] = 7 if r["arm"] == "muonclip-jordan" and r["lr"] == 0.04 else 0
            if r["qk_clips"]:
                r["val"] = [[s, v - 0.1] for s, v in r["val"]]
    return {"table": compare_optimizers.analyse(runs), "runs": runs, "n_params": 1234,
            "model": {"layers": 1, "d_model": 8, "block": 4}, "device": "x86_64 cpu",
            "val_works": ["hamlet", "twelfth_night"], "jobs": 2, "warmup": 1, "grad_clip": 1.0,
            "adamw_weight_decay": 0.1, "muon_weight_decay": 0.01, "normuon_beta2": 0.95,
            "qk_clip_tau": 50.0}


@pytest.fixture(scope="module")
def tiny_selection(tmp_path_factory):
    """family.finish_select on made-up runs: the screen chose each arm's upper rate, seed
    means choose the lower; AdamW's beta2 0.99 with warm-up 50 wins its tuning."""
    import argparse

    from experiments.lm import family

    def run(arm, opt, lr, seed, final):
        return {"arm": arm, "optimizer": opt, "msign": None if opt == "adamw" else "jordan",
                "lr": lr, "seed": seed, "tokens_per_step": 64, "wall_s": 3.0,
                "val": [[0, 3.0], [5, (3.0 + final) / 2], [10, final]],
                "wall": [[0, 0.0], [5, 1.5], [10, 3.0]], "qk_max": 30.0, "qk_clips": 0}

    cands = {"adamw": (1e-3, 1.41e-3, 2e-3)} | {
        a: (0.02, 0.0283, 0.04) for a in ("muon-jordan", "muon-polar-express",
                                          "normuon-polar-express", "muonclip-jordan")}
    base = {"adamw": 2.5, "muon-jordan": 2.0, "muon-polar-express": 2.01,
            "normuon-polar-express": 1.99, "muonclip-jordan": 2.0}
    done = {}
    for arm, lrs in cands.items():
        opt = "adamw" if arm == "adamw" else "muon"
        for i, lr in enumerate(lrs):
            for seed in (0, 1, 2):
                # seed 0 favours the largest rate, the mean over seeds the smallest
                final = base[arm] + (-0.02 * i if seed == 0 else 0.03 * i)
                if arm == "normuon-polar-express":
                    final -= 0.001 * seed
                done[arm, lr, seed] = run(arm, opt, lr, seed, final)
    for v in family.adamw_variants(argparse.Namespace(preset="smoke", steps=10)):
        for seed in (0, 1, 2):
            final = 2.49 - 0.002 * seed if v.meta == {"beta2": 0.99, "warmup": 50} else 2.6
            done[v.name, 1e-3, seed] = run(v.name, "adamw", 1e-3, seed, final)
    lm = {"table": [{"arm": a, "best_lr": lrs[-1]} for a, lrs in cands.items()],
          "muon_adamw_lr": 2e-3}
    args = argparse.Namespace(device="cpu", preset="smoke", steps=10,
                              out=str(tmp_path_factory.mktemp("sel")))
    return family.finish_select(args, lm, done, cands, 1e-3)


class TestFigures:
    def test_scalar_map_figures(self, tmp_path):
        assert pdf_ok(figures.fig_jordan(tmp_path / "j.pdf", points=50))
        assert pdf_ok(figures.fig_composites(tmp_path / "c.pdf", points=50))
        assert pdf_ok(figures.fig_pe_steps(tmp_path / "p.pdf", name="you", points=20))

    def test_iterates(self, tmp_path):
        G = np.random.default_rng(0).standard_normal((12, 6))
        assert pdf_ok(figures.fig_iterates(G, tmp_path / "i.pdf", steps=(1, 2)))

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

    def test_lm(self, tmp_path, tiny_lm, tiny_family):
        assert pdf_ok(figures.fig_lm(tiny_lm, tmp_path / "lm.pdf"))
        assert pdf_ok(figures.fig_lm(tiny_family, tmp_path / "family.pdf"))

    def test_lm_selection(self, tmp_path, tiny_selection):
        assert pdf_ok(figures.fig_lm(tiny_selection, tmp_path / "sel.pdf"))

    def test_rounding(self, tmp_path, tiny_rounding):
        assert pdf_ok(figures.fig_rounding(tiny_rounding, tmp_path / "r.pdf", family="gaussian"))

    def test_entropy(self, tmp_path):
        res = {"groups": ["MLP in", "MLP out"],
               "table": [{"arm": a, "group": g, "step": st, "mean_entropy": 0.9 - 0.01 * st}
                         for a in ("adamw", "muon-jordan") for g in ("MLP in", "MLP out")
                         for st in (1, 2)],
               "matrices": [{"arm": a, "group": g, "step": st, "seed": s, "layer": 0,
                             "entropy": 0.9 - 0.01 * st + 0.01 * s}
                            for a in ("adamw", "muon-jordan") for g in ("MLP in", "MLP out")
                            for st in (1, 2) for s in (0, 1)]}
        assert pdf_ok(figures.fig_entropy(res, tmp_path / "h.pdf"))

    def test_budget(self, tmp_path):
        assert pdf_ok(figures.fig_budget(TINY_BUDGET, tmp_path / "b.pdf"))

    def test_cnn(self, tmp_path):
        rows = [{"arm": a, "lr": 0.1, "test_acc_mean": 0.95, "test_acc_ci95": [0.94, 0.96],
                 "finals": [0.94, 0.96], "epochs_to_sgd_final": None, "reached": 0,
                 "epoch_time_vs_sgd": 1.0}
                for a in ("sgd", "muon-jordan")]
        assert pdf_ok(figures.fig_cnn({"rows": rows}, tmp_path / "cnn.pdf"))
        summary = {"rows": rows, "data": "digits_x", "epochs": 8, "select_seeds": [0],
                   "report_seeds": [1, 2], "target_acc": 0.95,
                   "rule_comparison": {"msign_minus_kj_mean": 0.001, "ci95": [-0.01, 0.012],
                                       "verdict": "neither"}}
        v = numbers.cnn_numbers(summary)
        assert v["CNNRuleDiff"] == "+0.10" and v["CNNData"] == "digits\\_x"
        assert v["CNNRows"].count("\\\\") == 2 and "95.00 [94.00, 96.00]" in v["CNNRows"]


TINY_BUDGET = {
    "adamw_final_val_mean": 1.6, "steps": 800,
    "headline": {"jordan_range": [1.50, 1.52], "schedule": "band-9", "matmuls": 9,
                 "text": "band-9 (9 products, degree 5 x 3)"},
    "rows": [{"name": n, "matmuls": mm, "steps": mm // 3, "degree": 5, "lower": 0.01,
              "certified_band": [0.7, 1.3], "final_val_loss": v,
              "final_val_mean": float(np.mean(v)), "steps_fraction": 0.6,
              "orthogonalization_s": t, "orthogonalization_vs_jordan": t}
             for n, mm, v, t in (("band-6", 6, [1.55, 1.56, 1.57], 0.4),
                                 ("band-9", 9, [1.51, 1.52, 1.50], 0.6),
                                 ("muon-jordan", 15, [1.50, 1.51, 1.52], 1.0))]}


def typeset(text: str, on: dict[str, bool]) -> str:
    """The part of paper.tex that TeX reads, given the study switches (blocks do not nest)."""
    out, keep, cur = [], True, None
    for part in re.split(r"(\\ifStudy[A-Za-z]+|\\else\b|\\fi\b)", text):
        if part.startswith("\\ifStudy"):
            cur = part.removeprefix("\\ifStudy")
            keep = on[cur]
        elif part == "\\else" and cur:
            keep = not on[cur]
        elif part == "\\fi" and cur:
            cur, keep = None, True
        elif keep:
            out.append(part)
    return "".join(out)


class TestNumbers:
    def test_sci(self):
        assert numbers.sci(3.2e-3) == "3.2\\times10^{-3}"
        assert numbers.sci(0.529456) == "0.529"
        assert numbers.sci(0.0) == "0"

    def test_macro_names_are_checked(self):
        with pytest.raises(ValueError, match="letters only"):
            numbers.macros({"Bad1": "x"})

    def test_lm_family_numbers(self, tiny_family, tiny_selection):
        stall = {"runs": {
            "first sweep (no clip, no decay)": {"final_val": 2.5, "grad_norm_max": 9.0,
                                                "grad_norm_argmax": 1, "grad_norm_median": 0.5,
                                                "train_loss_by_100": [3.2, 2.6]},
            "this sweep (clip 1, decay 0.1)": {"final_val": 2.0, "steps_clipped": 3,
                                               "grad_norm_max": 20.0, "grad_norm_argmax": 2,
                                               "train_loss_by_100": [2.9, 2.1]},
            "first sweep, as recorded": {"final_val": 2.5}}}
        bench = {"device": "cpu", "ratio_to_adamw": {"adamw": 1.0, "muon-jordan": 1.5,
                                                     "muon-polar-express": 1.7,
                                                     "normuon-polar-express": 1.8}}
        v = numbers.lm_family_numbers(tiny_selection, tiny_family, stall, bench)
        # AdamW: rate 1e-3 on seed means, then beta2 0.99 / warm-up 50 (2.49, 2.488, 2.486)
        assert v["LMAdamWLr"] == "0.001" and v["LMAdamW"] == "2.488"
        assert v["LMAdamWBeta"] == "0.99" and v["LMAdamWWarmup"] == "50"
        assert v["LMAdamWTuning"].count("warm-up") == 3
        assert v["LMRows"].count("\\\\") == 5 and v["LMValWorks"] == "hamlet, twelfth night"
        # every arm's chosen rate is its sqrt(2) grid's lower edge, not the screen's choice
        assert v["LMRows"].count("$^\\dagger$") == 5 and v["LMRows"].count("(0.04)") == 4
        assert "all 5 of the 5 arms" not in v["LMSelectSentence"]
        assert "moved the rate of all 5 arms" in v["LMSelectSentence"]
        assert "all 4 Muon arms end below AdamW" in v["LMSummarySentence"]
        # MuonClip's runs are Muon's: not listed as a difference; NorMuon's interval < 0
        assert "muonclip" not in v["LMSummarySentence"].split("Against")[1].split(". ")[0]
        assert "Every arm's chosen rate is at an edge" in v["LMSummarySentence"]
        assert "$-0.0210$ [$-0.0235$, $-0.0185$]" in v["NorMuonSentence"]
        assert "every NorMuon seed ends below" in v["NorMuonSentence"]
        qk = v["QKClipSentence"]
        assert "largest attention logit of its 3 runs is $30 < \\tau$" in qk
        assert "bit for bit" in qk and "At 0.04 Muon's largest logit reaches $80$" in qk
        assert "clips 7 times" in qk and "ends at $2.100$ against Muon's $2.200$" in qk
        assert "reproduces the recorded run" in v["StallSentence"]
        assert "$3.20$ against $2.90$" in v["StallSentence"]
        assert v["StepJordan"] == "1.50"

    def test_rounding_numbers(self, tiny_rounding):
        v = numbers.rounding_numbers(tiny_rounding)
        assert v["RoundInside"] == "2/2 finite runs" and v["RoundRuns"] == "2"
        assert float(v["CMax"]) == pytest.approx(tiny_rounding["c_sigma"]["max"], abs=0.005)

    def test_gradient_numbers_find_the_layernorm_direction(self, tmp_path):
        rng = np.random.default_rng(0)
        mats = {}
        for step in (10, 300):
            A = rng.standard_normal((12, 6))
            A -= A.mean(axis=1, keepdims=True)  # rows orthogonal to (1, ..., 1), as after LN
            mats[f"w/step{step}/grad"] = A
        np.savez(tmp_path / "g.npz", **mats)
        v = numbers.gradient_numbers(np.load(tmp_path / "g.npz"))
        assert v["GradRank"] == "6" and v["GradOnesCos"] == "1.0000"
        assert v["GradTenMin"] == "17"  # one of six below 1e-3 ||G||_F

    def test_entropy_and_mismatch_numbers(self):
        ent = {"steps": [1, 2], "fraction_above_adamw": {"muon-jordan": 0.95,
                                                         "muon-polar-express": 0.5,
                                                         "normuon-polar-express": 0.7},
               "table": [{"arm": "muon-jordan", "group": g, "step": 2, "mean_entropy": e,
                          "fraction_above_adamw": f} for g, f, e in (("MLP in", 1.0, 0.9),
                                                                     ("MLP out", 0.75, 0.8))]
               + [{"arm": "adamw", "group": "MLP in", "step": 2, "mean_entropy": 0.7,
                   "fraction_above_adamw": None}]}
        v = numbers.entropy_numbers(ent)
        assert v["EntropyJordan"] == "95" and "only for some arms" in v["EntropySentence"]
        assert "MLP out (75" in v["EntropySentence"]
        assert "0.80--0.90 for Muon and 0.70--0.70 for AdamW" in v["EntropySentence"]
        ent["fraction_above_adamw"] = {k: 1.0 for k in ent["fraction_above_adamw"]}
        ent["table"][1]["fraction_above_adamw"] = 1.0
        assert "is 100\\%, confirming" in numbers.entropy_numbers(ent)["EntropySentence"]
        mis = {"pretrain_steps": 6, "finetune_steps": 3, "held_out": ["twelfth_night"],
               "table": [{"pretrain": p, "finetune": f, "final_mean": m, "spread": 0.01,
                          "final_per_seed": [m - 0.005, m + 0.005]}
                         for p, f, m in (("adamw", "adamw", 2.0), ("adamw", "muon", 2.1),
                                         ("muon", "adamw", 1.95), ("muon", "muon", 1.9))]}
        v = numbers.mismatch_numbers(mis)
        assert v["MismatchRows"].count("\\\\") == 2
        assert "by $+0.1000$ (seed spread" in v["MismatchSentence"]
        assert v["MismatchSentence"].startswith("After AdamW pretraining, fine-tuning with Muon")
        assert "The best pair is Muon $\\rightarrow$ Muon." in v["MismatchSentence"]
        assert "switching optimizers hurts after AdamW and after Muon pretraining" \
            in v["MismatchSentence"]
        assert "end 0.050--0.200 below AdamW-pretrained" in v["MismatchSentence"]
        mis["table"][1]["final_mean"] = 1.99  # AdamW -> Muon now helps
        mis["table"][2]["final_mean"] = 1.905  # Muon -> AdamW within the spread of Muon -> Muon
        mis["table"][1]["best_lr_at_grid_edge"] = True
        s = numbers.mismatch_numbers(mis)["MismatchSentence"]
        assert "hurts in neither direction" in s
        assert "1 of the four fine-tuning rates sits at an edge" in s
        # Muon -> Muon 1.9 and Muon -> AdamW 1.905 differ by less than their spread 0.01
        assert "The best pair, Muon $\\rightarrow$ Muon, is within the seed spread of Muon" in s

    def test_budget_numbers(self):
        designs = {"delta": 0.35, "budgets": [6, 9, 15],
                   "designed": [{"name": f"band-{m}", "matmuls": m, "degree": 5,
                                 "steps": m // 3, "lower": 0.1 / m, "band": [0.7, 1.3],
                                 "real_matrices": {"g": {"nuclear_alignment": 0.9,
                                                          "sigma_max": 1.2}},
                                 "from_1e-3": {"per_step_error": 0.3,
                                               "shared_quintic_error": 0.4}}
                                for m in (6, 9, 15)],
                   "references": [{"name": "jordan", "real_matrices": {
                       "g": {"nuclear_alignment": 0.88, "sigma_max": 1.1}}}]}
        more = {"table": [{"name": "muon-jordan", "final_val_loss": [1.5] * 6},
                          {"name": "band-9", "diff_to_jordan": 0.004,
                           "diff_ci95": [-0.002, 0.01], "welch_p": 0.2,
                           "final_val_loss": [1.5 + 0.001 * s for s in range(6)]},
                          {"name": "band-7", "diff_to_jordan": 0.008,
                           "diff_ci95": [-0.0003, 0.016], "welch_p": 0.06,
                           "final_val_loss": [1.508 + 0.004 * (-1) ** s for s in range(6)]},
                          {"name": "band-6", "diff_to_jordan": 0.05,
                           "diff_ci95": [0.04, 0.06], "welch_p": 0.001,
                           "final_val_loss": [1.55 + 0.001 * s for s in range(6)]}]}
        v = numbers.budget_numbers(designs, TINY_BUDGET, more, {"step_s": {"muon-jordan": 2.0}})
        assert v["BudgetMoreSeeds"].startswith("With 6 seeds each")
        # band-9 orthogonalizes in 0.6 s against Jordan's 1.0 s: 0.4 s of a 2 s step
        assert "saves 20\\% of a Muon step" in v["BudgetHeadline"]
        assert "of Jordan's time" in v["BudgetHeadline"] and "x Jordan" not in v["BudgetHeadline"]
        assert "band-9} ends $+0.0040$ from Jordan (95\\% Welch interval $[-0.0020, +0.0100]$, " \
            "$p = 0.20$): not distinguishable" in v["BudgetMoreSeeds"]
        assert "$p = 0.06$): not separated from Jordan's at 95\\%, leaning worse;" \
            in v["BudgetMoreSeeds"]
        assert "$p < 0.01$): worse than Jordan's." in v["BudgetMoreSeeds"]
        # paired TOST at 0.01: band-9 within 0.0025 of Jordan on every seed, band-6 0.05 off
        assert "band-9} $p = 0.000$ (equivalent)" in v["BudgetMoreSeeds"]
        assert "band-6} $p = 1.000$ (equivalence not shown)" in v["BudgetMoreSeeds"]
        assert v["BudgetRows"].count("\\\\") == 3 and "$\\times$" in v["BudgetHeadline"]
        assert "& 0.750 &" in v["BudgetRows"]  # band-6: alignment 0.9 per sigma_max 1.2
        # band-6 (1.55-1.57) is the next cheaper one, all its seeds above Jordan's 1.52
        assert v["BudgetBelow"].startswith("The next cheaper design, \\texttt{band-6}")
        assert "+0.0400 from Jordan's worst seed" in v["BudgetBelow"]
        assert "none of its seeds reaches" in v["BudgetBelow"]
        d = numbers.budget_design_numbers(designs)
        assert d["BudgetMinMatmuls"] == "6" and d["BudgetSharedFifteen"] == "0.400"
        assert d["BudgetDesignRows"].count("\\\\") == 3 and d["BudgetAlignJordan"] == "0.800"

    def test_derivation_numbers_come_from_sympy(self):
        v = numbers.derivation_numbers()
        assert v["TaylorQuintic"] == "\\frac{15 x}{8} - \\frac{5 x^{3}}{4} + \\frac{3 x^{5}}{8}"
        assert v["JordanA"] == "3.4445"

    def test_every_macro_the_paper_uses_is_written(self, tmp_path):
        out = numbers.main(["--out", str(tmp_path / "numbers.tex")])
        defined = set(re.findall(r"\\newcommand\{\\(\w+)\}", out.read_text()))
        text = (ROOT / "paper" / "paper.tex").read_text()
        on = {n: st == "true" for n, st in
              re.findall(r"\\Study([A-Za-z]+?)(true|false)", out.read_text())}
        used = set(re.findall(r"\\([A-Z]\w*)", typeset(text, on))) - {"Sigma"}  # LaTeX's
        assert used - defined == set()

    def test_a_missing_study_is_typeset_as_pending(self, tmp_path, capsys):
        res = tmp_path / "results"
        shutil.copytree(ROOT / "results", res)
        (res / "budget" / "summary.json").unlink(missing_ok=True)
        out = numbers.main(["--results", str(res), "--out", str(tmp_path / "n.tex")])
        text = out.read_text()
        assert "\\StudyBudgetfalse" in text and "\\newcommand{\\BudgetRows}" not in text
        assert "experiments.lm.budget --parts train" in text
        assert "pending: Budget" in capsys.readouterr().err
        tex = "a \\ifStudyX b\\else c\\fi{} d \\ifStudyX{} e\\fi."
        assert typeset(tex, {"X": True}) == "a  b{} d {} e."
        assert typeset(tex, {"X": False}) == "a  c{} d ."
        json.loads((ROOT / "results" / "lm" / "summary.json").read_text())


def test_sources_is_the_only_place_a_results_path_is_written():
    import re
    from pathlib import Path

    from paper import sources

    here = Path(sources.__file__).parent
    literal = re.compile(r"""["'][\w./-]*\.(json|npz)["']""")
    for f in sorted(here.rglob("*.py")):
        if f.name != "sources.py":
            assert not literal.search(f.read_text()), f"{f} names a results file"
    # every source outside a long study must exist; a study may be pending
    assert all(sources.path(k).exists() for k, s in sources.SOURCES.items() if not s.study)
    assert sources.GRAD == "blocks.3.fc.weight:step300:grad"


def test_comm_numbers_table_is_max_over_ranks_with_the_model():
    runs = [{"layout": "fsdp", "world": w, "max_ratio": 2 * (w - 1) / w**2,
             "model_ratio": 2 * (w - 1) / w**2} for w in (2, 4)]
    runs.append({"layout": "replicated", "world": 4, "max_ratio": 0.8, "model_ratio": 0.75})
    v = numbers.comm_numbers({"device": "cpu", "runs": runs})
    assert v["CommCols"] == "lcc" and v["CommWorlds"] == "$W = 2$ & $W = 4$"
    assert v["CommRows"].splitlines() == ["FSDP2 & 0.500 (0.500) & 0.375 (0.375) \\\\",
                                          "replicated (DDP) & -- & 0.800 (0.750) \\\\"]
    assert v["CommWorst"] == "0.800" and v["CommWorstWhere"] == "replicated (DDP) at $W = 4$"
