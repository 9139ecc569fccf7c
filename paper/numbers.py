"""Write paper/numbers.tex: every number the paper's text quotes, as LaTeX macros.

    python -m paper.numbers [--results results] [--out paper/numbers.tex]

Each value comes from a results file or is computed by the library here (the Taylor
coefficients by sympy, the Jordan band by the certified interval propagation); none is typed.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import sympy
import torch

import msign
from experiments.common.matrices import blew_up
from experiments.lm.budget import cheaper_than_headline
from msign import design, get_schedule
from msign.design import taylor_ns
from msign.iterate import schedule_flops
from msign.results import write_text
from msign.scalar import band, estimate_worst_case_error, noise_band

from .figures import iterate_values
from .sources import GRAD, GRAD_KEY, RESULTS, load, pending, study_command

SCHEDULE_ROWS = ["cubic", "quintic", "jordan", "you", "you-5", "su-5", "turbo-muon-poly",
                 "polar-express", "polar-express-bf16", "pe-5x5-l0.001", "pe-6x5-l0.001",
                 "pe-8x5-l0.001", "pe-8x3-l0.001", "pe-5x7-l0.001"]


def sci(v: float, digits: int = 2) -> str:
    """``3.2\\times10^{-3}`` for math mode; plain decimals between 0.01 and 1000."""
    if v == 0 or not math.isfinite(v):
        return {0: "0", math.inf: "\\infty"}.get(v, "\\mathrm{nan}")
    if 1e-2 <= abs(v) < 1e3:
        return f"{v:.{digits + 1}g}"
    mant, exp = f"{v:.{digits - 1}e}".split("e")
    return f"{mant}\\times10^{{{int(exp)}}}"


def tex(text: str) -> str:
    """Escape the characters of device names and file names that TeX treats specially."""
    return text.replace("_", "\\_").replace("#", "\\#").replace("%", "\\%")


def _label(name: str) -> str:
    if name.startswith("pe-"):
        steps, degree = name.split("-")[1].split("x")
        return f"designed ${steps}\\times{degree}$"
    return f"\\texttt{{{name}}}"


def _upper(v: float) -> str:
    return "$\\infty$" if not math.isfinite(v) or v > 1e6 else f"{v:.4g}"


def schedule_numbers(table: dict) -> dict[str, str]:
    """Table 1 (experiments/matrix/schedule_table.py): certified error, model upper end, bf16
    runs."""
    rows = {r["schedule"]: r for r in table["rows"]}
    lines = []
    for name in SCHEDULE_ROWS:
        r = rows[name]
        k, one = r["bf16"]["kappa100"], r["bf16"]["rank1_noise"]
        gflop = schedule_flops(1024, 4096, get_coeffs(name)) / 1e9
        lines.append(f"{_label(name)} & {r['steps']} & {r['degree']} & {r['matmuls']} & "
                     f"{gflop:.0f} & {r['safety']:g} & ${sci(r['worst_case_error'])}$ & "
                     f"{_upper(r['noise_band_bf16'][1])} & "
                     f"${sci(k['max_sigma_err'])}$, {_upper(one['sigma_max'])} \\\\")
    out = {"ScheduleRows": "\n".join(lines), "ScheduleDevice": tex(table["device"])}
    for key, name in (("Cubic", "cubic"), ("Quintic", "quintic"), ("Jordan", "jordan"),
                      ("You", "you"), ("YouFive", "you-5"), ("PE", "polar-express"),
                      ("PEbf", "polar-express-bf16"), ("DesignFive", "pe-5x5-l0.001"),
                      ("DesignSix", "pe-6x5-l0.001")):
        out[f"Wce{key}"] = sci(rows[name]["worst_case_error"])
        out[f"Bf{key}"] = sci(rows[name]["bf16"]["kappa100"]["max_sigma_err"])
    out["PesOneRankOne"] = sci(rows["pe-8x5-l0.001"]["bf16"]["rank1_noise"]["sigma_max"])
    (k_lo, k_hi), (_, r_hi) = (table["test_matrix_x_range"][k] for k in ("kappa100",
                                                                         "rank1_noise"))
    out.update(KappaXmin=sci(k_lo), KappaXmax=sci(k_hi), RankXmax=f"{r_hi:.4f}")
    out["PEbfModelTwo"] = f"{noise_band('polar-express-bf16', 1e-3, 2.0**-7)[1]:.4f}"
    return out


def get_coeffs(name: str) -> list:
    """The step coefficients of a named schedule or of schedule_table's designed rows."""
    if name in msign.SCHEDULES:
        return get_schedule(name).step_coeffs()
    if name == "turbo-muon-poly":
        return get_schedule("you-5").step_coeffs()[1:]
    steps, degree = (int(v) for v in name.split("-")[1].split("x"))
    return design.polar_express(1e-3, steps, degree, safety=1.0).step_coeffs()


