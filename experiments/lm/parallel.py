"""Muon on a parallel layout, under torchrun: FSDP2, HSDP, tensor parallel, TP x FSDP.

    torchrun --nproc-per-node 4 -m experiments.lm.parallel --layout hsdp
    torchrun --nproc-per-node 4 -m experiments.lm.parallel --layout tp-fsdp

A tiny transformers Llama (random init from a config; ``pip install -e ".[dev]"`` brings
transformers) is laid out by :func:`shard`, trained a few steps on random tokens with Muon
(hidden matrices, Q and K per head) and AdamW (the rest), on gloo (CPU) or NCCL
(``--backend nccl`` with one GPU per rank).  Rank 0 prints each step's loss and the bytes
Muon's exchange sent from each rank, over the Muon parameters' bytes.  The layouts:

- ``fsdp``: ``fully_shard`` on a 1-D mesh of all ranks;
- ``hsdp``: ``fully_shard`` on a (2, W/2) (replicate, shard) mesh;
- ``tp``: ``parallelize_module`` (Q, K, V, gate, up colwise; O, down rowwise) on all ranks;
- ``tp-fsdp``: TP on pairs of ranks, FSDP across them (a (W/2, 2) (dp, tp) mesh).
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist

from msign.optim import Layout, Muon, muon_param_groups

LAYOUTS = ("fsdp", "hsdp", "tp", "tp-fsdp")
#: Q and K orthogonalized per head (4 query heads, 2 key/value heads of the tiny config).
HEADS = {"*.q_proj.weight": Layout.linear(heads=4), "*.k_proj.weight": Layout.linear(heads=2)}
TP_PLAN = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj",
           "mlp.up_proj"), ("self_attn.o_proj", "mlp.down_proj")


def tiny_llama(seed: int = 0, hidden: int = 32, layers: int = 2):
    import transformers

    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(hidden_size=hidden, intermediate_size=48,
                                   num_hidden_layers=layers, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=64,
                                   max_position_embeddings=32)
    return transformers.LlamaForCausalLM(cfg)


def shard(model: torch.nn.Module, layout: str, world: int, device: str = "cpu"):
    """Lay ``model`` out on ``world`` ranks (its blocks are ``model.blocks`` or, for a
    transformers model, ``model.model.layers``); return the device mesh."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        RowwiseParallel,
        parallelize_module,
    )

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}; got {layout!r}")
    if layout in ("hsdp", "tp-fsdp") and (world < 2 or world % 2):
        raise ValueError(f"{layout} needs an even number of ranks; got {world}")
    if layout == "fsdp":
        mesh = dp = init_device_mesh(device, (world,))
    elif layout == "hsdp":
        mesh = dp = init_device_mesh(device, (2, world // 2),
                                     mesh_dim_names=("replicate", "shard"))
    else:
        shape, names = ((world,), ("tp",)) if layout == "tp" else ((world // 2, 2),
                                                                   ("dp", "tp"))
        mesh = init_device_mesh(device, shape, mesh_dim_names=names)
        col, row = TP_PLAN
        plan = {**{m: ColwiseParallel() for m in col}, **{m: RowwiseParallel() for m in row}}
        for layer in model.model.layers:
            parallelize_module(layer, mesh["tp"], plan)
        if layout == "tp":
            return mesh
        dp = mesh["dp"]
    layers = model.blocks if hasattr(model, "blocks") else model.model.layers
    for layer in layers:
        fully_shard(layer, mesh=dp)
    fully_shard(model, mesh=dp)
    return mesh


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layout", choices=LAYOUTS, default="hsdp")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--backend", default="gloo", help="gloo (CPU) or nccl (a GPU per rank)")
    args = ap.parse_args(argv)
    dist.init_process_group(args.backend)
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        device = "cuda" if args.backend == "nccl" else "cpu"
        if device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
        model = tiny_llama().to(device)
        shard(model, args.layout, world, device)
        opt = Muon(muon_param_groups(model, layouts=HEADS), lr=0.02, adamw_lr=1e-3)
        muon_bytes = sum(p.numel() * p.element_size() for g in opt.param_groups
                         if g["use_muon"] for p in g["params"])
        g = torch.Generator().manual_seed(0)  # the same tokens on every rank
        losses = []
        for step in range(args.steps):
            x = torch.randint(0, 64, (4, 16), generator=g).to(device)
            opt.zero_grad()
            loss = model(input_ids=x, labels=x).loss
            loss.backward()
            opt.step()
            sent = torch.tensor([opt.last_step_bytes_sent], dtype=torch.float64)
            every = [torch.zeros_like(sent) for _ in range(world)]
            dist.all_gather(every, sent.to(device) if device == "cuda" else sent)
            losses.append(loss.item())
            if rank == 0:
                ratios = ", ".join(f"{float(s) / muon_bytes:.3f}" for s in every)
                print(f"{args.layout} on {world} ranks, step {step}: loss {losses[-1]:.4f}; "
                      f"Muon bytes sent per rank / Muon parameter bytes: {ratios}")
        return {"layout": args.layout, "world": world, "losses": losses}
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
