"""The 2026 schedules side by side, and the question: nine products at Jordan's loss?

    python -m experiments.lm.schedules2026 --jobs 2 --threads 1    # about 2 h on 2 cores

Parts (``--parts``, default all, each resumable: its runs are ``train_lm`` directories):

- ``design``: what AOL preconditioning does to the spectra the schedules start from (the
  captured GPT gradients and momenta, ``results/gradients/cpu.npz``, and the convergence
  study's matrix families), and the AOL band designs for ``BUDGETS`` products: for each, the
  lower bound l of :func:`msign.design.band_design` (``precondition="aol"``, each step's top
  designed against the bf16 noise model ``NOISE``) that puts the largest fraction of the
  captured matrices' preconditioned singular values in the band [1 - DELTA, 1 + DELTA] (exact
  arithmetic).  The same fraction, the certified band and the bf16 run on the captured
  matrices for every schedule compared (the registry's 2026 entries, Jordan, band-12, the
  designs), and the products an adaptive budget spends on them.
  -> ``results/schedules2026/designs.json``, ``results/schedules2026/schedules/*.json``.
- ``train``: the Shakespeare GPT (the budget study's cpu preset, weight decay and AdamW part)
  with Muon under every arm of :func:`arms` at ``RATE`` with ``SEEDS``; the arms named by
  ``--rate-up`` (the <= 9-product candidates) also at ``RATE_UP`` with the same seeds, each
  arm's rate chosen on its seed mean.  Each orthogonalization timed as a ratio to Jordan's
  in one interleaved run.
  -> ``results/schedules2026/summary.json``, ``loss_vs_matmuls.png``.
- ``seeds``: ``EXTRA_SEEDS`` for Jordan and the cheapest arm whose mean lies within Jordan's
  seed range, for its interval; the comparison to Jordan as Welch's 95% interval and a TOST
  paired by seed at the margin ``EQUIV_MARGIN``, fixed before any run.
  -> ``results/schedules2026/more_seeds.json``.
- ``report``: the table of the docs' results page, from those files (trains nothing).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch

import msign
from msign import adaptive, design, metrics, scalar
from msign.results import provenance, write_json

from ..common.cli import add_device, add_out
from ..common.matrices import captured, families
from ..common.stats import t_interval, tost_paired, welch
from . import budget, family
from . import compare_optimizers as co
from .presets import PRESETS

BUDGETS = (6, 9, 12)
#: The budget study's band and bf16 noise model (experiments/lm/budget.py).
DELTA, NOISE = 0.35, 2.0**-7
#: The convergence study's matrix families, at this shape.
FAMILY_SHAPE = (256, 1024)
#: Candidate lower bounds of the AOL designs.
LOWERS = tuple(float(x) for x in np.geomspace(1e-3, 0.3, 21))
#: The rate Jordan, band-9 and band-12 each chose in the budget study (0.02 over 0.04 there),
#: and one step of a sqrt(2) grid above it for the arms of at most SMALL products, which
#: may want a larger step for their smaller singular values.
RATE, RATE_UP = 0.02, 0.028
#: The question's budget: at most this many products per orthogonalization.
SMALL = 9
SEEDS = (0, 1, 2)
EXTRA_SEEDS = (3, 4, 5)
#: Equivalence margin of the paired TOST, in final validation loss: about Jordan's seed
#: spread (max - min over six seeds, 0.0094, results/budget/more_seeds.json).
EQUIV_MARGIN = 0.01
#: The adaptive arm: Jordan's quintic under a budget of its own 15 products.
ADAPTIVE_BUDGET = 15
#: The arms the question turns on (Jordan and the <= 9-product candidates), run first.
FIRST = ("muon-jordan", "aol-9", "adaptive-jordan")


def schedule_dir(args: argparse.Namespace) -> Path:
    return Path(args.out) / "schedules"


def in_band_fraction(sched: msign.Schedule, spectra: list[np.ndarray]) -> float:
    """Fraction of all the starting singular values whose image lies in 1 +- DELTA."""
    y = np.concatenate([sched.scalar_map(x) for x in spectra])
    return float(np.mean(np.abs(y - 1) <= DELTA))


def spectra_of(mats: dict[str, torch.Tensor], precondition: str | None) -> list[np.ndarray]:
    return [metrics.preconditioned_singular_values(G, precondition) for G in mats.values()]


def spectrum_summary(mats: dict[str, torch.Tensor]) -> dict:
    """Per matrix: sigma_min / sigma_max and the 10th-percentile sigma / sigma_max of X_0,
    Frobenius-normalized and AOL-preconditioned, and the typical sigma an adaptive budget
    reads (x_hat); the ratio is scale-free, so it is the conditioning the schedule faces."""
    out = {}
    for k, G in mats.items():
        row = {}
        for pre in (None, "aol"):
            x = metrics.preconditioned_singular_values(G, pre)
            tag = pre or "fro"
            row[f"{tag}_top"] = float(x[0])
            row[f"{tag}_min_over_max"] = float(x[-1] / x[0])
            row[f"{tag}_p10_over_max"] = float(np.percentile(x, 10) / x[0])
            row[f"{tag}_x_hat"] = float(np.sqrt((x**4).sum() / (x**2).sum()))
        row["aol_raises_p10_by"] = row["aol_p10_over_max"] / row["fro_p10_over_max"]
        out[k] = row
    return out


def bf16_run(sched: msign.Schedule | msign.registry.Method, mats: dict[str, torch.Tensor]
             ) -> dict:
    """bf16 iterations on real matrices: the band reached, the nuclear alignment and the
    products spent (an adaptive method's mean)."""
    out = {}
    for k, G in mats.items():
        X, info = msign.msign(G.float(), sched, compute_dtype=torch.bfloat16, return_info=True)
        s = metrics.singular_values(X)
        out[k] = {"sigma_min": float(s[-1]), "sigma_max": float(s[0]),
                  "nuclear_alignment": float(metrics.nuclear_alignment(G, X)),
                  "matmuls": float(info["matmuls"])}
    return out


def compared(args: argparse.Namespace) -> dict[str, msign.Schedule]:
    """Every schedule of the comparison, by arm name."""
    out = {"muon-jordan": msign.get_schedule("jordan"),
           "band-12": msign.get_schedule("band-12")}
    for name in ("deepseek-v4", "turbo-muon", "cans"):
        out[name] = msign.get_schedule(name)
    for mm in (6, 9):  # the budget study's Frobenius-normalized designs, for comparison
        path = Path(args.budget) / "schedules" / f"band-{mm}.json"
        if path.exists():
            out[f"band-{mm}"] = msign.Schedule.from_json(path)
    for mm in BUDGETS:
        path = schedule_dir(args) / f"aol-{mm}.json"
        if path.exists():
            out[f"aol-{mm}"] = msign.Schedule.from_json(path)
    return out


def part_design(args: argparse.Namespace) -> dict:
    mats = captured(args.gradients)
    fams = families(*FAMILY_SHAPE, seed=0)
    aol_spectra = spectra_of(mats, "aol")
    schedule_dir(args).mkdir(parents=True, exist_ok=True)
    designs = []
    for mm in BUDGETS:
        cands = []
        for lo in LOWERS:
            s, rep = design.band_design(lo, mm, noise=NOISE, precondition="aol")
            cands.append((in_band_fraction(s, aol_spectra), lo, s, rep))
            print(f"aol-{mm}: l = {lo:.3g}: in band {cands[-1][0]:.3f}, certified error "
                  f"{rep['error']:.3g}")
        frac, lo, s, rep = max(cands, key=lambda c: (c[0], c[1]))
        name = f"aol-{mm}"
        s = msign.Schedule(s.coeffs, name=name, default_steps=rep["steps"], precondition="aol",
                           source=s.source + f"; the lower bound that puts the most captured "
                           f"singular values in 1 +- {DELTA} (experiments/lm/schedules2026.py)")
        s.to_json(schedule_dir(args) / f"{name}.json")
        designs.append({"name": name, "matmuls": mm, "lower": lo, "in_band_fraction": frac,
                        "certified_error": rep["error"], "band": rep["band"],
                        "degree": rep["degree"], "steps": rep["steps"],
                        "assumes": rep["assumes"], "coeffs": [list(c) for c in s.coeffs],
                        "candidates": [{"lower": c[1], "in_band_fraction": c[0],
                                        "certified_error": c[3]["error"]} for c in cands]})
    fro_spectra = spectra_of(mats, None)
    rows = []
    for name, s in compared(args).items():
        spec = aol_spectra if s.precondition else fro_spectra
        fam_spec = spectra_of(fams, s.precondition)
        rows.append({
            "name": name, "matmuls": s.matmuls(), "precondition": s.precondition,
            "certified_band_1e-3": list(scalar.band(s, 1e-3)),
            "noise_band_upper_1e-3": scalar.noise_band(s, 1e-3, NOISE)[1],
            "in_band_captured": in_band_fraction(s, spec),
            "in_band_families": in_band_fraction(s, fam_spec),
            "bf16_captured": bf16_run(s, mats)})
        print(f"{name:<12} {s.matmuls():>2} products: in band {rows[-1]['in_band_captured']:.3f} "
              f"of the captured singular values, {rows[-1]['in_band_families']:.3f} of the "
              "families'")
    budget = {}
    for tag, pre in (("jordan", None), ("jordan+aol", "aol")):
        s = msign.get_schedule("jordan")
        s = s if pre is None else msign.Schedule(s.coeffs, name="jordan+aol", default_steps=5,
                                                 precondition=pre, source=s.source + "; AOL")
        run = bf16_run(adaptive.method(s, ADAPTIVE_BUDGET), mats)
        budget[tag] = {"mean_matmuls": float(np.mean([r["matmuls"] for r in run.values()])),
                       "below_margin": float(np.mean([adaptive.below_margin(G, pre)
                                                      for G in mats.values()])),
                       "per_matrix": run}
        print(f"adaptive {tag}: {budget[tag]['mean_matmuls']:.1f} products on average")
    res = {**provenance(), "delta": DELTA, "noise_cu": NOISE, "budgets": list(BUDGETS),
           "spectra": {"captured": spectrum_summary(mats),
                       "families": spectrum_summary(fams)}, "family_shape": list(FAMILY_SHAPE),
           "aol_designs": designs, "schedules": rows, "adaptive": budget}
    write_json(Path(args.out) / "designs.json", res)
    return res


def arms(args: argparse.Namespace) -> list[co.Arm]:
    """Jordan first (the reference), then the question's candidates, then the 2026 entries
    (the order a staged sweep trains them in)."""
    common = ("--weight-decay", str(family.WD_MUON), "--adamw-weight-decay",
              str(family.WD_ADAMW), "--track-qk")

    def aol(mm: int) -> co.Arm:
        path = schedule_dir(args) / f"aol-{mm}.json"
        return co.Arm(f"aol-{mm}", "muon", (RATE,), ("--schedule", str(path), *common))

    return [co.muon_arm("jordan", (RATE,), *common), aol(9),
            co.muon_arm("jordan", (RATE,), "--msign-budget", str(ADAPTIVE_BUDGET), *common,
                        name="adaptive-jordan"),
            co.muon_arm("band-12", (RATE,), *common, name="band-12"),
            co.muon_arm("turbo-muon", (RATE,), *common, name="turbo-muon"), aol(6),
            *[co.muon_arm(m, (RATE,), *common, name=m) for m in ("deepseek-v4", "cans")]]


def arm_matmuls(arm: co.Arm, args: argparse.Namespace) -> int:
    a = list(arm.args)
    if "--msign-budget" in a:
        return int(a[a.index("--msign-budget") + 1])
    if "--schedule" in a:
        return msign.Schedule.from_json(a[a.index("--schedule") + 1]).matmuls()
    return msign.get_schedule(a[a.index("--msign") + 1]).matmuls()


def adamw_lr(args: argparse.Namespace) -> float:
    """The AdamW part's rate of the budget study and the family sweep (embeddings, head)."""
    return json.loads((Path(args.budget) / "summary.json").read_text())["muon_adamw_lr"]


def _runs(runs: list[dict], name: str, lr: float) -> list[dict]:
    return sorted((r for r in runs if r["arm"] == name and r["lr"] == lr),
                  key=lambda r: r["seed"])


def _finals(runs: list[dict], name: str, lr: float) -> list[float]:
    return [r["val"][-1][1] for r in _runs(runs, name, lr)]


def mean_matmuls(run: dict) -> float | None:
    """Mean products per orthogonalized matrix over a run's recorded steps (diagnostics)."""
    vals = []
    for ln in (Path(run["dir"]) / "metrics.jsonl").read_text().splitlines():
        d = json.loads(ln).get("diagnostics", {})
        vals += [v for k, v in d.items() if k.startswith("matmuls/")]
    return float(np.mean(vals)) if vals else None


def recorded(path: Path, args: argparse.Namespace, arms_: list[co.Arm]
             ) -> dict[tuple[str, float, int], dict]:
    """The runs an earlier ``summary.json``/``more_seeds.json`` at ``path`` recorded for this
    preset and step count, by (arm, lr, seed), where the arm's arguments are unchanged.

    They are the sweep's checkpoint once its run directories are gone (a new machine): a
    resumed sweep trains only what is missing and reports the recorded runs as they were.
    """
    if not path.exists():
        return {}
    old = json.loads(path.read_text())
    if old.get("preset", args.preset) != args.preset or old.get("steps") != args.steps:
        return {}
    now = {a.name: list(a.args) for a in arms_}
    rows = old.get("rows", [])  # more_seeds.json has none: its arms are summary.json's
    same = set(now) - {r["name"] for r in rows if r["args"] != now.get(r["name"])}
    mm = {(r["name"], r["lr"]): r["matmuls_per_matrix"] for r in rows}
    out = {}
    for r in old["runs"]:
        if r["arm"] in same:
            r.setdefault("matmuls_per_matrix", mm.get((r["arm"], r["lr"])))
            out[r["arm"], r["lr"], r["seed"]] = r
    return out


def run_missing(args: argparse.Namespace, jobs: list, done: dict) -> list[dict]:
    """Train the jobs ``done`` does not hold (in order); the runs of all of them."""
    with co.Sweep(args) as sw:
        sw.map([j for j in jobs if (j[0].name, j[1], j[2]) not in done])
    new = {(r["arm"], r["lr"], r["seed"]): r for r in sw.runs}
    for r in new.values():
        r["matmuls_per_matrix"] = mean_matmuls(r)
    return [new.get((a.name, lr, s)) or done[a.name, lr, s] for a, lr, s, _ in jobs]


def part_train(args: argparse.Namespace) -> dict:
    all_arms = [a for a in arms(args) if not args.arms or a.name in args.arms.split(",")]
    alr = adamw_lr(args)
    first = [a for a in all_arms if a.name in FIRST]
    up = [a for a in all_arms if a.name in args.rate_up.split(",")]
    # the question's arms first, seed by seed, then the others, then the larger rate
    jobs = ([(a, RATE, s, alr) for s in SEEDS for a in first]
            + [(a, RATE, s, alr) for a in all_arms if a not in first for s in SEEDS]
            + [(a, RATE_UP, s, alr) for a in up for s in SEEDS])
    runs = run_missing(args, jobs, recorded(Path(args.out) / "summary.json", args, all_arms))
    methods = []
    for a in all_arms:
        x = list(a.args)
        s = (msign.Schedule.from_json(x[x.index("--schedule") + 1]) if "--schedule" in x
             else msign.get_schedule(x[x.index("--msign") + 1]))
        methods.append(adaptive.method(s, ADAPTIVE_BUDGET) if "--msign-budget" in x else s)
    times, ratios = budget.orthogonalization_times(methods)
    rows = []
    for a, t, q in zip(all_arms, times, ratios, strict=True):
        tried = {lr: rs for lr in (RATE, RATE_UP) if (rs := _runs(runs, a.name, lr))}
        diverged = [{"lr": lr, "seed": r["seed"], "step": r["diverged"]["step"]}
                    for lr, rs in tried.items() for r in rs if "diverged" in r]
        by_rate = {lr: [r["val"][-1][1] for r in rs] for lr, rs in tried.items()
                   if not any("diverged" in r for r in rs)}
        if not by_rate:  # every rate tried lost a seed to a non-finite gradient
            rows.append({"name": a.name, "budget_matmuls": arm_matmuls(a, args),
                         "matmuls_per_matrix": None, "lr": None, "diverged": diverged,
                         "seeds": list(SEEDS), "final_val_loss": None, "mean": None,
                         "ci95": None, "orthogonalization_s": t,
                         "orthogonalization_vs_jordan": q, "args": list(a.args)})
            continue
        best = min(by_rate, key=lambda lr: statistics.mean(by_rate[lr]))
        v = by_rate[best]
        mean, lo, hi = t_interval(v)
        mm = [r["matmuls_per_matrix"] for r in runs if r["arm"] == a.name and r["lr"] == best]
        rows.append({"name": a.name, "budget_matmuls": arm_matmuls(a, args),
                     "matmuls_per_matrix": float(np.mean(mm)) if None not in mm else None,
                     "lr": best, "by_rate_mean": {str(k): statistics.mean(x)
                                                  for k, x in by_rate.items()},
                     "seeds": list(SEEDS), "final_val_loss": v, "mean": mean, "ci95": [lo, hi],
                     "orthogonalization_s": t, "orthogonalization_vs_jordan": q,
                     "args": list(a.args), **({"diverged": diverged} if diverged else {})})
    jordan = rows[0]
    for r in rows[1:]:
        if r["mean"] is None:
            continue
        r["vs_jordan"] = welch(r["final_val_loss"], jordan["final_val_loss"])
        r["tost_vs_jordan"] = tost_paired(r["final_val_loss"], jordan["final_val_loss"],
                                          EQUIV_MARGIN)
    res = {**provenance(), "preset": args.preset, "steps": args.steps, "rate": RATE,
           "rate_up": RATE_UP,
           "small": SMALL, "adamw_lr": alr, "equiv_margin": EQUIV_MARGIN, "rows": rows,
           "headline": headline(rows),
           "runs": [{k: v for k, v in r.items() if k != "_cfg"} for r in runs]}
    write_json(Path(args.out) / "summary.json", res)
    plot(rows, Path(args.out) / "loss_vs_matmuls.png")
    print(res["headline"]["text"])
    return res


def headline(rows: list[dict]) -> dict:
    """The cheapest arm of at most SMALL products whose mean lies within Jordan's seed range."""
    jordan = rows[0]
    lo, hi = min(jordan["final_val_loss"]), max(jordan["final_val_loss"])
    ok = [r for r in rows[1:] if r["mean"] is not None
          and (r["matmuls_per_matrix"] or r["budget_matmuls"]) <= SMALL and r["mean"] <= hi]
    best = min(ok, key=lambda r: r["matmuls_per_matrix"] or r["budget_matmuls"], default=None)
    if best is None:
        text = (f"no schedule of at most {SMALL} products has its mean within Jordan's seed "
                f"range [{lo:.4f}, {hi:.4f}]")
    else:
        w = best["vs_jordan"]
        text = (f"{best['name']} ({best['matmuls_per_matrix'] or best['budget_matmuls']:.3g} "
                f"products) reaches {best['mean']:.4f}, within Jordan's seed range "
                f"[{lo:.4f}, {hi:.4f}]; minus Jordan {w['diff']:+.4f}, 95% CI "
                f"[{w['ci'][0]:+.4f}, {w['ci'][1]:+.4f}]; orthogonalization "
                f"{best['orthogonalization_vs_jordan']:.2f} of Jordan's time")
    return {"name": best and best["name"], "jordan_range": [lo, hi], "text": text}


def part_seeds(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["rows"]}
    by_name = {a.name: a for a in arms(args)}
    names = ["muon-jordan", *([summary["headline"]["name"]] if summary["headline"]["name"]
                              else [])]
    alr = summary["adamw_lr"]
    runs = run_missing(args, [(by_name[n], rows[n]["lr"], s, alr) for n in names
                              for s in EXTRA_SEEDS],
                       recorded(out / "more_seeds.json", args, [by_name[n] for n in names]))
    finals = {n: rows[n]["final_val_loss"] + _finals(runs, n, rows[n]["lr"]) for n in names}
    table = []
    for n in names:
        mean, lo, hi = t_interval(finals[n])
        row = {"name": n, "lr": rows[n]["lr"], "seeds": [*SEEDS, *EXTRA_SEEDS],
               "final_val_loss": finals[n], "mean": mean, "ci95": [lo, hi]}
        if n != "muon-jordan":
            row["vs_jordan"] = welch(finals[n], finals["muon-jordan"])
            row["tost_vs_jordan"] = tost_paired(finals[n], finals["muon-jordan"], EQUIV_MARGIN)
        table.append(row)
        print(f"{n:<16} {len(finals[n])} seeds: {mean:.4f} [{lo:.4f}, {hi:.4f}]")
    res = {**provenance(), "preset": args.preset, "steps": args.steps,
           "equiv_margin": EQUIV_MARGIN, "table": table,
           "runs": [{k: v for k, v in r.items() if k != "_cfg"} for r in runs]}
    write_json(out / "more_seeds.json", res)
    return res


def diverged_text(row: dict) -> str:
    """'diverged: non-finite gradient at step 3 (3 of 3 seeds at lr 0.02)'."""
    by_lr: dict[float, list[int]] = {}
    for d in row["diverged"]:
        by_lr.setdefault(d["lr"], []).append(d["step"])
    return "diverged: " + "; ".join(
        f"non-finite gradient at step {min(s)}" + (f"-{max(s)}" if max(s) > min(s) else "")
        + f" ({len(s)} of {len(row['seeds'])} seeds at lr {lr:g})" for lr, s in by_lr.items())


def part_report(args: argparse.Namespace) -> str:
    """The docs' table from the train (and seeds) part's files, as Markdown."""
    out = Path(args.out)
    summary = json.loads((out / "summary.json").read_text())
    lines = ["| schedule | products (as run) | lr | final val loss [95%] | minus Jordan "
             "[Welch 95%] | paired TOST p (margin " + f"{summary['equiv_margin']:g}) | "
             "orthogonalization / Jordan's |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in summary["rows"]:
        mm = r["matmuls_per_matrix"] or r["budget_matmuls"]
        if r["mean"] is None:
            lines.append(f"| {r['name']} | {mm:.3g} | - | {diverged_text(r)} | - | - | "
                         f"{r['orthogonalization_vs_jordan']:.2f} |")
            continue
        w = r.get("vs_jordan")
        diff = "-" if w is None else f"{w['diff']:+.4f} [{w['ci'][0]:+.4f}, {w['ci'][1]:+.4f}]"
        tost = "-" if "tost_vs_jordan" not in r else f"{r['tost_vs_jordan']['p']:.2f}"
        lines.append(f"| {r['name']} | {mm:.3g} | {r['lr']:g} | {r['mean']:.4f} "
                     f"[{r['ci95'][0]:.4f}, {r['ci95'][1]:.4f}] | {diff} | {tost} | "
                     f"{r['orthogonalization_vs_jordan']:.2f} |")
    rows = {r["name"]: r for r in summary["rows"]}
    best = summary["headline"]["name"]
    if best:
        lines.append(f"\northogonalization per optimizer step: Jordan "
                     f"{1e3 * rows['muon-jordan']['orthogonalization_s']:.0f} ms, {best} "
                     f"{1e3 * rows[best]['orthogonalization_s']:.0f} ms")
    runs = list(summary["runs"])
    seeds = out / "more_seeds.json"
    if seeds.exists():
        runs += json.loads(seeds.read_text())["runs"]
        for t in json.loads(seeds.read_text())["table"]:
            extra = "" if "vs_jordan" not in t else (
                f"; minus Jordan {t['vs_jordan']['diff']:+.4f} [{t['vs_jordan']['ci'][0]:+.4f},"
                f" {t['vs_jordan']['ci'][1]:+.4f}], paired TOST p = "
                f"{t['tost_vs_jordan']['p']:.3f}")
            lines.append(f"\n{t['name']}, {len(t['final_val_loss'])} seeds: {t['mean']:.4f} "
                         f"[{t['ci95'][0]:.4f}, {t['ci95'][1]:.4f}]{extra}")
    lines.append(f"\n{len(runs)} runs; their own clocks add up to "
                 f"{sum(r['wall_s'] for r in runs) / 3600:.1f} h")
    text = "\n".join(lines)
    print(text)
    return text


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for r in rows:
        if r["mean"] is None:  # diverged: no loss to draw (the table says so)
            continue
        x = r["matmuls_per_matrix"] or r["budget_matmuls"]
        ax.errorbar(x, r["mean"], yerr=[[r["mean"] - r["ci95"][0]], [r["ci95"][1] - r["mean"]]],
                    fmt="o", color="C1" if r["name"] == "muon-jordan" else "C0", capsize=3)
        ax.annotate(r["name"].replace("muon-", ""), (x, r["mean"]), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xlabel("matrix products per orthogonalization (adaptive: mean as run)")
    ax.set_ylabel(f"final validation loss ({len(SEEDS)} seeds, 95% interval)")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--steps", type=int, help="override the preset's steps (tests)")
    ap.add_argument("--parts", default="design,train,seeds")
    ap.add_argument("--runs", default="runs/schedules2026")
    add_out(ap, "results/schedules2026")
    ap.add_argument("--gradients", default="results/gradients/cpu.npz")
    ap.add_argument("--budget", default="results/budget", help="the budget study's results "
                    "(its band designs, its AdamW part's rate)")
    ap.add_argument("--rate-up", default="aol-9,aol-6",
                    help=f"arms also trained at {RATE_UP} (comma list; empty: none)")
    ap.add_argument("--arms", default="", help="train and report only these arms (comma "
                    "list, Jordan first; default: all): a long sweep in stages")
    ap.add_argument("--cache")
    add_device(ap)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    parts = {"design": part_design, "train": part_train, "seeds": part_seeds,
             "report": part_report}
    return {p: parts[p](args) for p in args.parts.split(",")}


if __name__ == "__main__":
    main()