def derivation_numbers() -> dict[str, str]:
    out = {f"Taylor{n}": sympy.latex(taylor_ns(k, as_expr=True), order="rev-lex")
           for k, n in ((1, "Cubic"), (2, "Quintic"), (3, "Septic"))}
    jordan = get_schedule("jordan")
    a, b, c = jordan.step_coeffs(1)[0]
    out.update(JordanA=f"{a:g}", JordanB=f"{b:g}", JordanC=f"{c:g}")
    lo, hi = band(jordan, lower=1e-2)
    out.update(JordanBandLo=f"{lo:.3f}", JordanBandHi=f"{hi:.3f}")
    out["JordanAtMilli"] = f"{float(jordan.scalar_map(1e-3)):.3f}"
    style = design.jordan_style()
    a, b, c = style.coeffs[0]
    lo, hi = band(style, lower=1e-2)
    out.update(JordanStyleA=f"{a:.2f}", JordanStyleB=f"{b:.2f}", JordanStyleC=f"{c:.2f}",
               JordanStyleLo=f"{lo:.3f}", JordanStyleHi=f"{hi:.3f}")
    pe = get_schedule("polar-express")
    out["PESteps"] = str(pe.resolve_steps(None))
    out["PESafety"] = f"{pe.safety:g}"
    greedy = design.polar_express(1e-3, 1, 5, safety=1.0, cushion=0.0).coeffs[0]
    for key, v in zip("ABC", greedy, strict=True):
        out[f"Greedy{key}"] = f"{v:.2f}"
    for key, v in zip("ABC", pe.coeffs[0], strict=True):
        out[f"Published{key}"] = f"{v:.2f}"
    out["EstPE"] = sci(estimate_worst_case_error(pe, 1e-3))
    out["EstJordan"] = sci(estimate_worst_case_error(jordan, 1e-3))
    out["MatmulsJordan"] = str(jordan.matmuls())
    return out


def rounding_numbers(res: dict) -> dict[str, str]:
    """Section 3 (experiments/matrix/rounding_model.py): the measured constants and the models."""
    models = {m["schedule"]: m for m in res["models"]}
    inside = sum(m["final_sigmas_inside_absolute_model"] for m in res["models"])
    finite = sum(m["finite_runs"] for m in res["models"])
    tracked = sum(m["min_sigma_inside_its_track"] for m in res["models"])
    if tracked != finite:
        raise ValueError(f"the paper says every smallest singular value lies in its track; "
                         f"{tracked}/{finite} do")
    c = res["c_sigma"]["max"]
    cu = c * res["u"]
    pe = get_schedule("polar-express")
    dev = max(abs(v - 1) for v in noise_band(pe, 0.05, cu))
    lo, hi = 1e-3, 0.05  # smallest lower bound whose enclosure stays within dev of one
    for _ in range(20):
        mid = math.sqrt(lo * hi)
        if noise_band(pe, mid, cu)[0] >= 1 - dev - 1e-9:
            hi = mid
        else:
            lo = mid
    pes1 = models["pe-s1"]
    return {"RoundSize": "\\times".join(map(str, res["size"])),
            "RoundRepeats": str(res["repeats"]), "RoundRuns": str(len(res["runs"])),
            "RoundSteps": str(res["c_sigma"]["count"]),
            "CMedian": f"{res['c_sigma']['median']:.2f}", "CMax": f"{c:.2f}",
            "CWeylMax": f"{res['c_weyl']['max']:.2f}",
            "RoundInside": f"{inside}/{finite} finite runs",
            "RelPredPE": sci(models["polar-express"]["relative_model_min_sigma_median"]),
            "MeasPE": sci(models["polar-express"]["measured_min_sigma_median"]),
            "PesOneBlowUps": f"{pes1['blow_ups']}/{pes1['runs']}",
            "NoiseFloorPE": sci(hi, 1), "NoiseDevPE": sci(dev),
            "NoiseDevPEbf": sci(max(abs(v - 1) for v in noise_band("polar-express-bf16", 0.01,
                                                                   cu)))}


def timing_numbers(cpu: dict, gpu: dict) -> dict[str, str]:
    out = {"GpuName": tex(gpu["device"]), "GpuTorch": tex(gpu["torch"]), "GpuDate": gpu["date"],
           "CpuName": tex(cpu["device"]), "GpuMatmulRate": f"{gpu['matmul_rate_tflops']:.0f}"}

    def row(res: dict, shape: tuple, method: str = "jordan") -> dict:
        return next(r for r in res["rows"] if tuple(r["shape"]) == shape and r["method"] == method)

    for key, shape in (("Big", (8192, 8192)), ("Four", (4096, 4096)), ("Small", (1024, 1024)),
                       ("Rect", (1024, 4096)), ("Wide", (1024, 8192)),
                       ("Batch", (16, 1024, 1024))):
        r = row(gpu, shape)
        out[f"GpuNs{key}"] = f"{r['ratio_torch_ns']:.2f}"
        out[f"GpuFloor{key}"] = f"{100 * r['floor_fraction']:.0f}"
    sched = [r for r in cpu["rows"] if r.get("ratio_torch_ns") is not None
             and r["method"] in ("jordan", "you", "polar-express", "quintic")]
    out["CpuNsMin"] = f"{min(r['ratio_torch_ns'] for r in sched):.2f}"
    out["CpuNsMax"] = f"{max(r['ratio_torch_ns'] for r in sched):.2f}"
    out["CpuFloorMin"] = f"{100 * min(r['floor_fraction'] for r in sched):.0f}"
    out["CpuFloorMax"] = f"{100 * max(r['floor_fraction'] for r in sched):.0f}"
    return out


