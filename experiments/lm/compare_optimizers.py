"""The LM sweep engine: AdamW against Muon arms (any msign method or Muon variant).

    python -m experiments.lm.compare_optimizers --preset cpu [--device cuda] [--out results/lm]

An *arm* is one optimizer configuration (``Arm``: AdamW, or Muon with a method and options)
with its learning-rate grid.  The sweep, every run a resumable ``train_lm`` directory under
``--runs`` (an interrupted sweep continues where it stopped):

1. AdamW's grid with seed 0 (and its lr one step further if the best sits at an edge);
2. every Muon arm's grid with seed 0, their AdamW part (embeddings, head, norms) at AdamW's
   best lr, again extended past an edge;
3. the other ``--seeds`` at each arm's best learning rate.

Writes ``OUT/summary.json`` (every run's validation curve with its measured wall clock, the
table: per arm the best lr, the final val loss per seed, mean, spread and standard
deviation, the fraction of AdamW's steps it needs to reach AdamW's mean final loss and the
best single AdamW run's, and the measured wall time per step) and ``OUT/val_vs_step.png``,
``OUT/val_vs_wall.png`` (seed mean with a min-max band).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from msign.results import provenance, write_json

from ..common.cli import add_device, add_out
from . import train_lm
from .presets import PRESETS

DEFAULT_METHODS = "svd,cubic,jordan,you,polar-express,polar-express-bf16"


@dataclass(frozen=True)
class Arm:
    """One optimizer configuration of the sweep and its learning-rate grid."""

    name: str
    optimizer: str  # "adamw" or "muon"
    lrs: tuple[float, ...]
    args: tuple[str, ...] = ()  # extra train_lm arguments, e.g. ("--msign", "jordan")
    meta: dict = field(default_factory=dict, compare=False)  # copied into the table row

    @property
    def msign(self) -> str | None:
        a = list(self.args)
        if "--schedule" in a:
            return Path(a[a.index("--schedule") + 1]).stem
        return a[a.index("--msign") + 1] if "--msign" in a else (
            None if self.optimizer == "adamw" else "polar-express")


def muon_arm(method: str, lrs: Iterable[float], *extra: str, name: str | None = None,
             **meta) -> Arm:
    return Arm(name or f"muon-{method}", "muon", tuple(lrs), ("--msign", method, *extra), meta)


def run_dir(runs: Path, arm: Arm, lr: float, seed: int) -> Path:
    return runs / f"{arm.name}-lr{lr:g}-s{seed}"


def train(args: argparse.Namespace, arm: Arm, lr: float, seed: int,
          adamw_lr: float | None) -> dict:
    out = run_dir(Path(args.runs), arm, lr, seed)
    argv = ["--optimizer", arm.optimizer, "--lr", str(lr), "--preset", args.preset,
            "--seed", str(seed), "--out", str(out), "--device", args.device, *arm.args,
            *getattr(args, "train_args", [])]
    if arm.optimizer == "muon" and adamw_lr is not None:
        argv += ["--adamw-lr", str(adamw_lr)]
    if args.steps:
        argv += ["--steps", str(args.steps)]
    if args.cache:
        argv += ["--cache", args.cache]
    try:
        cfg, diverged = train_lm.main(argv), None
    except FloatingPointError as e:  # a non-finite gradient: the method diverged; say so
        cfg, diverged = json.loads((out / "config.json").read_text()), str(e)
    recs = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in recs if "val_loss" in r]
    rec = {"arm": arm.name, "optimizer": arm.optimizer, "msign": arm.msign, "lr": lr,
           "seed": seed, "tokens_per_step": cfg["tokens_per_step"],
           "val": [[r["step"], r["val_loss"]] for r in evals],
           "wall": [[r["step"], r["wall_s"]] for r in evals],
           "wall_s": recs[-1]["wall_s"] if recs else 0.0,
           "grad_norm_max": max((r["grad_norm"] for r in recs), default=None),
           "dir": str(out), "_cfg": cfg}
    if diverged is not None:
        # no final loss: a study that reads r["val"][-1] fails loudly unless it handles this
        rec["diverged"] = {"step": len(recs) + 1, "error": diverged,
                           "val_before": rec["val"]}
        rec["val"], rec["wall"] = [], []
    if "qk_max" in recs[-1]:
        rec["qk_max"] = max(r["qk_max"] for r in recs)
        rec["qk_clips"] = sum(r.get("qk_clips", 0) for r in recs)
    return rec


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


def mean_curve(runs: list[dict], key: str = "val") -> list[list[float]]:
    """A curve averaged over seeds (runs share their evaluation steps)."""
    steps = [s for s, _ in runs[0][key]]
    return [[s, float(np.mean([r[key][i][1] for r in runs]))] for i, s in enumerate(steps)]


def best_single_run(runs: list[dict], optimizer: str = "adamw") -> dict | None:
    """The run of `optimizer` with the lowest final validation loss, any lr, any seed.

    The hardest target for the other optimizer: it credits this one with a lucky seed.
    """
    return min((r for r in runs if r["optimizer"] == optimizer),
               key=lambda r: r["val"][-1][1], default=None)


def arm_of(r: dict) -> str:
    """A run's arm (older records: the optimizer and method)."""
    return r.get("arm") or ("adamw" if r["optimizer"] == "adamw" else f"muon-{r['msign']}")


