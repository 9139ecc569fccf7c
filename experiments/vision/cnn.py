"""Conv-net study: SGD-Nesterov (airbench's baseline), AdamW and Muon on a small conv net, and
the two conv learning-rate scale rules (Keller Jordan's ``muon.py`` against msign's own).

    python -m experiments.vision.cnn [--preset cpu] [--data CIFAR_DIR] [--out results/cnn]

Model: an airbench-style net (a 3x3 conv, then blocks of conv-pool-BatchNorm-GELU and
conv-BatchNorm-GELU, global max pooling, a linear head).  Arms: ``sgd`` (Nesterov 0.9, every
parameter), ``adamw`` (every parameter), and Muon on the conv filters with the head and the
BatchNorm parameters on Muon's AdamW side at the AdamW arm's tuned rate: ``muon-jordan`` and
``muon-polar-express`` (msign's scale sqrt(max(1, out/(in kh kw))) of the flattened filter),
and ``muon-jordan-kj`` (Keller Jordan's sqrt(max(1, kh/kw)), ``adjust_lr_fn="keller_jordan"``).

Protocol, so that selection noise cannot decide a comparison: each arm's rate is chosen on
the mean final test accuracy of the selection seeds, on a grid extended (x2 or /2) while the
best rate sits on an edge; the reported numbers come from other seeds (held out from the
selection) at that rate: mean test accuracy with a 95% t-interval, epochs to reach SGD's mean
final accuracy, and the time per epoch as a ratio to SGD's, measured in interleaved rounds in
this run.  The rule question is answered by the paired (same seeds: same initialization and
batch order) difference of the two jordan arms with its 95% interval.

Every run is saved as it finishes (RUNS/<arm>_lr<lr>_s<seed>.json); a rerun skips finished
runs, so the study resumes where it stopped.  Writes OUT/summary.json and OUT/accuracy.png.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from msign.bench import interleaved_ratios
from msign.optim import Muon, muon_param_groups
from msign.results import provenance, write_json

from ..common.cli import add_out
from ..common.plots import seed_intervals
from ..common.stats import t_interval
from . import data

PRESETS = {
    # CI: seconds.
    "smoke": {"epochs": 1, "widths": (12, 16, 16), "batch": 256, "select_seeds": (0,),
              "report_seeds": (1, 2), "grid_points": 2, "extensions": 0},
    # The study: 3-6 s a run on 2 cores, about 150 runs.  Eight epochs: sixteen saturate the
    # digits (every arm at 99.4-99.6%, one test image = 0.28%).
    "cpu": {"epochs": 8, "widths": (24, 32, 48), "batch": 64, "select_seeds": (0, 1, 2),
            "report_seeds": (3, 4, 5, 6, 7), "grid_points": 4, "extensions": 3},
}
GRIDS = {"sgd": (0.025, 0.05, 0.1, 0.2), "adamw": (1e-3, 2e-3, 4e-3, 8e-3),
         "muon-jordan": (0.01, 0.02, 0.04, 0.08), "muon-polar-express": (0.01, 0.02, 0.04, 0.08),
         "muon-jordan-kj": (0.01, 0.02, 0.04, 0.08)}
MUON = {"muon-jordan": ("jordan", "original"), "muon-polar-express": ("polar-express",
                                                                      "original"),
        "muon-jordan-kj": ("jordan", "keller_jordan")}
WEIGHT_DECAY = {"sgd": 5e-4, "adamw": 5e-2, "muon": 0.0}


class ConvBlock(nn.Module):
    """airbench's block: conv, 2x2 max pool, BN, GELU, conv, BN, GELU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.gelu(self.norm1(nn.functional.max_pool2d(self.conv1(x), 2)))
        return nn.functional.gelu(self.norm2(self.conv2(x)))


class Net(nn.Module):
    def __init__(self, channels: int, classes: int, widths: tuple[int, int, int]) -> None:
        super().__init__()
        w0, w1, w2 = widths
        self.stem = nn.Conv2d(channels, w0, 3, padding=1, bias=False)
        self.stem_norm = nn.BatchNorm2d(w0)
        self.blocks = nn.Sequential(ConvBlock(w0, w1), ConvBlock(w1, w2))
        self.head = nn.Linear(w2, classes, bias=False)  # a direct child named head: AdamW side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.gelu(self.stem_norm(self.stem(x)))
        x = self.blocks(x).amax(dim=(-2, -1))
        return self.head(x)


@dataclass(frozen=True)
class Run:
    arm: str
    lr: float
    seed: int
    adamw_lr: float | None = None  # Muon arms: the rate of their AdamW side

    @property
    def file(self) -> str:
        return f"{self.arm}_lr{self.lr:g}_s{self.seed}.json"