def optimizer_numbers(cpu: dict, gpu: dict) -> dict[str, str]:
    out = {"OptLayers": str(gpu["layers"]), "OptWidth": str(gpu["d_model"]),
           "OptMatrices": str(gpu["n_matrices"]), "OptCpuName": tex(cpu["device"])}
    for dev, res in (("Gpu", gpu), ("Cpu", cpu)):
        r = res["ratio_to_torch_muon"]
        out[f"Opt{dev}Jordan"] = f"{r['msign Muon jordan']:.2f}"
        out[f"Opt{dev}PE"] = f"{r['msign Muon polar-express']:.2f}"
    return out


def gradient_numbers(npz: np.lib.npyio.NpzFile) -> dict[str, str]:
    """What the captured gradients look like: the share of singular values below 1e-3 of the
    Frobenius norm at step 10, the count at step 300, and the direction of the smallest."""
    tiny10, count300, cosines, ranks = [], set(), [], set()
    for key in npz.files:
        if "/" not in key:
            continue
        G = npz[key].astype(np.float64)
        _, s, vt = np.linalg.svd(G, full_matrices=False)
        small = s < 1e-3 * np.linalg.norm(G)
        ranks.add(len(s))
        if "step10/grad" in key:
            tiny10.append(float(small.mean()))
        if "step300" in key:
            count300.add(int(small.sum()))
            cosines.append(abs(vt[-1].sum()) / math.sqrt(len(s)))  # against (1, ..., 1)
    if len(ranks) != 1 or count300 != {1}:
        raise ValueError(f"the paper says one of n at step 300 in every matrix; got "
                         f"ranks {ranks}, counts {count300}")
    (n,) = ranks
    return {"GradTenMin": f"{100 * min(tiny10):.0f}", "GradTenMax": f"{100 * max(tiny10):.0f}",
            "GradRank": str(n), "InvSqrtRank": f"{1 / math.sqrt(n):.3f}",
            "GradOnesCos": f"{math.floor(min(cosines) * 1e4) / 1e4:.4f}"}


def convergence_numbers(res: dict, npz: np.lib.npyio.NpzFile) -> dict[str, str]:
    """Final errors of the convergence study and the rounding gap of the iterate figure."""
    runs = {(r["dtype"], r["family"], r["method"]): r for r in res["runs"]}

    def final(dt: str, fam: str, method: str) -> dict:
        r = runs[dt, fam, method]
        return r["steps"][min(r["default_steps"], len(r["steps"])) - 1]

    out = {"ConvSize": "\\times".join(map(str, res["size"])),
           "ConvDevice": tex(res["device"]),
           "ConvGradPE": sci(final("fp64", GRAD, "polar-express")["dist_svd"], 1),
           "ConvGradNewton": sci(final("fp64", GRAD, "newton")["dist_svd"], 1),
           "AlignPEDouble": f"{final('fp64', GRAD, 'polar-express')['nuclear_alignment']:.4f}",
           "AlignPEBf": f"{final('bf16', GRAD, 'polar-express')['nuclear_alignment']:.4f}",
           "AlignJordanBf": f"{final('bf16', GRAD, 'jordan')['nuclear_alignment']:.4f}"}
    gaps = [final(*k)["scalar_map_gap"] for k, r in runs.items()
            if k[0] == "bf16" and ":" in k[1] and "scalar_map_gap" in r["steps"][0]]
    out.update(GapMin=f"{min(gaps):.2f}", GapMax=f"{max(gaps):.3f}")
    G = npz[GRAD_KEY]
    # where bf16 puts the null direction: X v_min, against G's column space
    G64 = torch.as_tensor(G, dtype=torch.float64)
    X = msign.msign(G64, "polar-express", compute_dtype=torch.bfloat16).double()
    U, _, Vh = torch.linalg.svd(G64, full_matrices=False)
    w = X @ Vh[-1]
    out.update(NullLift=f"{float(w.norm()):.2f}",
               NullInCol=f"{float((U.mT @ w).norm() / w.norm()):.3f}")
    for dtype, key in ((torch.float64, "Fp"), (torch.bfloat16, "Bf")):
        x, vals = iterate_values(G, "polar-express", dtype, 8)
        gap = np.abs(vals[-1] - get_schedule("polar-express").scalar_map(x, 8))
        out[f"IterGap{key}"] = sci(float(gap.max()), 1)
    return out


