"""Optimizer step time on a 12-layer GPT's matrices: msign Muon vs torch.optim.AdamW / Muon.

    python -m experiments.bench.optimizer [--device cuda] [--d-model 768] [--layers 12]

Parameters are the hidden matrices of a GPT-2-style stack (per layer: qkv 3d x d, proj
d x d, fc 4d x d, fc_proj d x 4d) in float32, gradients random and fixed.  Prints the
median step time of each optimizer and the ratios to torch.optim.AdamW and torch.optim.Muon
measured in the same run (both Muons: Jordan's coefficients, 5 steps, bf16).
"""

from __future__ import annotations

import argparse

import torch
from tqdm import tqdm

from msign.bench import median_time
from msign.optim import Muon
from msign.results import provenance, write_json

from ..common.cli import add_device, add_gemm, add_out


def make_params(d: int, layers: int, device: torch.device) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(0)
    shapes = [(3 * d, d), (d, d), (4 * d, d), (d, 4 * d)] * layers
    ps = []
    for s in shapes:
        p = torch.nn.Parameter(torch.randn(s, generator=g).mul_(0.02).to(device))
        p.grad = torch.randn(s, generator=g).to(device)
        ps.append(p)
    return ps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    add_device(ap)
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=5)
    add_gemm(ap)
    add_out(ap, None)
    args = ap.parse_args()
    dev = torch.device(args.device)
    ps = make_params(args.d_model, args.layers, dev)
    opts = {
        "torch.optim.AdamW": torch.optim.AdamW(ps, lr=1e-3),
        "torch.optim.Muon": torch.optim.Muon(ps, lr=0.02, adjust_lr_fn="original"),
        **{f"msign Muon {m}": Muon(ps, lr=0.02, msign=m, msign_gemm=args.gemm)
           for m in ("jordan", "polar-express", "you")},
    }
    times = {name: median_time(o.step, dev, args.repeat)
             for name, o in tqdm(opts.items(), desc="optimizers")}
    res = {**provenance(dev), "d_model": args.d_model, "layers": args.layers,
           "n_matrices": len(ps), "n_params": sum(p.numel() for p in ps),
           "step_s": times,
           "ratio_to_adamw": {k: v / times["torch.optim.AdamW"] for k, v in times.items()},
           "ratio_to_torch_muon": {k: v / times["torch.optim.Muon"] for k, v in times.items()}}
    write_json(args.out or f"results/optimizer/step_time_{dev.type}.json", res)
    print(f"{res['device']}, torch {res['torch']}: {len(ps)} matrices, "
          f"{res['n_params'] / 1e6:.1f}M parameters")
    print(f"{'optimizer':<26} {'step ms':>9} {'/AdamW':>8} {'/torch Muon':>12}")
    for k, v in times.items():
        print(f"{k:<26} {1e3 * v:>9.1f} {res['ratio_to_adamw'][k]:>8.2f} "
              f"{res['ratio_to_torch_muon'][k]:>12.2f}")


if __name__ == "__main__":
    main()
