"""Section 7: how few matmuls (designs and training)."""

from __future__ import annotations

import numpy as np

from experiments.common.stats import t_interval, tost_paired
from experiments.lm import budget
from experiments.lm.budget import cheaper_than_headline
from experiments.lm.schedules2026 import EQUIV_MARGIN

from .format import _frac, sci, tex_text


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
            f"$\\ell = {sci(small['lower'], 2)}$ (degree {small['degree']} $\\times$ "
            f"{small['steps']}); {big['matmuls']} products cover $\\ell = {sci(big['lower'], 2)}$.")
    align = _budget_alignment(designs)
    rows = [f"\\texttt{{{d['name']}}} & {d['matmuls']} & {d['degree']}$\\times${d['steps']} & "
            f"${sci(d['lower'], 2)}$ & [{d['band'][0]:.2f}, {d['band'][1]:.2f}] & "
            f"{align[d['name']]:.3f} \\\\" for d in designs["designed"]]
    shared = d15["from_1e-3"]["shared_quintic_error"]
    return {"BudgetDelta": f"{designs['delta']:g}",
            "BudgetMinMatmuls": str(min(designs["budgets"])),
            "BudgetDesignRows": "\n".join(rows), "BudgetDesignSentence": sent,
            "BudgetAlignJordan": f"{align['jordan']:.3f}",
            "BudgetPerStepFifteen": f"{d15['from_1e-3']['per_step_error']:.3f}",
            "BudgetSharedFifteen": f"{shared:.3f}" if shared is not None else "--"}


def step_saving_sentence(summary: dict, bench: dict) -> str:
    """What the headline design's orthogonalization saving is worth in a whole Muon step:
    the orthogonalization times of the budget study against the interleaved step time of
    experiments/bench/lm_step.py (both one thread)."""
    rows = {r["name"]: r for r in summary["rows"]}
    best = budget.headline(summary["rows"])["schedule"]
    if best is None:
        return ""
    saved = rows["muon-jordan"]["orthogonalization_s"] - rows[best]["orthogonalization_s"]
    step = bench["step_s"]["muon-jordan"]
    return (f"End to end that saves {100 * saved / step:.0f}\\% of a Muon step on this CPU "
            f"({saved * 1e3:.0f} ms of orthogonalization against a {step:.2f} s step of the "
            f"interleaved benchmark).")


def budget_numbers(designs: dict, summary: dict, more: dict, bench: dict) -> dict[str, str]:
    """Section 7, training (experiments/lm/budget.py --parts train)."""
    align = _budget_alignment(designs)
    align["muon-jordan"] = align["jordan"]
    rows = []
    for r in summary["rows"]:
        v = r["final_val_loss"]
        mean, lo, hi = t_interval(v)
        lo, hi = r["certified_band"]
        rows.append(f"\\texttt{{{r['name'].removeprefix('muon-')}}} & {r['matmuls']} & "
                    f"{r['degree']}$\\times${r['steps']} & ${sci(r['lower'], 2)}$ & "
                    f"[{lo:.2f}, {hi:.2f}] & {align.get(r['name'], float('nan')):.3f} & "
                    f"{mean:.4f} [{lo:.4f}, {hi:.4f}] & "
                    f"{_frac(r['steps_fraction'])} & "
                    f"{r['orthogonalization_vs_jordan']:.2f} \\\\")
    return {"BudgetRows": "\n".join(rows),
            # the sentence from the rows (the stored text predates its wording)
            "BudgetHeadline": tex_text(budget.headline(summary["rows"])["text"]) + ". "
                              + step_saving_sentence(summary, bench),
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
    # Equivalence, paired by seed, at the margin the 2026-schedules study fixed before its
    # runs; the budget study predates it, so for these data the margin is after the fact.
    tost = []
    for r in designs:
        e = tost_paired(r["final_val_loss"], jordan["final_val_loss"], EQUIV_MARGIN)
        tost.append(f"\\texttt{{{r['name']}}} $p = {e['p']:.3f}$ "
                    f"({'equivalent' if e['equivalent'] else 'equivalence not shown'})")
    return (f"With {len(jordan['final_val_loss'])} seeds each (\\texttt{{--parts seeds}}), "
            + "; ".join(parts) + ". Two one-sided paired tests (TOST) at the margin "
            + f"{EQUIV_MARGIN:g}" + " in loss, which the 2026-schedules study fixed before its "
            "runs (for these data it comes after the fact), give " + ", ".join(tost) + ".")


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