def precision_numbers(res: dict) -> dict[str, str]:
    """Normalization study (experiments/matrix/precision.py): blow-ups by the one rule, and what the
    Schatten-4 normalization does to each metric."""
    rows = res["rows"]

    def sel(sched: str, norm: str, dtype: str | None = None, fam=None) -> list[dict]:
        return [r for r in rows if (r["schedule"], r["normalization"]) == (sched, norm)
                and dtype in (None, r["dtype"]) and (fam is None or fam(r["family"]))]

    def blowups(sched: str, norm: str) -> str:
        rs = sel(sched, norm)
        return f"{sum(r['verdict'] == 'blow-up' for r in rs)}/{len(rs)}"

    def med(key: str, norm: str) -> float:
        return float(np.median([r[key] for r in sel("polar-express", norm, "bf16")]))

    def one(key: str, norm: str, fam: str) -> float:
        (r,) = sel("polar-express", norm, "bf16", lambda f: f == fam)
        return r[key]

    grads = [r["max_sigma_err"] for r in sel("polar-express", "schatten4", "fp64",
                                             lambda f: ":" in f)]
    return {"BlowPETwo": blowups("polar-express", "power-2"),
            "BlowPEEight": blowups("polar-express", "power-8"),
            "BlowPEbfEight": blowups("polar-express-bf16", "power-8"),
            "BlowJordanTwo": blowups("jordan", "power-2"),
            "BlowPEFro": blowups("polar-express", "fro"),
            "PrecPEFro": sci(med("max_sigma_err", "fro"), 1),
            "PrecPESchatten": sci(med("max_sigma_err", "schatten4"), 1),
            "PrecSFpMin": f"{min(grads):.2f}", "PrecSFpMax": f"{max(grads):.3f}",
            "PrecDistGradFro": f"{one('dist_svd', 'fro', GRAD):.3f}",
            "PrecDistGradS": f"{one('dist_svd', 'schatten4', GRAD):.3f}",
            "PrecDistKappaFro": f"{one('dist_svd', 'fro', 'kappa1e4'):.3f}",
            "PrecDistKappaS": f"{one('dist_svd', 'schatten4', 'kappa1e4'):.3f}",
            "PrecAlignFro": f"{med('nuclear_alignment', 'fro'):.4f}",
            "PrecAlignS": f"{med('nuclear_alignment', 'schatten4'):.4f}"}


def gram_numbers(res: dict) -> dict[str, str]:
    """Gram-side iteration: blow-ups per restart interval in bf16 (the rule of every study),
    time and FLOP ratios."""
    bf = [r for r in res["accuracy"] if r["dtype"] == "bf16"]
    out = {"GramDevice": tex(res["device"])}
    for key, r in (("Two", 2), ("Three", 3), ("Never", None)):
        out[f"GramBlow{key}"] = f"{sum(blew_up(x[f'restart_{r}']) for x in bf)}/{len(bf)}"
    t2 = [t for t in res["timing"] if t["restart"] == 2 and t["dtype"] == "bf16"]
    out.update(GramTimeMin=f"{min(t['time_ratio'] for t in t2):.2f}",
               GramTimeMax=f"{max(t['time_ratio'] for t in t2):.2f}",
               GramTimeMedian=f"{np.median([t['time_ratio'] for t in t2]):.2f}",
               GramLoad=f"{res.get('load_average_1min', float('nan')):.1f}",
               GramFlopMin=f"{min(t['flop_ratio'] for t in t2):.2f}",
               GramFlopMax=f"{max(t['flop_ratio'] for t in t2):.2f}",
               GramFpDiff=sci(max(x[f"restart_{k}"]["max_diff_to_standard"]
                                  for x in res["accuracy"] if x["dtype"] == "fp64"
                                  for k in (2, 3)), 1))
    return out


def _arm_label(arm: str) -> str:
    return {"adamw": "AdamW"}.get(arm, f"\\texttt{{{arm}}}")


def _frac(v: float | None) -> str:
    return "--" if v is None else f"{v:.2f}"


def qk_clip_sentence(summary: dict) -> str:
    """What QK-clip did in the sweep: the largest logits and how often the clip fired, at
    MuonClip's best rate and at the rates where it fired (run records' qk_max, qk_clips)."""
    best = next(t["best_lr"] for t in summary["table"] if t["arm"] == "muonclip-jordan")
    clip = [r for r in summary["runs"] if r["arm"] == "muonclip-jordan" and "qk_max" in r]
    muon = {(r["lr"], r["seed"]): r for r in summary["runs"] if r["arm"] == "muon-jordan"}
    at_best = [r for r in clip if r["lr"] == best]
    peak = max(r["qk_max"] for r in at_best)
    if any(r["qk_clips"] for r in at_best):
        sent = (f"At MuonClip's best rate ({best:g}) the clip fired "
                f"{sum(r['qk_clips'] for r in at_best)} times (heads $\\times$ steps) over "
                f"{len(at_best)} runs.")
    else:
        same = all(r["val"] == muon[r["lr"], r["seed"]]["val"] for r in at_best
                   if (r["lr"], r["seed"]) in muon)
        sent = (f"At MuonClip's best rate ({best:g}) the largest attention logit of its "
                f"{len(at_best)} runs is ${peak:.0f} < \\tau$: the clip never fires, and "
                + ("the runs equal Muon's, validation curves bit for bit." if same else
                   "the runs differ from Muon's only by rounding."))
    for r in sorted((r for r in clip if r["qk_clips"] and r["lr"] != best),
                    key=lambda r: r["lr"]):
        m = muon.get((r["lr"], r["seed"]))
        if m is None or "qk_max" not in m:
            continue
        sent += (f" At {r['lr']:g} Muon's largest logit reaches ${m['qk_max']:.0f}$; MuonClip "
                 f"clips {r['qk_clips']} times (heads $\\times$ steps) and ends at "
                 f"${r['val'][-1][1]:.3f}$ against Muon's ${m['val'][-1][1]:.3f}$.")
    return sent