def best_lr(by_lr: dict[float, list[dict]]) -> float:
    """The lr with the lowest mean final loss on the seeds every lr was run with.

    A lr with extra seeds is thereby not compared on a different sample than one run once.
    """
    common = set.intersection(*({r["seed"] for r in rs} for rs in by_lr.values()))
    return min(by_lr, key=lambda lr: np.mean([r["val"][-1][1] for r in by_lr[lr]
                                              if r["seed"] in common]))


def analyse(runs: list[dict]) -> list[dict]:
    groups: dict[str, dict[float, list]] = {}
    for r in runs:
        groups.setdefault(arm_of(r), {}).setdefault(r["lr"], []).append(r)
    table = []
    for arm, by_lr in groups.items():
        lr = best_lr(by_lr)
        rs = sorted(by_lr[lr], key=lambda r: r["seed"])
        finals = [r["val"][-1][1] for r in rs]
        first = rs[0]
        row = {"arm": arm, "optimizer": first["optimizer"], "msign": first["msign"],
               "best_lr": lr, "lrs": sorted(by_lr), "final_val_per_seed": finals,
               "final_val_mean": float(np.mean(finals)),
               "final_val_spread": float(np.max(finals) - np.min(finals)),
               "final_val_std": float(np.std(finals, ddof=1)) if len(finals) > 1 else None,
               "seeds": len(finals), "best_lr_at_grid_edge": lr in (min(by_lr), max(by_lr)),
               "_runs": rs}
        if all("wall" in r for r in rs):
            row["wall_per_step_s"] = float(np.mean([r["wall_s"] / r["val"][-1][0] for r in rs]))
        table.append(row)
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
            per_seed = [steps_to_reach(r["val"], adamw["final_val_mean"]) for r in t["_runs"]]
            t["fraction_of_adamw_steps_per_seed"] = [None if s is None else s / total
                                                     for s in per_seed]
            if "wall_per_step_s" in t and "wall_per_step_s" in adamw:
                t["wall_per_step_vs_adamw"] = t["wall_per_step_s"] / adamw["wall_per_step_s"]
    for t in table:
        del t["_runs"]
    return sorted(table, key=lambda t: t["final_val_mean"])


