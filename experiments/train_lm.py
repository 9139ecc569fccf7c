"""Train the byte-level GPT on Shakespeare with AdamW or Muon (any msign method); resumable.

    python -m experiments.train_lm --optimizer muon --msign polar-express --lr 0.02 \
        --preset cpu --seed 0 --out runs/muon-pe

Writes DIR/metrics.jsonl (step, tokens, train_loss, val_loss at evaluations, wall_s),
DIR/config.json and DIR/ckpt.pt (atomic; model, optimizer, data-RNG state, step, wall
time).  Rerunning the same command on DIR resumes from the checkpoint and continues exactly
as the uninterrupted run would.  Linear warm-up then cosine decay to 10% of the peak.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from msign.gemm import GEMM_MODES
from msign.optim import Muon, muon_param_groups

from . import data
from .model import GPT, GPTConfig

PRESETS = {
    "smoke": {"model": GPTConfig(block=64, layers=2, heads=2, d_model=64), "batch": 8,
              "steps": 40, "eval_every": 20, "eval_batches": 4, "warmup": 4},
    # 1.29M parameters; about 0.6 s a step on one thread, so the sweep (25 runs of 800 steps,
    # two at a time with --jobs 2 --threads 1) takes about 100 minutes on 2 cores.
    "cpu": {"model": GPTConfig(block=128, layers=4, heads=4, d_model=160), "batch": 32,
            "steps": 800, "eval_every": 100, "eval_batches": 16, "warmup": 50},
    # The scale check: 2.7M parameters, 2000 steps (8.2M tokens), about 1.3 s a step on one
    # thread; run for AdamW and one Muon at the cpu sweep's best learning rates.
    "cpu-long": {"model": GPTConfig(block=128, layers=6, heads=4, d_model=192), "batch": 32,
                 "steps": 2000, "eval_every": 200, "eval_batches": 16, "warmup": 100},
    "gpu": {"model": GPTConfig(block=512, layers=12, heads=12, d_model=768), "batch": 64,
            "steps": 5000, "eval_every": 250, "eval_batches": 40, "warmup": 250},
}


def lr_at(step: int, total: int, warmup: int) -> float:
    """Multiplier of the peak learning rate: linear warm-up, cosine decay to 0.1."""
    if step < warmup:
        return (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))


def make_optimizer(model: GPT, args: argparse.Namespace) -> torch.optim.Optimizer:
    if args.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95),
                                 weight_decay=args.weight_decay)
    return Muon(muon_param_groups(model), lr=args.lr, msign=args.msign,
                weight_decay=args.weight_decay, adamw_lr=args.adamw_lr,
                adamw_weight_decay=args.weight_decay, msign_gemm=args.gemm)


@torch.no_grad()
def evaluate(model: GPT, batches: list, device: torch.device) -> float:
    model.eval()
    losses = [model(x.to(device), y.to(device)).item() for x, y in batches]
    model.train()
    return float(np.mean(losses))


def save_checkpoint(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--optimizer", choices=["adamw", "muon"], required=True)
    ap.add_argument("--msign", default="polar-express", help="Muon's method name")
    ap.add_argument("--lr", type=float, required=True, help="peak lr (Muon: hidden matrices)")
    ap.add_argument("--adamw-lr", type=float, default=3e-3, help="Muon's AdamW part (embeddings)")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="smoke")
    ap.add_argument("--steps", type=int, help="override the preset's step count")
    ap.add_argument("--stop-after", type=int, help="stop (checkpointed) after this step")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", help="corpus cache (default $MSIGN_CACHE or ~/.cache/msign)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--gemm", choices=GEMM_MODES, default="auto",
                    help="Muon's bf16 products: native, emulated (fp32-accumulated) or auto")
    args = ap.parse_args(argv)
    p = PRESETS[args.preset]
    steps = args.steps or p["steps"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(args.device)

    train, val, info = data.load(Path(args.cache) / "shakespeare" if args.cache else None)
    torch.manual_seed(args.seed)
    model = GPT(p["model"]).to(dev)
    opt = make_optimizer(model, args)
    base_lrs = [g["lr"] for g in opt.param_groups]
    gen = np.random.default_rng(args.seed)
    val_batches = [data.batch(val, p["batch"], p["model"].block, np.random.default_rng(10**6 + i))
                   for i in range(p["eval_batches"])]
    config = {**vars(args), "steps": steps, "model": asdict(p["model"]),
              "n_params": model.n_params(), "batch": p["batch"],
              "tokens_per_step": p["batch"] * p["model"].block, **info}
    (out / "config.json").write_text(json.dumps(config, indent=1))

    start, wall = 0, 0.0
    ckpt_path, metrics_path = out / "ckpt.pt", out / "metrics.jsonl"
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        gen.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        start, wall = ck["step"], ck["wall_s"]
        kept = [ln for ln in metrics_path.read_text().splitlines()
                if json.loads(ln)["step"] <= start] if metrics_path.exists() else []
        metrics_path.write_text("".join(ln + "\n" for ln in kept))
    elif metrics_path.exists():
        metrics_path.unlink()

    last = steps if args.stop_after is None else min(steps, args.stop_after)
    t0 = time.perf_counter() - wall
    bar = tqdm(range(start, last), initial=start, total=steps, desc=out.name, leave=False)
    with open(metrics_path, "a") as log:
        for step in bar:
            for g, base in zip(opt.param_groups, base_lrs, strict=True):
                g["lr"] = base * lr_at(step, steps, p["warmup"])
            x, y = data.batch(train, p["batch"], p["model"].block, gen)
            loss = model(x.to(dev), y.to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            rec = {"step": step + 1, "tokens": (step + 1) * config["tokens_per_step"],
                   "train_loss": loss.item()}
            if (step + 1) % p["eval_every"] == 0 or step + 1 == steps:
                rec["val_loss"] = evaluate(model, val_batches, dev)
                bar.set_postfix(val=f"{rec['val_loss']:.3f}")
            rec["wall_s"] = time.perf_counter() - t0
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if "val_loss" in rec or step + 1 == last:
                save_checkpoint(ckpt_path, {
                    "model": model.state_dict(), "opt": opt.state_dict(),
                    "rng": gen.bit_generator.state, "torch_rng": torch.get_rng_state(),
                    "step": step + 1, "wall_s": rec["wall_s"]})
    return config


if __name__ == "__main__":
    main()
