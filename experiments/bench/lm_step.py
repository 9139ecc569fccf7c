"""Whole training steps of the Shakespeare GPT, AdamW against Muon variants, interleaved.

    python -m experiments.bench.lm_step [--preset cpu] [--threads 1] [--rounds 7]

The sweeps' wall clocks come from runs that shared cores, so their ratios are rough.  This
times forward, backward and optimizer step of the preset's model on random bytes (time
does not depend on the text), one arm after another in each round, so that every arm sees
the same machine state; the median over rounds of the mean step time, and each arm's ratio
to AdamW's, measured in this one run.  -> results/optimizer/lm_step_cpu.json
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from tqdm import tqdm

from msign.optim import Muon, muon_param_groups
from msign.results import provenance, write_json

from ..common.cli import add_out
from ..lm.model import GPT
from ..lm.presets import PRESETS

ARMS = {
    "adamw": None,
    "muon-jordan": {"msign": "jordan"},
    "muon-polar-express": {"msign": "polar-express"},
    "normuon-polar-express": {"msign": "polar-express", "normuon_beta2": 0.95},
}


def make(arm: str, preset: str, seed: int = 0) -> tuple[GPT, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = GPT(PRESETS[preset]["model"])
    kw = ARMS[arm]
    if kw is None:
        return model, torch.optim.AdamW(model.parameters(), lr=4e-3, betas=(0.9, 0.95),
                                        weight_decay=0.1)
    return model, Muon(muon_param_groups(model), lr=0.04, weight_decay=0.01,
                       adamw_lr=4e-3, adamw_weight_decay=0.1, **kw)


def step_time(model: GPT, opt: torch.optim.Optimizer, batches: list, steps: int) -> float:
    t0 = time.perf_counter()
    for i in range(steps):
        x, y = batches[i % len(batches)]
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return (time.perf_counter() - t0) / steps


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--threads", type=int, default=1, help="as in the sweeps (--threads 1)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per arm and round")
    add_out(ap, "results/optimizer/lm_step_cpu.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg, batch = PRESETS[args.preset]["model"], PRESETS[args.preset]["batch"]
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randint(0, cfg.vocab, (batch, cfg.block), generator=g),
                torch.randint(0, cfg.vocab, (batch, cfg.block), generator=g)) for _ in range(4)]
    built = {a: make(a, args.preset) for a in ARMS}
    for model, opt in built.values():  # warm-up: allocations, first-call dispatch, state
        step_time(model, opt, batches, 2)
    times: dict[str, list[float]] = {a: [] for a in ARMS}
    for _ in tqdm(range(args.rounds), desc="rounds"):
        for a, (model, opt) in built.items():
            times[a].append(step_time(model, opt, batches, args.steps))
    med = {a: statistics.median(v) for a, v in times.items()}
    res = {**provenance(), "preset": args.preset, "threads": args.threads,
           "rounds": args.rounds, "steps_per_round": args.steps, "step_s": med,
           "ratio_to_adamw": {a: v / med["adamw"] for a, v in med.items()},
           "per_round_s": times}
    write_json(args.out, res)
    for a, v in med.items():
        print(f"{a:<24} {1e3 * v:8.1f} ms/step   {v / med['adamw']:.2f}x AdamW")
    return res


if __name__ == "__main__":
    main()