def plot(runs: list[dict], table: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = {t["arm"]: t["best_lr"] for t in table}
    for key, xlabel, fname in (("step", "step", "val_vs_step.png"),
                               ("wall", "measured wall time [s]", "val_vs_wall.png")):
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for t in table:
            rs = [r for r in runs if arm_of(r) == t["arm"] and r["lr"] == best[t["arm"]]]
            if key == "wall" and not all("wall" in r for r in rs):
                continue
            vals = np.array([[v for _, v in r["val"]] for r in rs])
            xs = (np.array([s for s, _ in rs[0]["val"]]) if key == "step" else
                  np.mean([[w for _, w in r["wall"]] for r in rs], axis=0))
            line, = ax.plot(xs, vals.mean(0), label=f"{t['arm']} (lr {t['best_lr']:g}, "
                                                    f"{len(rs)} seeds)")
            ax.fill_between(xs, vals.min(0), vals.max(0), color=line.get_color(), alpha=0.2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation loss [nats/byte]")
        lo = min(t["final_val_mean"] for t in table)
        ax.set_ylim(lo - 0.05, lo + 0.8)
        ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=120)
        plt.close(fig)


def finish(args: argparse.Namespace, runs: list[dict], meta: dict | None = None,
           extra: dict | None = None) -> dict:
    """Analyse ``runs``, write OUT/summary.json and the curves; return the summary."""
    table = analyse(runs)
    if meta is None:
        cfg = runs[0]["_cfg"]
        meta = {k: cfg[k] for k in ("corpus", "val_works", "model", "n_params", "batch",
                                    "tokens_per_step", "steps", "warmup", "grad_clip")
                if k in cfg}
    summary = {"preset": args.preset, **provenance(args.device), "jobs": args.jobs,
               "threads_per_run": args.threads, **meta, **(extra or {}),
               "table": table, "runs": [{k: v for k, v in r.items() if k != "_cfg"}
                                        for r in runs]}
    out = Path(args.out)
    write_json(out / "summary.json", summary)
    plot(runs, table, out)
    return summary


def _extend(lrs: Sequence[float], best: float) -> float | None:
    """The next lr past an edge of the grid where the best one sits (x2 up, /2 down)."""
    if len(lrs) < 2:
        return None
    if best == max(lrs):
        return best * 2
    if best == min(lrs):
        return best / 2
    return None


class Sweep:
    """Runs arms in a process pool (``--jobs`` at a time, ``--threads`` each)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.pool = ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn"),
                                        initializer=torch.set_num_threads,
                                        initargs=(args.threads,))
        self.runs: list[dict] = []

    def __enter__(self) -> Sweep:
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown()

    def map(self, jobs: list[tuple[Arm, float, int, float | None]],
            on_done: Callable[[dict], None] | None = None) -> list[dict]:
        """Train ``jobs`` (arm, lr, seed, Muon's AdamW lr); their runs in order.  ``on_done``
        sees each run as it finishes (a long sweep records its progress there)."""
        futures = [self.pool.submit(train, self.args, *j) for j in jobs]
        if on_done is not None:
            for f in as_completed(futures):
                on_done(f.result())
        res = [f.result() for f in futures]
        self.runs += res
        return res

    def grid(self, arms: Sequence[Arm], seed: int, adamw_lr: float | None,
             extensions: int = 1) -> dict[str, float]:
        """Every arm's grid with ``seed``, extended one rate further while the best sits on an
        edge, at most ``extensions`` times; best lr per arm."""
        self.map([(a, lr, seed, adamw_lr) for a in arms for lr in a.lrs])
        best = {}
        for round_ in range(extensions + 1):
            more = []
            for a in arms:
                by_lr = {r["lr"]: [r] for r in self.runs
                         if arm_of(r) == a.name and r["seed"] == seed}
                best[a.name] = best_lr(by_lr)
                nxt = _extend(list(by_lr), best[a.name])
                if nxt is not None and round_ < extensions:
                    more.append((a, nxt, seed, adamw_lr))
            if not more:
                break
            self.map(more)
        return best

    def seeds(self, arms: Sequence[Arm], best: dict[str, float], seeds: Sequence[int],
              adamw_lr: float | None) -> None:
        self.map([(a, best[a.name], s, adamw_lr) for a in arms for s in seeds])


def run_arms(args: argparse.Namespace, arms: Sequence[Arm], seeds: Sequence[int]
             ) -> tuple[list[dict], float | None]:
    """Phases 1-3 of the module docstring; returns (runs, AdamW's best lr)."""
    adamw = [a for a in arms if a.optimizer == "adamw"]
    muon = [a for a in arms if a.optimizer == "muon"]
    with Sweep(args) as sw:
        best = sw.grid(adamw, seeds[0], None) if adamw else {}
        adamw_lr = best[adamw[0].name] if adamw else None
        best.update(sw.grid(muon, seeds[0], adamw_lr))
        sw.seeds(adamw, best, seeds[1:], None)
        sw.seeds(muon, best, seeds[1:], adamw_lr)
        return sw.runs, adamw_lr


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--steps", type=int)
    ap.add_argument("--adamw-lrs", default="1e-3,3e-3,1e-2")
    ap.add_argument("--muon-lrs", default="0.01,0.03")
    ap.add_argument("--methods", default=DEFAULT_METHODS)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--runs", default="runs/lm")
    add_out(ap, "results/lm")
    ap.add_argument("--cache")
    add_device(ap)
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(),
                    help="torch threads per run")
    ap.add_argument("--reanalyse", action="store_true",
                    help="recompute table and plots from OUT/summary.json; train nothing")
    args = ap.parse_args(argv)
    if args.reanalyse:  # keep all the training runs recorded: corpus, machine, date, options
        old = json.loads((Path(args.out) / "summary.json").read_text())
        keep = {k: v for k, v in old.items() if k not in ("table", "runs")}
        return report(finish(args, old["runs"], keep))
    seeds = [int(s) for s in args.seeds.split(",")]
    arms = [Arm("adamw", "adamw", tuple(float(x) for x in args.adamw_lrs.split(",")))]
    arms += [muon_arm(m, (float(x) for x in args.muon_lrs.split(",")))
             for m in args.methods.split(",")]
    runs, _ = run_arms(args, arms, seeds)
    return report(finish(args, runs))


def markdown(summary: dict) -> str:
    """The README's table of a sweep: one row per arm at its best lr."""
    def f(v: float | None) -> str:
        return "–" if v is None else f"{v:.2f}"

    lines = ["| arm | best lr (grid) | final val loss, mean ± half-spread | per seed "
             "| steps to AdamW's final | wall / AdamW |", "| --- | --- | --- | --- | --- | --- |"]
    for t in summary["table"]:
        grid = ", ".join(f"{x:g}" for x in t["lrs"])
        seeds = ", ".join(f"{v:.4f}" for v in t["final_val_per_seed"])
        lines.append(f"| {t['arm']} | {t['best_lr']:g} ({grid}) | {t['final_val_mean']:.4f} ± "
                     f"{t['final_val_spread'] / 2:.4f} | {seeds} | "
                     f"{f(t.get('fraction_of_adamw_steps'))} | "
                     f"{f(t.get('wall_per_step_vs_adamw'))} |")
    return "\n".join(lines)


def report(summary: dict) -> dict:
    """Print the table: best final val loss per arm and the step fractions, then as markdown."""
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    for t in summary["table"]:
        print(f"{t['arm']:<28} lr={t['best_lr']:<7g} val={t['final_val_mean']:.4f} "
              f"±{t['final_val_spread']:.4f} ({t['seeds']} seeds) "
              f"steps/AdamW={f(t.get('fraction_of_adamw_steps'))} "
              f"steps/best-AdamW-run={f(t.get('fraction_to_best_adamw_run'))}")
    print(markdown(summary))
    return summary


if __name__ == "__main__":
    main()
