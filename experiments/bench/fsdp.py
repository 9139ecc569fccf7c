"""Bytes each rank sends in a Muon step on every parallel layout, against the model.

    python -m experiments.bench.fsdp [--layouts fsdp,hsdp,tp,tp-fsdp,ep,replicated]
                                     [--worlds 2,4,8] [--out results/fsdp/comm.json]

The Muon matrices of the experiments' cpu GPT (per block: qkv (3d, d), proj (d, d), fc
(4d, d), fc2 (d, 4d)) and an expert stack (8, 4d, d) per block, as DTensors with each
layout's placements on W gloo CPU ranks, take optimizer steps on random gradients; the
record is what ``Muon.last_step_bytes_sent`` counted on each rank (the optimizer's
exchange only: forward/backward communication is the framework's), over the Muon
parameters' bytes.  Layouts and the closed-form ratio (S = the shard group's size):

- ``fsdp``: 1-D mesh, ``Shard(0)``; S = W, 2 (S - 1) / S^2 (each rank ships (S - 1)/S of
  its 1/S share to owners and gets as much back);
- ``hsdp``: (2, W/2) mesh, (Replicate, Shard(0)); S = W/2, replicas never talk;
- ``tp``: 1-D mesh, colwise ``Shard(0)`` (qkv, fc) and rowwise ``Shard(1)`` (proj, fc2); S = W;
- ``tp-fsdp``: (W/2, 2) mesh, FSDP's ``Shard(0)`` over TP's; S = W;
- ``ep``: the expert stacks alone, ``Shard(0)`` along E: whole matrices per rank, 0;
- ``replicated``: plain tensors (after DDP): owners all-gather results, (W - 1)/W.

Moonlight's distributed Muon reports 1 to 1.25x AdamW's communication (ZeRO-1 gathers).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch

from msign.optim import Muon
from msign.results import provenance, write_json

from ..common.cli import add_out
from ..common.gloo import run
from ..lm.presets import PRESETS

LAYOUTS = ("fsdp", "hsdp", "tp", "tp-fsdp", "ep", "replicated")
EXPERTS = 8


def shapes(preset: str) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, kind) of the Muon matrices: kind "col"/"row" for tensor parallel."""
    cfg = PRESETS[preset]["model"]
    d = cfg.d_model
    out = []
    for b in range(cfg.layers):
        out += [(f"{b}.qkv", (3 * d, d), "col"), (f"{b}.proj", (d, d), "row"),
                (f"{b}.fc", (4 * d, d), "col"), (f"{b}.fc2", (d, 4 * d), "row")]
    return out


def model_ratio(layout: str, world: int) -> float:
    s = world // 2 if layout == "hsdp" else world
    return {"ep": 0.0, "replicated": (world - 1) / world}.get(layout, 2 * (s - 1) / s**2)