def make_optimizer(model: Net, run: Run) -> torch.optim.Optimizer:
    if run.arm == "sgd":
        return torch.optim.SGD(model.parameters(), lr=run.lr, momentum=0.9, nesterov=True,
                               weight_decay=WEIGHT_DECAY["sgd"])
    if run.arm == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=run.lr, betas=(0.9, 0.99),
                                 weight_decay=WEIGHT_DECAY["adamw"])
    method, rule = MUON[run.arm]
    return Muon(muon_param_groups(model), lr=run.lr, momentum=0.95, msign=method,
                adjust_lr_fn=rule, weight_decay=WEIGHT_DECAY["muon"],
                adamw_lr=run.adamw_lr, adamw_betas=(0.9, 0.99),
                adamw_weight_decay=WEIGHT_DECAY["adamw"])


def accuracy(model: Net, images: data.Images) -> float:
    model.eval()
    with torch.no_grad():
        acc = float((model(images.x_test).argmax(-1) == images.y_test).float().mean())
    model.train()
    return acc


def train(run: Run, images: data.Images, preset: dict) -> dict:
    """One run: test accuracy after every epoch, seconds per epoch."""
    torch.manual_seed(run.seed)
    gen = torch.Generator().manual_seed(run.seed)
    model = Net(images.x_train.shape[1], images.classes, preset["widths"])
    opt = make_optimizer(model, run)
    epochs = preset["epochs"]
    per_epoch = math.ceil(len(images.y_train) / preset["batch"])
    total, base = epochs * per_epoch, [g["lr"] for g in opt.param_groups]
    accs, step, t0 = [], 0, time.perf_counter()
    for _ in range(epochs):
        for x, y in images.batches(preset["batch"], gen):
            # airbench's triangular schedule: up over the first fifth, then down to 0
            f = min((step + 1) / (0.2 * total), (total - step) / (0.8 * total))
            for g, b in zip(opt.param_groups, base, strict=True):
                g["lr"] = b * f
            loss = nn.functional.cross_entropy(model(x), y, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        accs.append(accuracy(model, images))
    return {"arm": run.arm, "lr": run.lr, "seed": run.seed, "adamw_lr": run.adamw_lr,
            "test_acc": accs, "final": accs[-1],
            "s_per_epoch": (time.perf_counter() - t0) / epochs}


class Study:
    """Runs (resumably) and the selection rule."""

    def __init__(self, images: data.Images, preset: dict, runs_dir: Path) -> None:
        self.images, self.preset, self.dir = images, preset, runs_dir
        self.records: list[dict] = []

    def run(self, runs: list[Run], desc: str) -> list[dict]:
        out = []
        for r in tqdm(runs, desc=desc, leave=False):
            path = self.dir / r.file
            if path.exists():
                rec = json.loads(path.read_text())
            else:
                rec = train(r, self.images, self.preset)
                write_json(path, rec)
            out.append(rec)
        self.records += out
        return out

    def select(self, arm: str, adamw_lr: float | None) -> float:
        """The rate with the best mean final accuracy over the selection seeds, on the grid
        extended past an edge while the best sits there."""
        grid = list(GRIDS[arm][: self.preset["grid_points"]])
        seeds = self.preset["select_seeds"]
        for round_ in range(self.preset["extensions"] + 1):
            recs = self.run([Run(arm, lr, s, adamw_lr) for lr in grid for s in seeds],
                            f"{arm} grid")
            mean = {lr: statistics.mean(r["final"] for r in recs if r["lr"] == lr)
                    for lr in grid}
            best = max(grid, key=lambda lr: (mean[lr], -lr))
            edge = best * 2 if best == max(grid) else best / 2 if best == min(grid) else None
            if edge is None or round_ == self.preset["extensions"]:
                return best
            grid.append(edge)
        return best


def epochs_to(accs: list[float], target: float) -> float | None:
    """The (linearly interpolated) epoch at which the accuracy first reaches ``target``."""
    prev = 0.0
    for e, a in enumerate(accs, start=1):
        if a >= target:
            lo = accs[e - 2] if e > 1 else prev
            return e - 1 + (target - lo) / (a - lo) if a > lo and e > 1 else float(e)
    return None


def epoch_time_ratios(images: data.Images, preset: dict, best: dict[str, float],
                      adamw_lr: float, rounds: int) -> dict[str, float]:
    """Time of one epoch of each arm over SGD's, in interleaved rounds (one process)."""
    one = {**preset, "epochs": 1}
    arms = list(best)
    fns = [lambda a=a: train(Run(a, best[a], 0, adamw_lr if a in MUON else None), images, one)
           for a in arms]
    _, ratios = interleaved_ratios(fns, torch.device("cpu"), rounds)
    return dict(zip(arms, ratios, strict=True))


def report(study: Study, best: dict[str, float], adamw_lr: float, ratios: dict[str, float]
           ) -> dict:
    seeds = study.preset["report_seeds"]
    held = {a: study.run([Run(a, best[a], s, adamw_lr if a in MUON else None) for s in seeds],
                         f"{a} seeds") for a in best}
    target = statistics.mean(r["final"] for r in held["sgd"])
    rows = []
    for a, recs in held.items():
        finals = [r["final"] for r in recs]
        m, lo, hi = t_interval(finals)
        reach = [e for e in (epochs_to(r["test_acc"], target) for r in recs) if e is not None]
        rows.append({"arm": a, "lr": best[a], "adamw_lr": adamw_lr if a in MUON else None,
                     "test_acc_mean": m, "test_acc_ci95": [lo, hi], "finals": finals,
                     # mean over the seeds that reach SGD's mean final accuracy at all
                     "epochs_to_sgd_final": statistics.mean(reach) if reach else None,
                     "reached": len(reach), "epoch_time_vs_sgd": ratios[a]})
    kj = {r["seed"]: r["final"] for r in held["muon-jordan-kj"]}
    ours = {r["seed"]: r["final"] for r in held["muon-jordan"]}
    diff = [ours[s] - kj[s] for s in seeds]
    m, lo, hi = t_interval(diff)
    verdict = ("msign's rule trains better" if lo > 0 else "Keller Jordan's rule trains better"
               if hi < 0 else "neither rule is better at 95%")
    return {"target_acc": target, "rows": rows,
            "rule_comparison": {"msign_minus_kj_mean": m, "ci95": [lo, hi], "paired_seeds":
                                list(seeds), "verdict": verdict}}


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    rows = summary["rows"]
    seed_intervals(ax, [f"{r['arm']} (lr {r['lr']:g})" for r in rows],
                   [r["finals"] for r in rows],
                   [(r["test_acc_mean"], *r["test_acc_ci95"]) for r in rows])
    ax.set_xlabel(f"test accuracy: {len(summary['rows'][0]['finals'])} held-out seeds (grey), "
                  "mean and 95% interval")
    ax.set_title(summary["data"], fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--data", help="a CIFAR-10 python-pickle directory (default: digits)")
    ap.add_argument("--runs", default="runs/cnn", help="finished runs (resumable)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timing-rounds", type=int, default=5)
    add_out(ap, "results/cnn")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    preset = PRESETS[args.preset]
    images = data.load(args.data)
    # runs are reused only by the same configuration: its hash names their folder
    key = json.dumps([preset, images.name, GRIDS, WEIGHT_DECAY, images.shift], sort_keys=True,
                     default=str)
    runs_dir = Path(args.runs) / f"{args.preset}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"
    study = Study(images, preset, runs_dir)
    best = {"sgd": study.select("sgd", None), "adamw": study.select("adamw", None)}
    for arm in MUON:
        best[arm] = study.select(arm, best["adamw"])
    ratios = epoch_time_ratios(images, preset, best, best["adamw"], args.timing_rounds)
    summary = {**provenance("cpu"), "data": images.name, "preset": args.preset, **preset,
               "grids": GRIDS, "weight_decay": WEIGHT_DECAY, "best_lr": best,
               **report(study, best, best["adamw"], ratios),
               "runs": study.records}
    out = Path(args.out)
    write_json(out / "summary.json", summary)
    plot(summary, out / "accuracy.png")
    n = len(preset["report_seeds"])
    print(f"| arm | lr | test accuracy, mean [95% CI] | epochs to SGD's {summary['target_acc']:.4f}"
          f" (seeds reaching it) | epoch time / SGD |\n| --- | --- | --- | --- | --- |")
    for r in summary["rows"]:
        lo, hi = r["test_acc_ci95"]
        e = r["epochs_to_sgd_final"]
        reach = f"{'-' if e is None else f'{e:.1f}'} ({r['reached']}/{n})"
        print(f"| {r['arm']} | {r['lr']:g} | {r['test_acc_mean']:.4f} [{lo:.4f}, {hi:.4f}] | "
              f"{reach} | {r['epoch_time_vs_sgd']:.2f} |")
    rc = summary["rule_comparison"]
    print(f"msign's conv rule - Keller Jordan's: {rc['msign_minus_kj_mean']:+.4f} "
          f"[{rc['ci95'][0]:+.4f}, {rc['ci95'][1]:+.4f}]: {rc['verdict']}")
    return summary


if __name__ == "__main__":
    main()