def lm_family_numbers(summary: dict, stall: dict, bench: dict) -> dict[str, str]:
    """Section 6: the fair comparison (experiments/lm/family.py part lm), the stalled AdamW seed
    (part stall) and the interleaved step-time benchmark (experiments/bench/lm_step.py)."""
    table = {t["arm"]: t for t in summary["table"]}
    adamw = table["adamw"]
    run = summary["runs"][0]
    steps = run["val"][-1][0]
    rows = []
    for t in summary["table"]:
        per_seed = ", ".join(f"{v:.3f}" for v in t["final_val_per_seed"])
        edge = "$^*$" if t["best_lr_at_grid_edge"] else ""
        rows.append(f"{_arm_label(t['arm'])} & {t['best_lr']:g}{edge} & "
                    f"{t['final_val_mean']:.4f} & {t['final_val_spread']:.4f} & {per_seed} & "
                    f"{_frac(t.get('fraction_of_adamw_steps'))} & "
                    f"{_frac(t.get('wall_per_step_vs_adamw'))} \\\\")
    muon = [t for t in summary["table"] if t["optimizer"] == "muon"]
    below = [t for t in muon if t["final_val_mean"] < adamw["final_val_mean"]]
    beyond = [t for t in muon if max(t["final_val_per_seed"]) < min(adamw["final_val_per_seed"])]
    fracs = [t["fraction_of_adamw_steps"] for t in muon if t.get("fraction_of_adamw_steps")]
    best = min(muon, key=lambda t: t["final_val_mean"])
    spread_muon = max(t["final_val_mean"] for t in muon) - min(t["final_val_mean"] for t in muon)
    max_spread = max(t["final_val_spread"] for t in muon)
    sent = (f"{len(below)} of the {len(muon)} Muon arms end below AdamW's mean, {len(beyond)} "
            f"with every seed below every AdamW seed; the best, \\texttt{{{best['arm']}}}, ends "
            f"at ${best['final_val_mean']:.3f}$. ")
    if fracs:
        sent += (f"Those that reach AdamW's final loss do so in ${min(fracs):.2f}$--"
                 f"${max(fracs):.2f}$ of its steps. ")
    sent += (f"The Muon arms' means lie within ${spread_muon:.3f}$ of each other, against seed "
             f"spreads of up to ${max_spread:.3f}$.")
    edges = [t["arm"] for t in summary["table"] if t["best_lr_at_grid_edge"]]
    if edges:
        sent += (" The best rate of " + ", ".join(f"\\texttt{{{a}}}" for a in edges)
                 + " is still at the edge of its extended grid (marked $^*$).")
    nm, pe = table["normuon-polar-express"], table["muon-polar-express"]
    diff = nm["final_val_mean"] - pe["final_val_mean"]
    within = abs(diff) <= max(nm["final_val_spread"], pe["final_val_spread"])
    every = max(nm["final_val_per_seed"]) < min(pe["final_val_per_seed"])
    nm_sent = (f"NorMuon ends at ${nm['final_val_mean']:.4f}$ against "
               f"${pe['final_val_mean']:.4f}$ for Muon with the same Polar Express "
               f"orthogonalizer, a difference of ${diff:+.4f}$ "
               + ("within" if within else "outside") + " the seed spreads "
               f"(${nm['final_val_spread']:.4f}$, ${pe['final_val_spread']:.4f}$)"
               + ("; every NorMuon seed ends below every Muon seed" if every else "")
               + "; it reaches "
               f"AdamW's final loss in {_frac(nm.get('fraction_of_adamw_steps'))} of AdamW's "
               f"steps against {_frac(pe.get('fraction_of_adamw_steps'))}.")
    wall = {k: v for k, v in bench["ratio_to_adamw"].items()}
    old, new = (stall["runs"][k] for k in ("first sweep (no clip, no decay)",
                                           "this sweep (clip 1, decay 0.1)"))
    recorded = stall["runs"].get("first sweep, as recorded")
    if recorded and abs(recorded["final_val"] - old["final_val"]) < 1e-3:
        stall_sent = ("The rerun reproduces the recorded run's final loss "
                      f"(${recorded['final_val']:.3f}$). ")
    elif recorded:
        stall_sent = (f"The recorded run ended at ${recorded['final_val']:.3f}$; the training "
                      "code has changed since (warm-up, evaluation), so the rerun is not the "
                      "same run, but it is as slow. ")
    else:
        stall_sent = ""
    ol, nl = old["train_loss_by_100"], new["train_loss_by_100"]
    stall_sent += (f"With clipping the largest gradient norm is ${new['grad_norm_max']:.1f}$ "
                   f"(step {new['grad_norm_argmax']}), and clipping acts on "
                   f"{new['steps_clipped']} of the {steps} steps. Without it, the mean training "
                   f"loss over the first 100 steps is ${ol[0]:.2f}$ against ${nl[0]:.2f}$ and "
                   f"the gap stays (${ol[-1]:.2f}$ against ${nl[-1]:.2f}$ over the last 100): "
                   "an early gradient spike at this rate, not a plateau late in training.")
    return {
        "LMParams": f"{summary['n_params'] / 1e6:.2f}", "LMLayers": str(summary["model"]["layers"]),
        "LMWidth": str(summary["model"]["d_model"]), "LMBlock": str(summary["model"]["block"]),
        "LMSteps": str(steps), "LMTokens": f"{run['tokens_per_step'] * steps / 1e6:.1f}",
        "LMDevice": tex(summary["device"]), "LMJobs": str(summary["jobs"]),
        "LMWarmup": str(summary["warmup"]), "LMClip": f"{summary['grad_clip']:g}",
        "LMEvalEvery": str(run["val"][1][0] - run["val"][0][0]),
        "WdAdamW": f"{summary['adamw_weight_decay']:g}",
        "WdMuon": f"{summary['muon_weight_decay']:g}",
        "NorMuonBeta": f"{summary['normuon_beta2']:g}", "QKTau": f"{summary['qk_clip_tau']:g}",
        "LMValWorks": ", ".join(w.replace("_", " ") for w in summary["val_works"]),
        "LMAdamWLr": f"{adamw['best_lr']:g}", "LMAdamW": f"{adamw['final_val_mean']:.3f}",
        "LMAdamWSpreadHalf": f"{adamw['final_val_spread'] / 2:.3f}",
        "LMRows": "\n".join(rows), "LMSummarySentence": sent, "NorMuonSentence": nm_sent,
        "QKClipSentence": qk_clip_sentence(summary),
        "StepJordan": f"{wall['muon-jordan']:.2f}", "StepPE": f"{wall['muon-polar-express']:.2f}",
        "StepNorMuon": f"{wall['normuon-polar-express']:.2f}",
        "LMMuonRange": f"{spread_muon:.3f}",
        "StepDevice": tex(bench["device"]),
        "StallOld": f"{old['final_val']:.3f}", "StallNew": f"{new['final_val']:.3f}",
        "StallOldGnMax": f"{old['grad_norm_max']:.1f}",
        "StallOldGnStep": str(old["grad_norm_argmax"]),
        "StallOldGnMedian": f"{old['grad_norm_median']:.2f}", "StallSentence": stall_sent,
    }


