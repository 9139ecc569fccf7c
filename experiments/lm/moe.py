"""A miniMind-style MoE language model, pretrained then fine-tuned (SFT), with AdamW and Muon.

    python -m experiments.lm.moe [--preset cpu] [--jobs 2] [--out results/moe]

Model: the experiments' GPT with a mixture-of-experts FFN (4 experts, top-2, no capacity limit
so no token is dropped), trained on ``loss = lm_loss + aux_coef * aux_loss`` (the Switch /
miniMind load-balancing term).  Muon trains the expert stacks per expert (the (E, out, in)
layout), the attention matrices as usual; the router, embeddings and norms go to its AdamW
side, and one arm (``muon-router``) moves the router to Muon.

Stages: pretraining on the tragedies and histories (bytes), then SFT on prompt/response pairs
from the comedies (``experiments.lm.sft``: loss on the response only), evaluated on two
held-out comedies.  Every pretrain optimizer is fine-tuned with every SFT optimizer (the 2x2
of the mismatch study).  Rates: each arm's on the mean of the selection seeds over a grid
(x2 / 2 past an edge while the best sits there); the reported seeds are the selection seeds
plus more, 95% t-intervals.  Recorded every ``log_every`` steps: LM loss, aux loss, each
layer's expert load (share of top-k assignments per expert) and its entropy.

Every run is saved as it finishes (RUNS/<stage>/<name>.json, pretrain checkpoints beside
them); a rerun skips finished runs.  Writes OUT/summary.json and OUT/moe.png.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from msign.optim import Muon, muon_param_groups
from msign.results import atomic_write, provenance, write_json

from ..common.cli import add_out
from ..common.plots import seed_intervals
from ..common.stats import t_interval
from . import data, sft
from .model import GPT, GPTConfig
from .train_lm import lr_at

PRESETS = {
    "smoke": {"model": GPTConfig(vocab=sft.VOCAB, block=32, layers=1, heads=2, d_model=16,
                                 experts=4, top_k=2), "batch": 4, "pretrain_steps": 6,
              "sft_steps": 4, "warmup": 1, "log_every": 2, "eval_batches": 2,
              "select_seeds": (0,), "more_seeds": (1,), "extensions": 0},
    # about 0.13 s a step on one thread: a pretrain run 40 s, an SFT run 20 s
    "cpu": {"model": GPTConfig(vocab=sft.VOCAB, block=128, layers=3, heads=4, d_model=96,
                               experts=4, top_k=2), "batch": 16, "pretrain_steps": 300,
            "sft_steps": 150, "warmup": 20, "log_every": 10, "eval_batches": 16,
            "select_seeds": (0, 1), "more_seeds": (2,), "extensions": 1},
}
GRIDS = {"pretrain": {"adamw": (4e-3, 8e-3), "muon": (0.02, 0.04)},
         "sft": {"adamw": (1e-3, 2e-3), "muon": (0.01, 0.02)}}


@dataclass(frozen=True)
class Run:
    stage: str  # "pretrain" or "sft"
    optimizer: str  # "adamw", "muon" or "muon-router"
    lr: float
    seed: int
    adamw_lr: float | None = None  # Muon's AdamW side
    init: str | None = None  # SFT: the pretrain run it starts from

    @property
    def name(self) -> str:
        start = f"_from-{self.init}" if self.init else ""
        side = f"_a{self.adamw_lr:g}" if self.adamw_lr else ""
        return f"{self.optimizer}_lr{self.lr:g}{side}_s{self.seed}{start}"


def make_optimizer(model: GPT, run: Run) -> torch.optim.Optimizer:
    if run.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=run.lr, betas=(0.9, 0.95),
                                 weight_decay=0.1)
    router = ["*.moe.gate.weight"] if run.optimizer == "muon-router" else []
    return Muon(muon_param_groups(model, muon=router), lr=run.lr, msign="jordan",
                weight_decay=0.01, adamw_lr=run.adamw_lr, adamw_weight_decay=0.1)


def loads(model: GPT) -> list[list[float]]:
    return [[round(float(v), 4) for v in b.moe.load] for b in model.blocks]


def entropy(load: list[float]) -> float:
    """Entropy of a layer's expert load, normalized to 1 for a perfectly balanced router."""
    p = np.asarray(load)
    return float(-(p[p > 0] * np.log(p[p > 0])).sum() / math.log(len(p)))


