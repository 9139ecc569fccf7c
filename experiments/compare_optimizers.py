"""The sweep: AdamW vs Muon under every msign method on the Shakespeare GPT.

    python -m experiments.compare_optimizers --preset cpu [--device cuda] [--out results/lm]

Phase 1 runs every learning rate with seed 0: AdamW over ``--adamw-lrs``, Muon (AdamW for
embeddings, head and norms) over ``--muon-lrs`` for each of ``--methods``.  Phase 2 reruns
the best learning rate of each optimizer/method with the other ``--seeds``.  Every run is a
resumable ``train_lm`` directory under ``--runs``; an interrupted sweep continues where it
stopped.  Writes ``OUT/summary.json`` (all runs' validation curves, the table of best final
val loss mean and spread over seeds, and the fraction of AdamW's steps each Muon needs to
reach AdamW's final val loss, on the seed-averaged curve) and ``OUT/val_vs_step.png``,
``OUT/val_vs_wall.png``.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from msign.results import provenance, write_json

from . import train_lm

DEFAULT_METHODS = "svd,cubic,jordan,you,polar-express,polar-express-bf16"


def run_dir(runs: Path, opt: str, method: str, lr: float, seed: int) -> Path:
    name = "adamw" if opt == "adamw" else f"muon-{method}"
    return runs / f"{name}-lr{lr:g}-s{seed}"


def train(args: argparse.Namespace, opt: str, method: str, lr: float, seed: int) -> dict:
    out = run_dir(Path(args.runs), opt, method, lr, seed)
    argv = ["--optimizer", opt, "--lr", str(lr), "--preset", args.preset, "--seed", str(seed),
            "--out", str(out), "--device", args.device]
    if opt == "muon":
        argv += ["--msign", method]
    if args.steps:
        argv += ["--steps", str(args.steps)]
    if args.cache:
        argv += ["--cache", args.cache]
    cfg = train_lm.main(argv)
    recs = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    return {"optimizer": opt, "msign": None if opt == "adamw" else method, "lr": lr,
            "seed": seed, "tokens_per_step": cfg["tokens_per_step"],
            "val": [[r["step"], r["val_loss"]] for r in recs if "val_loss" in r],
            "wall_s": recs[-1]["wall_s"], "_cfg": cfg}


def steps_to_reach(val: list, target: float) -> float | None:
    """Step at which the val curve first reaches ``target`` (None if never).

    Evaluations are sparse (every 100 steps in the cpu preset), so the crossing is placed
    by linear interpolation between the last evaluation above the target and the first at
    or below it, rather than rounded up to the next evaluation.
    """
    prev = None
    for s, v in val:
        if v <= target:
            if prev is None or prev[1] == v:
                return float(s)
            (s0, v0) = prev
            return s0 + (s - s0) * (v0 - target) / (v0 - v)
        prev = (s, v)
    return None


def mean_curve(runs: list[dict]) -> list[list[float]]:
    """Validation curve averaged over seeds (runs share their evaluation steps)."""
    steps = [s for s, _ in runs[0]["val"]]
    return [[s, float(np.mean([r["val"][i][1] for r in runs]))] for i, s in enumerate(steps)]


def best_single_run(runs: list[dict], optimizer: str = "adamw") -> dict | None:
    """The run of `optimizer` with the lowest final validation loss, any lr, any seed.

    The hardest target for the other optimizer: it credits this one with a lucky seed.
    """
    return min((r for r in runs if r["optimizer"] == optimizer),
               key=lambda r: r["val"][-1][1], default=None)


def analyse(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, dict[float, list]] = {}
    for r in runs:
        groups.setdefault((r["optimizer"], r["msign"]), {}).setdefault(r["lr"], []).append(r)
    table = []
    for (opt, method), by_lr in groups.items():
        # Choose the learning rate on the seeds every lr was run with (phase 1's), so a lr
        # with extra seeds is not compared on a different sample; then report all its seeds.
        common = set.intersection(*({r["seed"] for r in rs} for rs in by_lr.values()))
        best_lr = min(by_lr, key=lambda lr: np.mean([r["val"][-1][1] for r in by_lr[lr]
                                                     if r["seed"] in common]))
        finals = [r["val"][-1][1] for r in by_lr[best_lr]]
        table.append({"optimizer": opt, "msign": method, "best_lr": best_lr,
                      "final_val_mean": float(np.mean(finals)),
                      "final_val_spread": float(np.max(finals) - np.min(finals)),
                      "seeds": len(finals), "_runs": by_lr[best_lr]})
    adamw = next((t for t in table if t["optimizer"] == "adamw"), None)
    if adamw is not None:
        total = adamw["_runs"][0]["val"][-1][0]
        targets = {"fraction_of_adamw_steps": adamw["final_val_mean"],
                   "fraction_to_best_adamw_run": best_single_run(runs)["val"][-1][1]}
        for t in table:
            curve = mean_curve(t["_runs"])
            for key, target in targets.items():
                reach = steps_to_reach(curve, target)
                t[key] = None if reach is None else reach / total
    for t in table:
        del t["_runs"]
    return sorted(table, key=lambda t: t["final_val_mean"])


def plot(runs: list[dict], table: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = {(t["optimizer"], t["msign"]): t["best_lr"] for t in table}
    for key, xlabel, fname in (("step", "step", "val_vs_step.png"),
                               ("wall", "wall time [s]", "val_vs_wall.png")):
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for r in runs:
            if r["seed"] != 0 or best.get((r["optimizer"], r["msign"])) != r["lr"]:
                continue
            steps, vals = zip(*r["val"], strict=True)
            xs = steps if key == "step" else [s / steps[-1] * r["wall_s"] for s in steps]
            label = "AdamW" if r["optimizer"] == "adamw" else f"Muon {r['msign']}"
            ax.plot(xs, vals, label=f"{label} (lr {r['lr']:g})")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation loss [nats/byte]")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=120)
        plt.close(fig)


def finish(args: argparse.Namespace, runs: list[dict], meta: dict | None = None) -> dict:
    """Analyse ``runs``, write OUT/summary.json and the curves; return the summary."""
    table = analyse(runs)
    if meta is None:
        cfg = runs[0]["_cfg"]
        meta = {k: cfg[k] for k in ("corpus", "val_works", "model", "n_params")}
    summary = {"preset": args.preset, **provenance(args.device), "jobs": args.jobs,
               "threads_per_run": args.threads, **meta,
               "table": table, "runs": [{k: v for k, v in r.items() if k != "_cfg"}
                                        for r in runs]}
    out = Path(args.out)
    write_json(out / "summary.json", summary)
    plot(runs, table, out)
    return summary


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="cpu", choices=sorted(train_lm.PRESETS))
    ap.add_argument("--steps", type=int)
    ap.add_argument("--adamw-lrs", default="1e-3,3e-3,1e-2")
    ap.add_argument("--muon-lrs", default="0.01,0.03")
    ap.add_argument("--methods", default=DEFAULT_METHODS)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--runs", default="runs/lm")
    ap.add_argument("--out", default="results/lm")
    ap.add_argument("--cache")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(),
                    help="torch threads per run")
    ap.add_argument("--reanalyse", action="store_true",
                    help="recompute table and plots from OUT/summary.json; train nothing")
    args = ap.parse_args(argv)
    if args.reanalyse:  # keep what the training runs recorded: corpus, machine, date, load
        old = json.loads((Path(args.out) / "summary.json").read_text())
        keep = ("corpus", "val_works", "model", "n_params", "preset", "device", "torch", "date",
                "python", "jobs", "threads_per_run")
        return report(finish(args, old["runs"], {k: old[k] for k in keep if k in old}))
    seeds = [int(s) for s in args.seeds.split(",")]
    grid = [("adamw", "-", float(lr)) for lr in args.adamw_lrs.split(",")]
    grid += [("muon", m, float(lr)) for m in args.methods.split(",")
             for lr in args.muon_lrs.split(",")]
    # Runs are independent: --jobs of them at a time, each on --threads threads, so every
    # run's wall time is measured under the same load.
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn"),
                             initializer=torch.set_num_threads,
                             initargs=(args.threads,)) as pool:
        runs = list(pool.map(train, *zip(*[(args, o, m, lr, seeds[0]) for o, m, lr in grid],
                                         strict=True)))
        summary = finish(args, runs)  # phase 1 alone is already a usable result
        # phase 2: the other seeds at each best learning rate
        todo = [(args, t["optimizer"], t["msign"] or "-", t["best_lr"], seed)
                for t in summary["table"] for seed in seeds[1:]]
        runs += list(pool.map(train, *zip(*todo, strict=True))) if todo else []
    return report(finish(args, runs))


def report(summary: dict) -> dict:
    """Print the table: best final val loss per optimizer/method and the step fractions."""
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    for t in summary["table"]:
        print(f"{t['optimizer']:<6} {t['msign'] or '':<19} lr={t['best_lr']:<6g} "
              f"val={t['final_val_mean']:.4f} ±{t['final_val_spread']:.4f} "
              f"steps/AdamW={f(t.get('fraction_of_adamw_steps'))} "
              f"steps/best-AdamW-run={f(t.get('fraction_to_best_adamw_run'))}")
    return summary


if __name__ == "__main__":
    main()