def entropy_numbers(res: dict) -> dict[str, str]:
    """Singular-value entropy (experiments/lm/family.py part entropy)."""
    frac = res["fraction_above_adamw"]
    last = max(res["steps"])
    by_group = {t["group"]: t["fraction_above_adamw"] for t in res["table"]
                if t["arm"] == "muon-jordan" and t["step"] == last}
    lo_group = min(by_group, key=by_group.get)
    verdict = ("confirming Moonlight's finding on this model" if min(frac.values()) > 0.9
               else "so Moonlight's $>90\\%$ holds here only for some arms" if max(frac.values())
               > 0.9 else "so Moonlight's $>90\\%$ is not reproduced on this model")
    steps = [str(s) for s in res["steps"]]
    return {"EntropySteps": ", ".join(steps[:-1]) + " and " + steps[-1],
            "EntropyJordan": f"{100 * frac['muon-jordan']:.0f}",
            "EntropyPE": f"{100 * frac['muon-polar-express']:.0f}",
            "EntropyNorMuon": f"{100 * frac['normuon-polar-express']:.0f}",
            "EntropySentence": _entropy_sentence(res, frac, verdict, lo_group,
                                                 by_group[lo_group], last)}


def _entropy_sentence(res: dict, frac: dict, verdict: str, lo_group: str, lo: float,
                      last: int) -> str:
    lo_all, hi_all = 100 * min(frac.values()), 100 * max(frac.values())
    span = f"{lo_all:.0f}\\%" if lo_all == hi_all else f"{lo_all:.0f}--{hi_all:.0f}\\%"
    adamw = [t["mean_entropy"] for t in res["table"] if t["arm"] == "adamw" and t["step"] == last]
    muon = [t["mean_entropy"] for t in res["table"]
            if t["arm"] != "adamw" and t["step"] == last]
    sent = f"Over all Muon arms the fraction is {span}, {verdict}"
    if lo == 1:
        sent += ", in every group and at every checkpoint"
    else:
        sent += (f". At step {last} the lowest group for Jordan's quintic is {lo_group} "
                 f"({100 * lo:.0f}\\%)")
    return (sent + f". At step {last} the group means are {min(muon):.2f}--{max(muon):.2f} "
            f"for Muon and {min(adamw):.2f}--{max(adamw):.2f} for AdamW.")