def train(run: Run, preset_name: str, runs_dir: str) -> dict:
    """One run of either stage; returns its record (also written to RUNS)."""
    torch.set_num_threads(1)
    p = PRESETS[preset_name]
    cfg = p["model"]
    torch.manual_seed(run.seed)
    gen = np.random.default_rng(run.seed)
    model = GPT(cfg)
    root = Path(runs_dir)
    if run.init:
        model.load_state_dict(torch.load(root / "pretrain" / f"{run.init}.pt"))
    opt = make_optimizer(model, run)
    steps = p[f"{run.stage}_steps"]
    if run.stage == "pretrain":
        train_bytes, val_bytes, _ = data.load(split="pretrain")

        def batch(g):
            x, y = data.batch(train_bytes, p["batch"], cfg.block, g)
            return x, y, None
        vgen = np.random.default_rng(1234)
        val = [data.batch(val_bytes, p["batch"], cfg.block, vgen) + (None,)
               for _ in range(p["eval_batches"])]
    else:
        files = sft.files(max_prompt=cfg.block // 2)
        pairs, vpairs = sft.load(files["train"], cfg.block), sft.load(files["val"], cfg.block)

        def batch(g):
            return sft.batch(pairs, p["batch"], cfg.block, g)
        vgen = np.random.default_rng(1234)
        val = [sft.batch(vpairs, p["batch"], cfg.block, vgen) for _ in range(p["eval_batches"])]
    base = [g["lr"] for g in opt.param_groups]
    log, t0 = [], time.perf_counter()
    for step in tqdm(range(steps), desc=run.name, leave=False, disable=True):
        for g, b in zip(opt.param_groups, base, strict=True):
            g["lr"] = b * lr_at(step, steps, p["warmup"])
        x, y, m = batch(gen)
        loss = model(x, y, m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % p["log_every"] == 0 or step + 1 == steps:
            ld = loads(model)
            log.append({"step": step + 1, "lm_loss": float(model.last_lm_loss),
                        "aux_loss": float(model.last_aux), "load": ld,
                        "load_entropy": [entropy(layer) for layer in ld]})
    model.eval()
    with torch.no_grad():  # the LM (response) loss alone, without the aux term
        vl = statistics.mean(float(model(x, y, m) is not None and model.last_lm_loss)
                             for x, y, m in val)
    rec = {**asdict(run), "name": run.name, "val_loss": vl, "log": log,
           "aux_coef": cfg.aux_coef, "dropped_tokens": 0, "wall_s": time.perf_counter() - t0}
    if run.stage == "pretrain":
        atomic_write(root / "pretrain" / f"{run.name}.pt",
                     lambda tmp: torch.save(model.state_dict(), tmp))
    write_json(root / run.stage / f"{run.name}.json", rec)
    return rec


class Study:
    def __init__(self, preset: str, runs: Path, jobs: int) -> None:
        self.preset, self.dir, self.p = preset, runs, PRESETS[preset]
        self.pool = ProcessPoolExecutor(jobs, mp_context=get_context("spawn"))
        self.records: dict[str, dict] = {}

    def run(self, runs: list[Run], desc: str) -> list[dict]:
        todo = [r for r in runs if not (self.dir / r.stage / f"{r.name}.json").exists()]
        futures = [self.pool.submit(train, r, self.preset, str(self.dir)) for r in todo]
        for f in tqdm(futures, desc=desc, leave=False):
            f.result()
        out = [json.loads((self.dir / r.stage / f"{r.name}.json").read_text()) for r in runs]
        self.records.update({f"{r['stage']}/{r['name']}": r for r in out})
        return out

    def select(self, make, grid: tuple[float, ...], desc: str) -> float:
        """Best rate by the mean val loss of the selection seeds, the grid extended past an
        edge while the best sits there."""
        lrs = list(grid)
        for round_ in range(self.p["extensions"] + 1):
            recs = self.run([make(lr, s) for lr in lrs for s in self.p["select_seeds"]], desc)
            mean = {lr: statistics.mean(r["val_loss"] for r in recs if r["lr"] == lr)
                    for lr in lrs}
            best = min(lrs, key=lambda lr: (mean[lr], lr))
            nxt = best * 2 if best == max(lrs) else best / 2 if best == min(lrs) else None
            if nxt is None or round_ == self.p["extensions"]:
                return best
            lrs.append(nxt)
        return best


def summarize(recs: list[dict]) -> dict:
    last = [r["log"][-1] for r in recs]
    return {"lr": recs[0]["lr"], "seeds": [r["seed"] for r in recs],
            "val_loss": [r["val_loss"] for r in recs],
            "val_loss_mean_ci95": list(t_interval([r["val_loss"] for r in recs])),
            "final_aux_loss": statistics.mean(x["aux_loss"] for x in last),
            "final_load_entropy": statistics.mean(e for x in last for e in x["load_entropy"]),
            "min_load_entropy": min(e for r in recs for x in r["log"]
                                    for e in x["load_entropy"]),
            "aux_trajectory": [[x["step"], statistics.mean(
                r["log"][i]["aux_loss"] for r in recs)] for i, x in enumerate(recs[0]["log"])],
            "wall_s": [r["wall_s"] for r in recs]}


def draw(axes, summary: dict) -> None:
    """The study's two panels (also the paper's Fig. ``moe``): the aux loss during
    pretraining per arm (seed mean), and each pair's SFT response loss (seeds, mean, 95%)."""
    for arm, s in summary["pretrain"].items():
        axes[0].plot(*zip(*s["aux_trajectory"], strict=True), label=arm, lw=0.9)
    axes[0].set_xlabel("pretraining step")
    axes[0].set_ylabel("aux loss (1: balanced)")
    axes[0].legend(fontsize=6)
    sft_rows = summary["sft"]
    seed_intervals(axes[1], list(sft_rows), [r["val_loss"] for r in sft_rows.values()],
                   [r["val_loss_mean_ci95"] for r in sft_rows.values()])
    axes[1].set_xlabel("SFT response loss, held out [nats/byte]")


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(7.2, 2.8))
    draw(axes, summary)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--runs", default="runs/moe")
    add_out(ap, "results/moe")
    args = ap.parse_args(argv)
    p = PRESETS[args.preset]
    runs = Path(args.runs) / args.preset
    seeds = (*p["select_seeds"], *p["more_seeds"])
    t0 = time.perf_counter()
    st = Study(args.preset, runs, args.jobs)
    try:
        g = GRIDS["pretrain"]
        best_a = st.select(lambda lr, s: Run("pretrain", "adamw", lr, s), g["adamw"],
                           "pretrain adamw")
        best_m = st.select(lambda lr, s: Run("pretrain", "muon", lr, s, best_a), g["muon"],
                           "pretrain muon")
        pre = {"adamw": [Run("pretrain", "adamw", best_a, s) for s in seeds],
               "muon": [Run("pretrain", "muon", best_m, s, best_a) for s in seeds],
               "muon-router": [Run("pretrain", "muon-router", best_m, s, best_a)
                               for s in seeds]}
        pre_recs = {k: st.run(v, f"pretrain {k}") for k, v in pre.items()}
        sft.build(max_prompt=p["model"].block // 2)  # once, before the workers read it
        sft_recs, sft_lr = {}, {}
        for src in ("adamw", "muon"):
            for opt in ("adamw", "muon"):
                init = {r.seed: r.name for r in pre[src]}

                def make(lr, s, src=src, opt=opt, init=init):
                    return Run("sft", opt, lr, s, best_a if opt == "muon" else None, init[s])
                lr = st.select(make, GRIDS["sft"][opt], f"sft {src}->{opt}")
                sft_lr[f"{src}->{opt}"] = lr
                sft_recs[f"{src}->{opt}"] = st.run([make(lr, s) for s in seeds],
                                                   f"sft {src}->{opt}")
    finally:
        st.pool.shutdown()
    summary = {**provenance("cpu"), "preset": args.preset, "model": asdict(p["model"]),
               **{k: v for k, v in p.items() if k != "model"}, "grids": GRIDS,
               "best_lr": {"pretrain_adamw": best_a, "pretrain_muon": best_m, **sft_lr},
               "pretrain": {k: summarize(v) for k, v in pre_recs.items()},
               "sft": {k: summarize(v) for k, v in sft_recs.items()},
               # this invocation's clock (short when it resumed), and the runs' own clocks,
               # which add up to the study's cost whatever was resumed
               "study_wall_s": time.perf_counter() - t0, "jobs": args.jobs,
               "runs_wall_s_sum": sum(r["wall_s"] for r in st.records.values()),
               "runs": list(st.records.values())}
    out = Path(args.out)
    write_json(out / "summary.json", summary)
    plot(summary, out / "moe.png")
    for stage in ("pretrain", "sft"):
        for k, s in summary[stage].items():
            m, lo, hi = s["val_loss_mean_ci95"]
            print(f"{stage:<8} {k:<14} lr {s['lr']:<7g} val {m:.4f} [{lo:.4f}, {hi:.4f}] "
                  f"aux {s['final_aux_loss']:.3f} load entropy {s['final_load_entropy']:.3f} "
                  f"(min {s['min_load_entropy']:.3f})")
    return summary


if __name__ == "__main__":
    main()
