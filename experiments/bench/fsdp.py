"""Bytes each rank sends in a Muon step under FSDP2, against the Muon parameters' bytes.

    python -m experiments.bench.fsdp [--worlds 2,4] [--preset cpu] [--out results/fsdp/comm.json]

Builds the experiments' GPT (``--preset``), shards every block and the root with
``fully_shard`` on W gloo CPU ranks, takes optimizer steps and records what
``Muon.last_step_bytes_sent`` counted on each rank: the two all-to-alls that gather each
update to its owner and return the shards, plus the 4-byte finite-gradient all-reduce.
The ratio to the Muon group's parameter bytes is the figure the design sets at <= 2;
the exchange's model is 2 (W - 1) / W^2 (each rank ships (W - 1)/W of its 1/W share out
and back).  Forward/backward communication (FSDP2's own all-gathers and reduce-scatters)
is not the optimizer's and is not counted.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from msign.optim import Muon, muon_param_groups
from msign.results import provenance, write_json

from ..common.cli import add_out
from ..lm.model import GPT
from ..lm.presets import PRESETS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, preset: str, steps: int, out: str) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    cfg = PRESETS[preset]
    torch.manual_seed(0)
    model = GPT(cfg["model"])
    mesh = init_device_mesh("cpu", (world,))
    for b in model.blocks:
        fully_shard(b, mesh=mesh)
    fully_shard(model, mesh=mesh)
    opt = Muon(muon_param_groups(model), lr=0.02, msign="jordan")
    g = torch.Generator().manual_seed(1)
    sent = []
    for _ in range(steps):
        x = torch.randint(0, cfg["model"].vocab, (2, cfg["model"].block + 1), generator=g)
        opt.zero_grad()
        model(x[:, :-1], x[:, 1:]).backward()
        opt.step()
        sent.append(opt.last_step_bytes_sent + 4)  # + the finite-gradient all-reduce
    muon_bytes = sum(p.numel() * p.element_size() for grp in opt.param_groups
                     if grp["use_muon"] for p in grp["params"])
    torch.save({"sent": sent, "muon_bytes": muon_bytes},
               os.path.join(out, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--worlds", default="2,4")
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--steps", type=int, default=2)
    add_out(ap, "results/fsdp/comm.json")
    args = ap.parse_args(argv)
    res = {**provenance(), "preset": args.preset, "backend": "gloo", "runs": []}
    for world in (int(w) for w in args.worlds.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            mp.spawn(_worker, args=(world, _free_port(), args.preset, args.steps, tmp),
                     nprocs=world, join=True)
            ranks = [torch.load(os.path.join(tmp, f"rank{r}.pt")) for r in range(world)]
        muon_bytes = ranks[0]["muon_bytes"]
        per_rank = [max(r["sent"]) for r in ranks]
        res["runs"].append({
            "world": world, "muon_param_bytes": muon_bytes, "bytes_sent_per_rank": per_rank,
            "max_ratio": max(per_rank) / muon_bytes,
            "mean_ratio": sum(per_rank) / world / muon_bytes,
            "model_ratio": 2 * (world - 1) / world**2})
        r = res["runs"][-1]
        print(f"W={world}: bytes sent per rank / Muon parameter bytes: max {r['max_ratio']:.3f}, "
              f"mean {r['mean_ratio']:.3f} (model 2(W-1)/W^2 = {r['model_ratio']:.3f}); "
              f"Muon parameters {muon_bytes / 2**20:.2f} MiB")
    write_json(args.out, res)
    return res


if __name__ == "__main__":
    main()