def mismatch_numbers(res: dict) -> dict[str, str]:
    """Pretrain -> fine-tune optimizer mismatch (experiments/lm/family.py part mismatch)."""
    cell = {(t["pretrain"], t["finetune"]): t for t in res["table"]}
    name = {"adamw": "AdamW", "muon": "Muon"}
    rows = []
    for p in ("adamw", "muon"):
        cells = []
        for f in ("adamw", "muon"):
            seeds = ", ".join(f"{v:.4f}" for v in cell[p, f]["final_per_seed"])
            cells.append(f"{cell[p, f]['final_mean']:.4f} ({seeds})")
        rows.append(f"{name[p]} & " + " & ".join(cells) + " \\\\")
    parts, hurt = [], []
    for p in ("adamw", "muon"):
        same, other = cell[p, p], cell[p, "muon" if p == "adamw" else "adamw"]
        d = other["final_mean"] - same["final_mean"]
        noise = max(same["spread"], other["spread"])
        if d > noise:
            hurt.append(name[p])
        parts.append(f"after {name[p]} pretraining, fine-tuning with {name[other['finetune']]} "
                     f"instead of {name[p]} changes the held-out loss by ${d:+.4f}$ "
                     + ("(within the seed spread)" if abs(d) <= noise else
                        f"(seed spread ${noise:.4f}$)"))
    joined = "; ".join(parts)
    sent = joined[0].upper() + joined[1:] + ". "
    if hurt:
        sent += ("As in Moonlight's Table 6, switching optimizers hurts after "
                 + " and after ".join(hurt) + " pretraining. ")
    else:
        sent += ("Unlike Moonlight's Table 6, where the matched pairs score best, switching "
                 "optimizers hurts in neither direction here. ")
    gain = [cell["adamw", f]["final_mean"] - cell["muon", f]["final_mean"]
            for f in ("adamw", "muon")]
    if min(gain) > 0:
        sent += (f"The pretraining optimizer matters more: Muon-pretrained checkpoints end "
                 f"{min(gain):.3f}--{max(gain):.3f} below AdamW-pretrained ones whichever "
                 "optimizer fine-tunes. ")
    best, second = sorted(res["table"], key=lambda t: t["final_mean"])[:2]

    def pair(t: dict) -> str:
        return f"{name[t['pretrain']]} $\\rightarrow$ {name[t['finetune']]}"

    if second["final_mean"] - best["final_mean"] <= max(best["spread"], second["spread"]):
        sent += f"The best pair, {pair(best)}, is within the seed spread of {pair(second)}."
    else:
        sent += f"The best pair is {pair(best)}."
    edge = [t for t in res["table"] if t.get("best_lr_at_grid_edge")]
    if edge:
        sent += (f" {len(edge)} of the four fine-tuning rates {'sits' if len(edge) == 1 else 'sit'}"
                 " at an edge of the extended grid.")
    return {"MismatchPre": str(res["pretrain_steps"]), "MismatchFt": str(res["finetune_steps"]),
            "MismatchHeldOut": ", ".join(w.replace("_", " ") for w in res["held_out"]),
            "MismatchRows": "\n".join(rows), "MismatchSentence": sent}


def _budget_alignment(designs: dict) -> dict[str, float]:
    """Median nuclear alignment per unit of spectral norm of each design's bf16 iterates on
    the captured matrices (Muon's step length is set by ||X||_2, not by ||X||_*)."""
    align = {}
    for d in designs["designed"] + designs["references"]:
        vals = [v["nuclear_alignment"] / v["sigma_max"] for v in d["real_matrices"].values()]
        align[d["name"]] = float(np.median(vals)) if vals else float("nan")
    return align


def budget_design_numbers(designs: dict) -> dict[str, str]:
    """Section 7, designs (experiments/lm/budget.py --parts design)."""
    d15 = next(d for d in designs["designed"] if d["matmuls"] == 15)
    small = min(designs["designed"], key=lambda d: d["matmuls"])
    big = max(designs["designed"], key=lambda d: d["matmuls"])
    sent = (f"the smallest budget, {small['matmuls']} products, already covers "
            f"$\\ell = {sci(small['lower'], 1)}$ (degree {small['degree']} $\\times$ "
            f"{small['steps']}); {big['matmuls']} products cover $\\ell = {sci(big['lower'], 1)}$.")
    align = _budget_alignment(designs)
    rows = [f"\\texttt{{{d['name']}}} & {d['matmuls']} & {d['degree']}$\\times${d['steps']} & "
            f"${sci(d['lower'], 1)}$ & [{d['band'][0]:.2f}, {d['band'][1]:.2f}] & "
            f"{align[d['name']]:.3f} \\\\" for d in designs["designed"]]
    shared = d15["from_1e-3"]["shared_quintic_error"]
    return {"BudgetDelta": f"{designs['delta']:g}",
            "BudgetMinMatmuls": str(min(designs["budgets"])),
            "BudgetDesignRows": "\n".join(rows), "BudgetDesignSentence": sent,
            "BudgetAlignJordan": f"{align['jordan']:.3f}",
            "BudgetPerStepFifteen": f"{d15['from_1e-3']['per_step_error']:.3f}",
            "BudgetSharedFifteen": f"{shared:.3f}" if shared is not None else "--"}


def budget_numbers(designs: dict, summary: dict, more: dict) -> dict[str, str]:
    """Section 7, training (experiments/lm/budget.py --parts train)."""
    align = _budget_alignment(designs)
    align["muon-jordan"] = align["jordan"]
    rows = []
    for r in summary["rows"]:
        v = r["final_val_loss"]
        half = (max(v) - min(v)) / 2
        lo, hi = r["certified_band"]
        rows.append(f"\\texttt{{{r['name'].removeprefix('muon-')}}} & {r['matmuls']} & "
                    f"{r['degree']}$\\times${r['steps']} & ${sci(r['lower'], 1)}$ & "
                    f"[{lo:.2f}, {hi:.2f}] & {align.get(r['name'], float('nan')):.3f} & "
                    f"{r['final_val_mean']:.4f} $\\pm$ {half:.4f} & "
                    f"{_frac(r['steps_fraction'])} & "
                    f"{r['orthogonalization_vs_jordan']:.2f} \\\\")
    return {"BudgetRows": "\n".join(rows),
            "BudgetHeadline": tex_text(summary["headline"]["text"]) + ".",
            "BudgetBelow": budget_below_sentence(summary), "BudgetSteps": str(summary["steps"]),
            "BudgetMoreSeeds": budget_seeds_sentence(more)}


