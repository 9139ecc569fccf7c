"""How few matmuls does Muon need?  Band-designed short schedules against training quality.

    python -m experiments.lm.budget --preset cpu --jobs 2 --threads 1   # about 2 h on 2 cores

Parts (``--parts``, default all):

- ``design``: for each budget (``BUDGETS`` products per orthogonalization) the schedule
  covering the most of the spectrum at the band [1 - DELTA, 1 + DELTA]: the smallest lower
  bound l whose certified band (``msign.scalar.band``, rigorous) lies in it, over cubic,
  quintic and degree-7 per-step greedy designs, the band certified in exact arithmetic
  and each step's top designed against the bf16 noise model (``NOISE``, above every c
  measured by ``experiments/matrix/rounding_model.py``), whose upper end the band must also hold
  (``msign.scalar.noise_band``): a design may not blow up in bf16.  Beside them, from
  l = 1e-3: the best per-step and shared band at each budget, and Jordan's, You's and Su's
  five-step lists (15 products).  The
  designed schedules are run in bf16 on the captured momenta and gradients of the GPT
  (``results/gradients/cpu.npz``) to measure the band they reach on real matrices.
  -> ``results/budget/designs.json``, ``results/budget/schedules/*.json``.
- ``train``: the Shakespeare GPT with Muon under the designed schedule of each budget in
  ``TRAIN_BUDGETS``, its learning rate retuned on ``GRID`` (one step further past an edge), 3
  seeds at the best; AdamW and Muon
  jordan (15 products) are the family sweep's runs, reused (same ``--runs``).
  -> ``results/budget/summary.json`` (one row per schedule), ``loss_vs_matmuls.png``.
- ``seeds``: Jordan, the headline design and the next cheaper one at their best rates with
  ``EXTRA_SEEDS`` more seeds; each design's difference to Jordan with a Welch 95% interval.
  -> ``results/budget/more_seeds.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch

import msign
from msign import design, metrics, scalar
from msign.bench import interleaved_ratios
from msign.results import provenance, write_json

from ..common.cli import add_device, add_out
from ..common.matrices import captured
from . import compare_optimizers as co
from . import family
from .presets import PRESETS

BUDGETS = (4, 6, 9, 12, 15)
DELTA = 0.35  # a little wider than Jordan's own band, about [0.68, 1.20]
#: cu of the bf16 noise model the schedules are designed and certified against: c = 2, above
#: the largest c_sigma measured (results/rounding/cpu.json), times u = 2^-8.
NOISE = 2.0**-7
REFERENCES = ("jordan", "you-5", "su-5")
#: Budgets trained; at 15 products the reference is Jordan's list, itself a shared-quintic band
#: design, from the family sweep (band-15 is designed and certified, not trained: the whole
#: study has to fit about 3 h on 2 cores with the family sweep beside it).
TRAIN_BUDGETS = (4, 6, 9, 12)
#: Jordan's 0.02 and 0.04 tie in the family sweep (1.5497 vs 1.5501); the sweep engine adds a
#: third rate past whichever edge wins.
GRID = (0.02, 0.04)
#: Seeds of the train part: the best rate is chosen on the first.
TRAIN_SEEDS = (0, 1, 2)
#: Seeds the ``seeds`` part adds to the headline's neighbours and Jordan (three could not
#: separate band-9 from Jordan).
EXTRA_SEEDS = (3, 4, 5)


def _coverage_of(sched, delta: float) -> float | None:
    """Smallest l in [1e-6, 0.5] with the schedule's certified band within 1 +- delta
    (None if not even [0.5, 1] fits: a shared polynomial's band need not shrink with l)."""
    lo, hi = np.log(1e-6), np.log(0.5)
    b = scalar.band(sched, 0.5)
    if max(1 - b[0], b[1] - 1) > delta:
        return None
    for _ in range(30):
        m = 0.5 * (lo + hi)
        b = scalar.band(sched, float(np.exp(m)))
        if max(1 - b[0], b[1] - 1) <= delta:
            hi = m
        else:
            lo = m
    return float(np.exp(hi))


def real_band(sched, mats: dict[str, torch.Tensor]) -> dict:
    """bf16 iterations of ``sched`` on real matrices: min/max singular value reached and the
    fraction of the nuclear norm captured (1 for the exact polar factor)."""
    out = {}
    for k, G in mats.items():
        X = msign.msign(G.float(), sched, compute_dtype=torch.bfloat16)
        s = metrics.singular_values(X)
        out[k] = {"sigma_min": float(s[-1]), "sigma_max": float(s[0]),
                  "nuclear_alignment": float(metrics.nuclear_alignment(G, X))}
    return out


def part_design(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    sdir = out / "schedules"
    sdir.mkdir(parents=True, exist_ok=True)
    mats = captured(args.gradients) if args.gradients else {}
    rows = []
    for mm in BUDGETS:
        sched, rep = design.coverage(mm, DELTA, noise=NOISE, iters=args.iters)
        name = f"band-{mm}"
        sched = msign.Schedule(sched.coeffs, name=name, default_steps=rep["steps"],
                               source=sched.source + f"; coverage design at band +-{DELTA} "
                               f"(msign.design.coverage(matmuls={mm}, delta={DELTA}, "
                               f"noise={NOISE:g}))")
        path = sdir / f"{name}.json"
        sched.to_json(path)
        _, per_step = design.band_design(1e-3, mm)
        shared_err = None
        if mm % 3 == 0:
            s_sh, r_sh = design.band_design(1e-3, mm, degrees=(5,), shared=True)
            shared_err = r_sh["error"]
        rows.append({
            "name": name, "matmuls": mm, "steps": rep["steps"], "degree": rep["degree"],
            "lower": rep["lower"], "band": rep["band"], "delta": DELTA,
            "noise_band_upper": scalar.noise_band(sched, rep["lower"], NOISE)[1],
            "coeffs": [list(c) for c in sched.coeffs], "schedule_file": str(path),
            "from_1e-3": {"per_step_error": per_step["error"], "per_step_degree":
                          per_step["degree"], "shared_quintic_error": shared_err},
            "real_matrices": real_band(sched, mats)})
        print(f"{mm:>3} products: {name} degree {rep['degree']} x {rep['steps']}, covers "
              f"l = {rep['lower']:.3g} at +-{DELTA}; from 1e-3 per-step error "
              f"{per_step['error']:.3f}")
    refs = []
    for name in REFERENCES:
        s = msign.get_schedule(name)
        refs.append({"name": name, "matmuls": s.matmuls(), "steps": s.resolve_steps(None),
                     "degree": s.degree, "band_from_1e-3": list(scalar.band(s, 1e-3)),
                     "lower_at_delta": _coverage_of(s, DELTA),
                     "noise_band_upper": scalar.noise_band(s, 1e-3, NOISE)[1],
                     "real_matrices": real_band(s, mats)})
        cov = refs[-1]["lower_at_delta"]
        print(f"{name}: {s.matmuls()} products, covers l = "
              f"{'-' if cov is None else f'{cov:.3g}'} at +-{DELTA}")
    res = {**provenance(), "delta": DELTA, "noise_cu": NOISE, "budgets": list(BUDGETS),
           "designed": rows, "references": refs}
    write_json(out / "designs.json", res)
    return res


def orthogonalization_times(methods: list, repeat: int = 15) -> tuple[list[float], list[float]]:
    """Seconds per Muon orthogonalization of the cpu GPT's hidden matrices (bf16, one thread
    as in the sweep), the msign cost of one optimizer step, for each method, and its ratio to
    the first: timed in interleaved rounds so that a shared CPU's drifting load cancels."""
    cfg = PRESETS["cpu"]["model"]
    d = cfg.d_model
    g = torch.Generator().manual_seed(0)
    mats = [torch.randn(s, generator=g) for s in [(3 * d, d), (d, d), (4 * d, d), (d, 4 * d)]
            for _ in range(cfg.layers)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return interleaved_ratios(
            [lambda m=m: [msign.msign(x, m, compute_dtype=torch.bfloat16) for x in mats]
             for m in methods], torch.device("cpu"), repeat)
    finally:
        torch.set_num_threads(threads)


def train_arms(args: argparse.Namespace, designs: dict) -> list[co.Arm]:
    """AdamW and Muon jordan as the family sweep runs them (so their runs are shared), then
    Muon under each trained budget's designed schedule."""
    common = ("--weight-decay", str(family.WD_MUON), "--adamw-weight-decay", str(family.WD_ADAMW),
              "--track-qk", "--snapshots", ",".join(map(str, family.snapshots(args))))
    fam_arms = {a.name: a for a in family.arms(args)}
    return [fam_arms["adamw"], fam_arms["muon-jordan"]] + [
        co.Arm(r["name"], "muon", GRID, ("--schedule", r["schedule_file"], *common))
        for r in designs["designed"] if r["matmuls"] in TRAIN_BUDGETS]


def part_train(args: argparse.Namespace) -> dict:
    designs = json.loads((Path(args.out) / "designs.json").read_text())
    arms = train_arms(args, designs)
    ns = argparse.Namespace(**{**vars(args), "out": args.out})
    runs, adamw_lr = co.run_arms(ns, arms, TRAIN_SEEDS)
    summary = co.finish(ns, runs, extra={"muon_adamw_lr": adamw_lr})
    table = {t["arm"]: t for t in summary["table"]}
    rows = []
    for arm in arms[1:]:
        t = table[arm.name]
        d = next((r for r in designs["designed"] if r["name"] == arm.name), None)
        sched = msign.get_schedule("jordan") if d is None else msign.Schedule.from_json(
            d["schedule_file"])
        lower = d["lower"] if d else next(r["lower_at_delta"] for r in designs["references"]
                                          if r["name"] == "jordan")
        rows.append({
            "name": arm.name, "matmuls": sched.matmuls(), "steps": sched.resolve_steps(None),
            "degree": sched.degree, "lower": lower,
            "certified_band": list(scalar.band(sched, lower)),
            "final_val_loss": t["final_val_per_seed"], "final_val_mean": t["final_val_mean"],
            "final_val_spread": t["final_val_spread"], "final_val_std": t["final_val_std"],
            "best_lr": t["best_lr"], "lrs": t["lrs"],
            "steps_fraction": t.get("fraction_of_adamw_steps"),
            "wall_per_step_s": t.get("wall_per_step_s"), "schedule": sched})
    # Jordan first: every ratio is to Jordan's time in the same round.
    rows.sort(key=lambda r: r["name"] != "muon-jordan")
    times, ratios = orthogonalization_times([r.pop("schedule") for r in rows])
    for r, s, q in zip(rows, times, ratios, strict=True):
        r["orthogonalization_s"], r["orthogonalization_vs_jordan"] = s, q
    adamw = table["adamw"]
    res = {**provenance(), "delta": DELTA, "noise_cu": NOISE, "adamw_final_val_mean":
           adamw["final_val_mean"], "adamw_final_val_per_seed": adamw["final_val_per_seed"],
           "rows": sorted(rows, key=lambda r: r["matmuls"]),
           "headline": headline(rows)}
    write_json(Path(args.out) / "summary.json", {**summary, **res})
    plot(res, Path(args.out) / "loss_vs_matmuls.png")
    print(res["headline"]["text"])
    return res


def part_seeds(args: argparse.Namespace) -> dict:
    """More seeds where three cannot decide: Jordan, the headline design and the next cheaper
    one, each at its best rate, seeds ``EXTRA_SEEDS`` beside the train part's ``TRAIN_SEEDS``; each
    design's mean difference to Jordan with a Welch 95% interval."""
    from scipy import stats

    out = Path(args.out)
    summary = json.loads((out / "summary.json").read_text())
    designs = json.loads((out / "designs.json").read_text())
    arms = {a.name: a for a in train_arms(args, designs)}
    rows = {r["name"]: r for r in summary["rows"]}
    names = ["muon-jordan", *neighbours(summary)]
    with co.Sweep(args) as sw:
        runs = sw.map([(arms[n], rows[n]["best_lr"], s, summary["muon_adamw_lr"])
                       for n in names for s in EXTRA_SEEDS])
    finals = {n: rows[n]["final_val_loss"] + [r["val"][-1][1] for r in sorted(
        (r for r in runs if r["arm"] == n), key=lambda r: r["seed"])] for n in names}
    table = []
    for n in names:
        v = finals[n]
        row = {"name": n, "matmuls": rows[n]["matmuls"], "lr": rows[n]["best_lr"],
               "seeds": [*TRAIN_SEEDS, *EXTRA_SEEDS], "final_val_loss": v,
               "mean": float(np.mean(v)), "std": float(np.std(v, ddof=1))}
        if n != "muon-jordan":
            test = stats.ttest_ind(v, finals["muon-jordan"], equal_var=False)
            ci = test.confidence_interval(0.95)
            row |= {"diff_to_jordan": row["mean"] - float(np.mean(finals["muon-jordan"])),
                    "diff_ci95": [float(ci.low), float(ci.high)],
                    "welch_p": float(test.pvalue)}
        table.append(row)
    res = {**provenance(), "table": table,
           "runs": [{k: v for k, v in r.items() if k != "_cfg"} for r in runs]}
    write_json(out / "more_seeds.json", res)
    for r in table:
        extra = ("" if "diff_ci95" not in r else
                 f"; minus Jordan {r['diff_to_jordan']:+.4f}, 95% CI [{r['diff_ci95'][0]:+.4f}, "
                 f"{r['diff_ci95'][1]:+.4f}], Welch p = {r['welch_p']:.2f}")
        print(f"{r['name']:<12} {len(r['final_val_loss'])} seeds: {r['mean']:.4f} "
              f"+- {r['std']:.4f} (std){extra}")
    return res


def cheaper_than_headline(summary: dict) -> list[dict]:
    """The trained designs with fewer products than the headline's (all of them when no
    design made the headline), cheapest first."""
    cap = summary["headline"].get("matmuls") or float("inf")
    return sorted((r for r in summary["rows"]
                   if r["name"] != "muon-jordan" and r["matmuls"] < cap),
                  key=lambda r: r["matmuls"])


def neighbours(summary: dict) -> list[str]:
    """The headline design and the next cheaper trained one (without a headline: the most
    expensive design), the pair whose order the budget question turns on."""
    best = summary["headline"]["schedule"]
    return [*([best] if best else []), *[r["name"] for r in cheaper_than_headline(summary)[-1:]]]


def headline(rows: list[dict]) -> dict:
    """The fewest matmuls whose mean final loss is within the seed spread of Jordan's 15."""
    jordan = next(r for r in rows if r["name"] == "muon-jordan")
    lo, hi = min(jordan["final_val_loss"]), max(jordan["final_val_loss"])
    ok = [r for r in rows if r["name"] != "muon-jordan" and r["final_val_mean"] <= hi]
    best = min(ok, key=lambda r: r["matmuls"], default=None)
    if best is None:
        text = "no designed schedule is within Jordan's seed spread"
    else:
        speed = best["orthogonalization_vs_jordan"]
        text = (f"{best['name']} ({best['matmuls']} products, degree {best['degree']} x "
                f"{best['steps']}) reaches {best['final_val_mean']:.4f}, within Jordan's seed "
                f"range [{lo:.4f}, {hi:.4f}] at 15 products: "
                f"{100 * (1 - best['matmuls'] / 15):.0f}% fewer products, orthogonalization "
                f"{speed:.2f} of Jordan's time on this CPU")
    return {"schedule": best and best["name"], "matmuls": best and best["matmuls"],
            "jordan_range": [lo, hi], "text": text}


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for r in res["rows"]:
        v = r["final_val_loss"]
        color = "C1" if r["name"] == "muon-jordan" else "C0"
        ax.errorbar(r["matmuls"], statistics.mean(v), yerr=[[statistics.mean(v) - min(v)],
                                                             [max(v) - statistics.mean(v)]],
                    fmt="o", color=color, capsize=3)
        ax.annotate(r["name"].replace("muon-", ""), (r["matmuls"], statistics.mean(v)),
                    fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.axhline(res["adamw_final_val_mean"], color="gray", ls="--", lw=1, label="AdamW (mean)")
    ax.set_xlabel("matrix products per orthogonalization")
    ax.set_ylabel("final validation loss (3 seeds, min-max)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--steps", type=int, help="override the preset's steps (tests)")
    ap.add_argument("--parts", default="design,train,seeds")
    ap.add_argument("--runs", default="runs/family", help="shared with experiments.lm.family, "
                                                          "whose AdamW and jordan runs it reuses")
    add_out(ap, "results/budget")
    ap.add_argument("--gradients", default="results/gradients/cpu.npz")
    ap.add_argument("--iters", type=int, default=12, help="bisection steps of the coverage")
    ap.add_argument("--cache")
    add_device(ap)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    parts = {"design": part_design, "train": part_train, "seeds": part_seeds}
    return {p: parts[p](args) for p in args.parts.split(",")}


if __name__ == "__main__":
    main()
