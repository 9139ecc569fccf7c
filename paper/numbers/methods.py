"""Sections 2-3: the derivations, the schedule table (Table 1) and the rounding model."""

from __future__ import annotations

import math

import sympy

import msign
from experiments.matrix.schedule_table import pure_greedy
from msign import design, get_schedule
from msign.design import taylor_ns
from msign.iterate import schedule_flops
from msign.scalar import band, estimate_worst_case_error, noise_band

from .format import _label, _upper, sci, span, tex, tex_text

SCHEDULE_ROWS = ["cubic", "quintic", "jordan", "you", "you-5", "su-5", "deepseek-v4",
                 "turbo-muon", "cans", "band-12", "polar-express", "polar-express-bf16",
                 "pe-5x5-l0.001", "pe-6x5-l0.001", "pe-8x5-l0.001", "pg-8x5-s1",
                 "pg-8x5-s1.01", "pe-8x3-l0.001", "pe-5x7-l0.001"]


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
    for key, name in (("PgOne", "pg-8x5-s1"), ("PgSafe", "pg-8x5-s1.01"),
                      ("PeOne", "pe-8x5-l0.001"), ("PE", "polar-express")):
        out[f"ModelTop{key}"] = _upper(rows[name]["noise_band_bf16"][1])
    (k_lo, k_hi), (_, r_hi) = (table["test_matrix_x_range"][k] for k in ("kappa100",
                                                                         "rank1_noise"))
    out.update(KappaXmin=sci(k_lo), KappaXmax=sci(k_hi), RankXmax=f"{r_hi:.4f}")
    out["PEbfModelTwo"] = f"{noise_band('polar-express-bf16', 1e-3, 2.0**-7)[1]:.4f}"
    return out


def get_coeffs(name: str) -> list:
    """The step coefficients of a named schedule or of schedule_table's designed rows."""
    if name in msign.SCHEDULES:
        return get_schedule(name).step_coeffs()
    if name.startswith("pg-"):
        return pure_greedy(float(name.split("-s")[1])).step_coeffs()
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
            "KappaMedian": f"{res['kappa']['median']:.2f}",
            "KappaMax": f"{res['kappa']['max']:.2f}",
            "RoundInside": f"{inside}/{finite} finite runs",
            "RelPredPE": sci(models["polar-express"]["relative_model_min_sigma_median"]),
            "MeasPE": sci(models["polar-express"]["measured_min_sigma_median"]),
            "PesOneBlowUps": f"{pes1['blow_ups']}/{pes1['runs']}",
            "NoiseFloorPE": sci(hi, 1), "NoiseDevPE": sci(dev),
            "NoiseDevPEbf": sci(max(abs(v - 1) for v in noise_band("polar-express-bf16", 0.01,
                                                                   cu)))}


HELD_NAMES = {"jordan": "Jordan's quintic", "polar-express": "Polar Express",
              "gaussian": "Gaussian", "power_law": "power-law",
              "lowrank_noise": "low-rank-plus-noise"}


def rounding_heldout_numbers(res: dict) -> dict[str, str]:
    """Section 3, out of sample (experiments/matrix/rounding_heldout.py): c* fixed from the
    calibration runs, then measured on held-out shapes, sizes and GEMM paths."""
    rows = [r for r in res["rows"] if r["finite"]]
    shapes = list(dict.fromkeys(tuple(r["shape"]) for r in rows))
    worst = max(rows, key=lambda r: r["c_sigma_max"])
    above = [r for r in rows if r["c_sigma_max"] > res["c_star"]]
    return {"HeldShapes": ", ".join(f"${m}\\times{n}$" for m, n in shapes),
            "HeldRuns": str(len(rows)), "HeldCMax": f"{res['c_sigma_max_heldout']:.2f}",
            "HeldWorst": f"{HELD_NAMES.get(worst['schedule'], tex_text(worst['schedule']))} on "
                         f"the {HELD_NAMES.get(worst['family'], tex_text(worst['family']))} "
                         f"${worst['shape'][0]}\\times{worst['shape'][1]}$ matrix",
            "HeldAbove": f"{len(above)} of {len(rows)}",
            "HeldAboveShapes": ", ".join(sorted({f"${r['shape'][0]}\\times{r['shape'][1]}$"
                                                 for r in above})) or "none",
            "HeldInside": f"{res['contained']} of {len(rows)}",
            "HeldInsideDesign": f"{res['contained_at_c_design']} of {len(rows)}",
            "HeldCDesign": f"{res['c_design']:g}",
            "HeldKappaMax": f"{res['kappa_max_heldout']:.2f}",
            "HeldKappaCal": f"{res['kappa_max_calibration']:.2f}"}


def rounding_account_numbers(res: dict) -> dict[str, str]:
    """Section 3, where c comes from (experiments/matrix/rounding_account.py): each bf16
    store alone, the diagonal bound of the Gram and polynomial stores, the snapped output."""
    last = res["converged_last_step"]
    steps = [(r, i, st) for r in res["runs"] for i, st in enumerate(r["steps"])]
    r, i, worst = max(steps, key=lambda x: x[2]["measured"]["all"])
    return {"AccConfigs": str(len(res["runs"])), "AccSteps": str(res["steps"]),
            "AccBoundHolds": f"{min(res['bound_holds'].values())} of {res['steps']}",
            "AccRatioA": f"{res['ratio_median']['A']:.2f}",
            "AccRatioB": f"{res['ratio_median']['B']:.2f}",
            "AccLastPred": span(last["predicted_A_plus_B"]),
            "AccLastAB": span(last["measured_A_plus_B"]),
            "AccIndep": span(last["independent_out"]),
            "AccOut": span(last["measured_out"]),
            "AccSnapped": span([100 * x for x in last["snapped"]], ".0f", math=False)
                          + r"\,\%",
            "AccAll": span(last["measured_all"]),
            "AccMaxStep": f"{worst['measured']['all']:.2f}",
            "AccMaxWhere": f"step {i + 1} of {HELD_NAMES.get(r['schedule'], r['schedule'])} on "
                           f"the {HELD_NAMES.get(r['family'], r['family'])} "
                           f"${r['shape'][0]}\\times{r['shape'][1]}$ matrix",
            "AccMaxB": f"{worst['measured']['B']:.2f}",
            "AccMaxBound": f"{worst['predicted']['B']:.2f}"}