def budget_seeds_sentence(more: dict) -> str:
    """The ``seeds`` part: each design beside the headline against Jordan with every seed,
    read through the Welch 95% interval of the difference of means."""
    jordan, designs = more["table"][0], more["table"][1:]
    parts = []
    for r in designs:
        lo, hi = r["diff_ci95"]
        lean = "worse" if r["diff_to_jordan"] > 0 else "better"
        verdict = (f"{lean} than Jordan's" if not lo <= 0 <= hi else
                   f"not separated from Jordan's at 95\\%, leaning {lean}"
                   if r["welch_p"] < 0.1 else "not distinguishable from Jordan's")
        p = "p < 0.01" if r["welch_p"] < 0.01 else f"p = {r['welch_p']:.2f}"
        parts.append(f"\\texttt{{{r['name']}}} ends ${r['diff_to_jordan']:+.4f}$ from Jordan "
                     f"(95\\% Welch interval $[{lo:+.4f}, {hi:+.4f}]$, ${p}$): {verdict}")
    return (f"With {len(jordan['final_val_loss'])} seeds each (\\texttt{{--parts seeds}}), "
            + "; ".join(parts) + ".")


def budget_below_sentence(summary: dict) -> str:
    """What the designs cheaper than the headline's lose: how far the next cheaper one's mean
    is from Jordan's worst seed (and whether its seeds overlap Jordan's), and the loss gap of
    each cheaper one to Jordan's mean."""
    hi = summary["headline"]["jordan_range"][1]
    jordan = next(r for r in summary["rows"] if r["name"] == "muon-jordan")
    below = cheaper_than_headline(summary)
    if not below:
        return ""
    nxt, v = below[-1], below[-1]["final_val_loss"]
    lead = ("The next cheaper design" if summary["headline"].get("matmuls")
            else "The most expensive design")
    s = (f"{lead}, \\texttt{{{nxt['name']}}} ({nxt['matmuls']} products), has mean "
         f"{nxt['final_val_mean']:.4f}, {nxt['final_val_mean'] - hi:+.4f} from Jordan's worst "
         f"seed ({hi:.4f})")
    if min(v) <= hi:
        s += (f"; its seeds ({min(v):.4f}--{max(v):.4f}) overlap Jordan's, so three seeds "
              "neither separate it from Jordan nor place it inside.")
    else:
        s += ", and none of its seeds reaches Jordan's range."
    if len(below) > 1:
        gaps = " and ".join(f"{r['final_val_mean'] - jordan['final_val_mean']:.2f} with "
                            f"{r['matmuls']} products" for r in reversed(below[:-1]))
        s += f" Below it the mean loss exceeds Jordan's by {gaps}."
    return s


def tex_text(text: str) -> str:
    """A sentence written by an experiment, made safe for TeX."""
    return tex(text).replace("+-", "$\\pm$").replace(" x ", " $\\times$ ")


def macros(values: dict[str, str]) -> str:
    lines = ["% generated by python -m paper.numbers; do not edit"]
    for k, v in sorted(values.items()):
        if not k.isalpha():
            raise ValueError(f"macro name {k!r} must be letters only")
        lines.append(f"\\newcommand{{\\{k}}}{{{v}}}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "numbers.tex"))
    args = ap.parse_args(argv)
    res = Path(args.results)

    def get(key: str) -> object:
        return load(key, res)

    values = {**derivation_numbers(), **schedule_numbers(get("schedules")),
              **rounding_numbers(get("rounding")),
              **timing_numbers(get("timing_cpu"), get("timing_cuda")),
              **optimizer_numbers(get("step_time_cpu"), get("step_time_cuda")),
              **gradient_numbers(get("gradients")),
              **convergence_numbers(get("convergence"), get("gradients")),
              **precision_numbers(get("precision")),
              **gram_numbers(get("gram")),
              **budget_design_numbers(get("budget_designs"))}
    studies = {
        "LM": lambda: lm_family_numbers(get("lm_family"), get("adamw_stall"), get("lm_step")),
        "Entropy": lambda: entropy_numbers(get("entropy")),
        "Mismatch": lambda: mismatch_numbers(get("mismatch")),
        "Budget": lambda: budget_numbers(get("budget_designs"), get("budget"),
                                         get("budget_seeds")),
    }
    todo = pending(res)
    switches = []
    for name, compute in studies.items():
        if name in todo:
            files = ", ".join(f"\\texttt{{results/{tex(f)}}}" for f in todo[name])
            values[f"Study{name}Pending"] = (
                f"\\emph{{Pending: this study has not been run to completion yet ({files} "
                f"missing); \\texttt{{{tex(study_command(name))}}} "
                f"{'writes them' if len(todo[name]) > 1 else 'writes it'}.}}")
            print(f"pending: {name} ({', '.join(todo[name])}; {study_command(name)})",
                  file=sys.stderr)
        else:
            values.update(compute())
        switches.append(f"\\newif\\ifStudy{name}\\Study{name}{'false' if name in todo else 'true'}")
    write_text(args.out, macros(values) + "\n".join(switches) + "\n")
    return Path(args.out)


if __name__ == "__main__":
    print(main())
