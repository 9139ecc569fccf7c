"""The 2026 schedules in training, and nine products at Jordan's loss (schedules2026)."""

from __future__ import annotations

from experiments.lm.schedules2026 import diverged_text

from .format import tex_text

NAMES = {"muon-jordan": "Jordan", "aol-9": "AOL + 9 products", "aol-6": "AOL + 6 products",
         "adaptive-jordan": "Jordan, adaptive budget", "turbo-muon": "Turbo-Muon",
         "cans": "CANS", "deepseek-v4": "DeepSeek-V4", "band-12": "band-12"}


def _interval(ci: list[float]) -> str:
    return f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"


def schedules2026_numbers(summary: dict, seeds: dict) -> dict[str, str]:
    """Table rows (products as run, rate, final loss with its 95% interval, the difference to
    Jordan with Welch's interval, the paired TOST p-value, orthogonalization time over
    Jordan's) and the six-seed comparison."""
    rows = []
    for r in summary["rows"]:
        mm = r["matmuls_per_matrix"] or r["budget_matmuls"]
        if r["mean"] is None:  # diverged at every rate tried
            rows.append(f"{NAMES.get(r['name'], tex_text(r['name']))} & {mm:.3g} & -- & "
                        f"\\multicolumn{{3}}{{l}}{{{tex_text(diverged_text(r))}}} & "
                        f"{r['orthogonalization_vs_jordan']:.2f} \\\\")
            continue
        diff = "--" if "vs_jordan" not in r else (f"{r['vs_jordan']['diff']:+.4f} "
                                                   + _interval(r["vs_jordan"]["ci"]))
        tost = "--" if "tost_vs_jordan" not in r else f"{r['tost_vs_jordan']['p']:.2f}"
        rows.append(f"{NAMES.get(r['name'], tex_text(r['name']))} & {mm:.3g} & {r['lr']:g} & "
                    f"{r['mean']:.4f} [{r['ci95'][0]:.4f}, {r['ci95'][1]:.4f}] & {diff} & "
                    f"{tost} & {r['orthogonalization_vs_jordan']:.2f} \\\\")
    div = [r for r in summary["rows"] if r["mean"] is None]
    rows_by = {r["name"]: r for r in summary["rows"]}
    adaptive = rows_by.get("adaptive-jordan")
    six = {t["name"]: t for t in seeds["table"]}
    out = {"SchedRows": "\n".join(rows), "SchedHeadline": tex_text(summary["headline"]["text"]),
           "SchedMargin": f"{summary['equiv_margin']:g}", "SchedRate": f"{summary['rate']:g}",
           "SchedRateUp": f"{summary['rate_up']:g}",
           "SchedSeeds": str(len(summary["rows"][0]["final_val_loss"])),
           "SchedDivergedSentence": " ".join(
               f"{NAMES.get(r['name'], tex_text(r['name']))} {tex_text(diverged_text(r))}."
               for r in div)}
    if adaptive is not None and adaptive["mean"] is not None:
        out.update(SchedAdaptiveProducts=f"{adaptive['matmuls_per_matrix']:.1f}",
                   SchedAdaptiveDiff=f"{adaptive['vs_jordan']['diff']:+.3f}")
    best = summary["headline"]["name"]
    out["SchedSixSentence"] = ""
    if best and best in six:
        t = six[best]
        tost = t["tost_vs_jordan"]
        out["SchedSixSentence"] = (
            f"With {len(t['final_val_loss'])} seeds each (\\texttt{{--parts seeds}}), "
            f"{NAMES.get(best, tex_text(best))} ends ${t['vs_jordan']['diff']:+.4f}$ from "
            f"Jordan (Welch 95\\% interval ${_interval(t['vs_jordan']['ci'])}$); the paired "
            f"TOST at the margin {summary['equiv_margin']:g} gives $p = {tost['p']:.3f}$: "
            + ("equivalent to Jordan within the margin." if tost["equivalent"]
               else "equivalence within the margin is not shown."))
    return out


def aol_numbers(designs: dict) -> dict[str, str]:
    """What AOL does to the captured matrices' starting spectra (the design part)."""
    spec = designs["spectra"]["captured"]
    late = [v for k, v in spec.items() if "step300" in k]
    return dict(AolTopFro=f"{min(v['fro_top'] for v in late):.2f}--"
               f"{max(v['fro_top'] for v in late):.2f}",
               AolTopAol=f"{min(v['aol_top'] for v in late):.2f}--"
               f"{max(v['aol_top'] for v in late):.2f}",
               AolRatioGain=f"{min(v['aol_raises_p10_by'] for v in spec.values()):.2f}--"
               f"{max(v['aol_raises_p10_by'] for v in spec.values()):.2f}")
