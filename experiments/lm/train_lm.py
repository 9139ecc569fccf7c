"""Train the byte-level GPT on Shakespeare with AdamW or a Muon variant (any msign method).

    python -m experiments.lm.train_lm --optimizer muon --msign polar-express --lr 0.02 \
        --preset cpu --seed 0 --out runs/muon-pe [--normuon-beta2 0.95] [--cautious-wd] \
        [--qk-clip 100]

Writes DIR/metrics.jsonl (step, tokens, train_loss, grad_norm, val_loss at evaluations,
wall_s; with QK tracking the largest logit and the clips; for Muon, every
``--diagnostics-every`` steps, ``diagnostics``: what :mod:`msign.optim.diagnostics` records,
drawn by ``python -m experiments.lm.plot_diagnostics DIR``), DIR/config.json and DIR/ckpt.pt
(atomic; model, optimizer, data-RNG state, step, wall time); ``--snapshots`` also keeps the
model at those steps (DIR/snap_STEP.pt).  Rerunning the same command on DIR resumes from the
checkpoint and continues exactly as the uninterrupted run would; a different command on the
same DIR, or an unreadable checkpoint, is refused with what differs.  Linear warm-up, cosine
decay to 10% of the peak, gradient-norm clipping at 1 (nanoGPT's), for every optimizer.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from msign import Schedule
from msign.optim import Muon, muon_param_groups, qk_clip
from msign.results import atomic_write, write_text

from ..common.cli import add_device, add_gemm
from . import data
from .model import GPT
from .presets import PRESETS

# What a run is: a checkpoint may only be continued by a command that agrees on all of these.
IDENTITY = ("optimizer", "msign", "schedule", "lr", "adamw_lr", "weight_decay",
            "adamw_weight_decay", "adamw_beta2", "normuon_beta2", "cautious_wd", "qk_clip",
            "grad_clip", "warmup", "preset", "steps", "seed", "data", "init_from", "gemm",
            "msign_budget")


def lr_at(step: int, total: int, warmup: int) -> float:
    """Multiplier of the peak learning rate: linear warm-up, cosine decay to 0.1."""
    if step < warmup:
        return (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))


def make_optimizer(model: GPT, args: argparse.Namespace) -> torch.optim.Optimizer:
    if args.optimizer == "adamw":
        beta2 = 0.95 if args.adamw_beta2 is None else args.adamw_beta2
        return torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, beta2),
                                 weight_decay=args.weight_decay)
    awd = args.weight_decay if args.adamw_weight_decay is None else args.adamw_weight_decay
    method = Schedule.from_json(args.schedule) if args.schedule else args.msign
    return Muon(muon_param_groups(model), lr=args.lr, msign=method,
                weight_decay=args.weight_decay, adamw_lr=args.adamw_lr,
                adamw_weight_decay=awd, msign_gemm=args.gemm,
                normuon_beta2=args.normuon_beta2, cautious_weight_decay=args.cautious_wd,
                msign_budget=args.msign_budget)


@torch.no_grad()
def evaluate(model: GPT, batches: list, device: torch.device) -> float:
    model.eval()
    losses = [model(x.to(device), y.to(device)).item() for x, y in batches]
    model.train()
    return float(np.mean(losses))


def save_atomic(path: Path, obj: dict) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, weights_only=False)
    except Exception as e:  # torch raises several kinds for a truncated or corrupt zip
        raise SystemExit(f"{path} is unreadable ({type(e).__name__}: {e}); it is truncated or "
                         f"corrupt. Delete it to restart the run in {path.parent} from step 0."
                         ) from None


def check_resumable(out: Path, config: dict) -> None:
    """Refuse to continue a run directory whose config.json describes another run."""
    old_path = out / "config.json"
    if not (out / "ckpt.pt").exists() or not old_path.exists():
        return
    old = json.loads(old_path.read_text())
    diff = {k: (old.get(k), config.get(k)) for k in IDENTITY if old.get(k) != config.get(k)}
    if diff:
        lines = ", ".join(f"{k}: run {a!r} vs this command {b!r}" for k, (a, b) in diff.items())
        raise SystemExit(f"{out} holds a different run, which this command cannot continue "
                         f"({lines}). Use another --out, or delete {out} to start over.")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--optimizer", choices=["adamw", "muon"], required=True)
    ap.add_argument("--msign", default="polar-express", help="Muon's method name")
    ap.add_argument("--schedule", help="Muon's orthogonalizer: a Schedule JSON file "
                                       "(msign design / Schedule.to_json); overrides --msign")
    ap.add_argument("--msign-budget", type=int, help="Muon: at most this many products per "
                    "matrix, the steps chosen per matrix (msign.adaptive)")
    ap.add_argument("--lr", type=float, required=True, help="peak lr (Muon: hidden matrices)")
    ap.add_argument("--adamw-lr", type=float, default=3e-3, help="Muon's AdamW part (embeddings)")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--adamw-weight-decay", type=float,
                    help="Muon's AdamW part (default: --weight-decay)")
    ap.add_argument("--adamw-beta2", type=float,
                    help="AdamW's beta2 (--optimizer adamw; default nanoGPT's 0.95)")
    ap.add_argument("--normuon-beta2", type=float, help="NorMuon with this beta2 (Muon only)")
    ap.add_argument("--cautious-wd", action="store_true", help="cautious weight decay (Muon)")
    ap.add_argument("--qk-clip", type=float, help="MuonClip: QK-clip at this tau after each step")
    ap.add_argument("--track-qk", action="store_true",
                    help="log each step's largest attention logit (on with --qk-clip)")
    ap.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clip (0: off)")
    ap.add_argument("--warmup", type=int, help="override the preset's warm-up steps")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="smoke")
    ap.add_argument("--steps", type=int, help="override the preset's step count")
    ap.add_argument("--stop-after", type=int, help="stop (checkpointed) after this step")
    ap.add_argument("--snapshots", default="", help="steps at which to keep the model")
    ap.add_argument("--diagnostics-every", type=int, default=10,
                    help="Muon: record msign.optim.diagnostics every this many steps "
                         "(0: never)")
    ap.add_argument("--data", choices=data.SPLITS, default="all",
                    help="corpus split: all, or the mismatch study's pretrain/finetune")
    ap.add_argument("--init-from", help="start the model from this run directory's final "
                                        "model (fine-tuning; the optimizer starts fresh)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", help="corpus cache (default $MSIGN_CACHE or ~/.cache/msign)")
    add_device(ap, "cuda" if torch.cuda.is_available() else "cpu")
    add_gemm(ap)
    args = ap.parse_args(argv)
    if args.optimizer == "adamw" and (args.normuon_beta2 is not None or args.cautious_wd
                                      or args.qk_clip is not None):
        ap.error("--normuon-beta2, --cautious-wd and --qk-clip are Muon options")
    if args.optimizer == "muon" and args.adamw_beta2 is not None:
        ap.error("--adamw-beta2 is an AdamW option (Muon's AdamW part keeps its betas)")
    p = PRESETS[args.preset]
    steps = args.steps or p["steps"]
    warmup = p["warmup"] if args.warmup is None else args.warmup
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(args.device)
    track = args.track_qk or args.qk_clip is not None

    train, val, info = data.load(Path(args.cache) / "shakespeare" if args.cache else None,
                                 args.data)
    torch.manual_seed(args.seed)
    model = GPT(p["model"]).to(dev)
    model.track_qk(track)
    if args.init_from:
        model.load_state_dict(load_checkpoint(Path(args.init_from) / "ckpt.pt")["model"])
    opt = make_optimizer(model, args)
    base_lrs = [g["lr"] for g in opt.param_groups]
    gen = np.random.default_rng(args.seed)
    val_batches = [data.batch(val, p["batch"], p["model"].block, np.random.default_rng(10**6 + i))
                   for i in range(p["eval_batches"])]
    config = {**vars(args), "steps": steps, "warmup": warmup, "model": asdict(p["model"]),
              "n_params": model.n_params(), "batch": p["batch"],
              "tokens_per_step": p["batch"] * p["model"].block, **info}
    check_resumable(out, config)
    write_text(out / "config.json", json.dumps(config, indent=1))
    snaps = {int(s) for s in args.snapshots.split(",") if s}

    start, wall = 0, 0.0
    ckpt_path, metrics_path = out / "ckpt.pt", out / "metrics.jsonl"
    if ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        gen.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        start, wall = ck["step"], ck["wall_s"]
        kept = [ln for ln in metrics_path.read_text().splitlines()
                if json.loads(ln)["step"] <= start] if metrics_path.exists() else []
        write_text(metrics_path, "".join(ln + "\n" for ln in kept))
    elif metrics_path.exists():
        metrics_path.unlink()

    last = steps if args.stop_after is None else min(steps, args.stop_after)
    t0 = time.perf_counter() - wall
    bar = tqdm(range(start, last), initial=start, total=steps, desc=out.name, leave=False)
    with open(metrics_path, "a") as log:
        for step in bar:
            for g, base in zip(opt.param_groups, base_lrs, strict=True):
                g["lr"] = base * lr_at(step, steps, warmup)
            x, y = data.batch(train, p["batch"], p["model"].block, gen)
            loss = model(x.to(dev), y.to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            diag = isinstance(opt, Muon) and args.diagnostics_every > 0 and (
                (step + 1) % args.diagnostics_every == 0)
            if isinstance(opt, Muon):  # an empty dict records this step, None nothing
                opt.diagnostics = {} if diag else None
            gnorm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), args.grad_clip if args.grad_clip > 0 else float("inf"))
            opt.step()
            rec = {"step": step + 1, "tokens": (step + 1) * config["tokens_per_step"],
                   "train_loss": loss.item(), "grad_norm": float(gnorm)}
            if track:
                heads = [b.qk_max for b in model.blocks]  # this step's batch, before the step
                rec["qk_max"] = float(max(h.max() for h in heads))
                if args.qk_clip is not None:
                    rec["qk_clips"] = int(sum(
                        qk_clip(h, *model.qk_heads(b), tau=args.qk_clip,
                                record=opt.diagnostics if diag else None).sum()
                        for b, h in zip(model.blocks, heads, strict=True)))
            if diag:
                rec["diagnostics"] = {k: round(v, 6) for k, v in opt.diagnostics.items()}
            if (step + 1) % p["eval_every"] == 0 or step + 1 == steps:
                if track:  # S_max per layer and head, of this step's training batch
                    rec["qk_max_heads"] = [[round(float(v), 4) for v in h] for h in heads]
                rec["val_loss"] = evaluate(model, val_batches, dev)
                bar.set_postfix(val=f"{rec['val_loss']:.3f}")
            rec["wall_s"] = time.perf_counter() - t0
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if step + 1 in snaps:
                save_atomic(out / f"snap_{step + 1}.pt", model.state_dict())
            if "val_loss" in rec or step + 1 == last:
                save_atomic(ckpt_path, {
                    "model": model.state_dict(), "opt": opt.state_dict(),
                    "rng": gen.bit_generator.state, "torch_rng": torch.get_rng_state(),
                    "step": step + 1, "wall_s": rec["wall_s"]})
    return config


if __name__ == "__main__":
    main()