def params(layout: str, world: int, preset: str) -> list[tuple[str, torch.nn.Parameter]]:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    g = torch.Generator().manual_seed(0)
    if layout == "ep":
        d = PRESETS[preset]["model"].d_model
        mats = [(f"{b}.experts", (EXPERTS, 4 * d, d), "stack")
                for b in range(PRESETS[preset]["model"].layers)]
    else:
        mats = shapes(preset)
    if layout == "replicated":
        return [(n, torch.nn.Parameter(torch.randn(s, generator=g))) for n, s, _ in mats]
    if layout == "hsdp":
        mesh = init_device_mesh("cpu", (2, world // 2), mesh_dim_names=("replicate", "shard"))
    elif layout == "tp-fsdp":
        mesh = init_device_mesh("cpu", (world // 2, 2), mesh_dim_names=("dp", "tp"))
    else:
        mesh = init_device_mesh("cpu", (world,))
    place = {"fsdp": lambda k: [Shard(0)], "ep": lambda k: [Shard(0)],
             "hsdp": lambda k: [Replicate(), Shard(0)],
             "tp": lambda k: [Shard(0) if k == "col" else Shard(1)],
             "tp-fsdp": lambda k: [Shard(0), Shard(0) if k == "col" else Shard(1)]}[layout]
    return [(n, torch.nn.Parameter(distribute_tensor(torch.randn(s, generator=g), mesh,
                                                     place(k), src_data_rank=None)))
            for n, s, k in mats]


def _worker(rank: int, world: int, layouts: list[str], preset: str, steps: int,
            out: str) -> None:
    from torch.distributed.tensor import distribute_tensor

    res = {}
    for layout in layouts:
        if layout in ("hsdp", "tp-fsdp") and world % 2:
            continue
        ps = params(layout, world, preset)
        opt = Muon(ps, lr=0.02, msign="jordan")
        g = torch.Generator().manual_seed(1)
        sent = []
        for _ in range(steps):
            for _, p in ps:
                full = torch.randn(p.shape, generator=g)
                p.grad = (distribute_tensor(full, p.device_mesh, p.placements, src_data_rank=None)
                          if type(p).__name__ == "DTensor" else full)
            opt.step()
            sent.append(opt.last_step_bytes_sent)
        res[layout] = {"sent": max(sent), "muon_bytes": sum(p.numel() * p.element_size()
                                                            for _, p in ps)}
    torch.save(res, os.path.join(out, f"rank{rank}.pt"))


def run_world(world: int, layouts: list[str], preset: str, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run(_worker, world, layouts, preset, steps, tmp, timeout=600)
        return {r: torch.load(os.path.join(tmp, f"rank{r}.pt")) for r in range(world)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layouts", default=",".join(LAYOUTS))
    ap.add_argument("--worlds", default="2,4,8")
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--steps", type=int, default=2)
    add_out(ap, "results/fsdp/comm.json")
    args = ap.parse_args(argv)
    layouts = args.layouts.split(",")
    unknown = set(layouts) - set(LAYOUTS)
    if unknown:
        ap.error(f"unknown layouts {sorted(unknown)}; expected some of {LAYOUTS}")
    res = {**provenance(), "preset": args.preset, "backend": "gloo", "runs": []}
    for world in (int(w) for w in args.worlds.split(",")):
        ranks = run_world(world, layouts, args.preset, args.steps)
        for layout in layouts:
            if layout not in ranks[0]:
                continue
            per_rank = [ranks[r][layout]["sent"] for r in range(world)]
            mb = ranks[0][layout]["muon_bytes"]
            row = {"layout": layout, "world": world, "muon_param_bytes": mb,
                   "bytes_sent_per_rank": per_rank, "max_ratio": max(per_rank) / mb,
                   "mean_ratio": sum(per_rank) / world / mb,
                   "model_ratio": model_ratio(layout, world)}
            res["runs"].append(row)
            print(f"{layout:<11} W={world}: bytes sent per rank / Muon parameter bytes: max "
                  f"{row['max_ratio']:.3f}, mean {row['mean_ratio']:.3f} (model "
                  f"{row['model_ratio']:.3f})")
    write_json(args.out, res)
    print(markdown_table(res))
    return res


#: The layout's name in the README's table, and the test that checks it against one process.
TABLE = {"replicated": ("replicated (DDP)", "test_replicated_ranks_equal_single_process"),
         "fsdp": ("FSDP2 (`fully_shard`, 1-D)", "test_fsdp2_equals_single_process"),
         "hsdp": ("HSDP (2 × W/2)", "test_layout_equals_single_process[hsdp-2x2-gpt]"),
         "tp": ("tensor parallel (colwise/rowwise)",
                "test_layout_equals_single_process[tp-2-llama]"),
         "tp-fsdp": ("TP × FSDP (W/2 × 2)",
                     "test_layout_equals_single_process[tp-x-fsdp-2x2-llama]"),
         "ep": ("expert parallel (stack sharded along E)",
                "test_expert_parallel_equals_single_process_and_sends_nothing")}


def markdown_table(res: dict) -> str:
    """The README's layout table: bytes ratio per world size (max over ranks) and model."""
    worlds = sorted({r["world"] for r in res["runs"]})
    lines = [f"| layout | supported | Muon bytes sent per rank per step / Muon parameter bytes "
             f"(W = {', '.join(map(str, worlds))}; model) | test |", "| --- | --- | --- | --- |"]
    for key, (name, test) in TABLE.items():
        rows = sorted((r for r in res["runs"] if r["layout"] == key), key=lambda r: r["world"])
        if rows:
            got = ", ".join(f"{r['max_ratio']:.3f}" for r in rows)
            model = ", ".join(f"{r['model_ratio']:.3f}" for r in rows)
            lines.append(f"| {name} | yes | {got} (model {model}) | `{test}` |")
    lines.append("| `Partial`, custom placements | raises at construction | - | "
                 "`test_unsupported_placement_is_refused_by_name` |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
