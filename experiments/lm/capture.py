"""Save real gradient and momentum matrices of the Shakespeare GPT for the convergence study.

    python -m experiments.lm.capture --preset cpu --steps 10,300 [--out results/gradients/cpu.npz]

Trains with Muon (polar-express) and, after the optimizer step at each listed step, stores
the gradient and the Muon momentum buffer of two hidden matrices, the first block's qkv
and the last block's fc, in float32: keys ``"{param}/step{k}/grad"`` and ``.../momentum``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from msign.optim import Muon, muon_param_groups
from msign.results import atomic_write

from ..common.cli import add_out
from . import data
from .model import GPT
from .presets import PRESETS


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--steps", default="10,300")
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache")
    add_out(ap)
    args = ap.parse_args(argv)
    p = PRESETS[args.preset]
    at = sorted(int(s) for s in args.steps.split(","))
    train, _, info = data.load(Path(args.cache) / "shakespeare" if args.cache else None)
    torch.manual_seed(args.seed)
    model = GPT(p["model"])
    opt = Muon(muon_param_groups(model), lr=args.lr, msign="polar-express")
    last = len(model.blocks) - 1
    names = ["blocks.0.qkv.weight", f"blocks.{last}.fc.weight"]
    params = dict(model.named_parameters())
    gen = np.random.default_rng(args.seed)
    arrays: dict[str, np.ndarray] = {}
    for step in tqdm(range(1, at[-1] + 1), desc="capture"):
        x, y = data.batch(train, p["batch"], p["model"].block, gen)
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step in at:
            for n in names:
                w = params[n]
                # Copies: the momentum buffer is updated in place by later steps.
                arrays[f"{n}/step{step}/grad"] = w.grad.detach().float().numpy().copy()
                arrays[f"{n}/step{step}/momentum"] = (
                    opt.state[w]["momentum_buffer"].float().numpy().copy())
    out = Path(args.out or f"results/gradients/{args.preset}.npz")
    atomic_write(out, lambda tmp: np.savez_compressed(tmp, **arrays,
                                                      corpus=np.array(info["corpus"])))
    return out


if __name__ == "__main__":
    print(main())
