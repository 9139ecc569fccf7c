"""Who orthogonalizes which matrix: one process, replicated (DDP) ranks, or FSDP2 shards.

Every parameter's full update is orthogonalized exactly once, by one owner rank, and every
rank ends with the same result as a single process:

- one process: everything locally;
- replicated parameters (plain tensors under torch.distributed, e.g. after DDP averaged the
  gradients): owners are dealt by cost, each computes its share, and one ``all_gather``
  gives every rank every result (Keller Jordan's distributed Muon);
- FSDP2 (``fully_shard``: DTensor, 1-D mesh, ``Shard(0)``): one ``all_to_all`` sends each
  rank's shard of an update to its owner, the owner orthogonalizes the full matrix, and a
  second ``all_to_all`` returns each rank its shard (Moonlight's ZeRO-1 gathers the full
  momentum the same way; dion unshards one matrix per rank with all-to-all).  Per rank and
  step that sends about 2 (W - 1) / W^2 of the Muon parameters' bytes.

The orthogonalize function is an argument (``fn``), so this module never imports the
optimizer.  ``fn`` gets ``[(index, full_update)]`` for the items this rank owns and returns
``[(full_result, aux)]``: ``aux`` is a small tensor (NorMuon's row statistics) or None,
delivered in full to every rank.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Item", "exchange", "owners", "shard_rows", "is_fsdp2", "check_placement",
           "world_and_rank", "all_finite"]

OrthoFn = Callable[[list[tuple[int, torch.Tensor]]],
                   list[tuple[torch.Tensor, "torch.Tensor | None"]]]


def _dtensor_cls():
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # torch built without distributed
        return None
    return DTensor


def is_fsdp2(p: torch.Tensor) -> bool:
    """Whether ``p`` is a DTensor (FSDP2 shards its parameters into DTensors)."""
    cls = _dtensor_cls()
    return cls is not None and isinstance(p, cls)


def check_placement(p: torch.Tensor, name: str) -> None:
    """ValueError unless a DTensor parameter is sharded as ``fully_shard`` does it."""
    if not is_fsdp2(p):
        return
    from torch.distributed.tensor import Shard

    mesh, placements = p.device_mesh, tuple(p.placements)
    if mesh.ndim != 1 or placements != (Shard(0),):
        raise ValueError(
            f"parameter {name} is a DTensor on a {mesh.ndim}-D mesh with placements "
            f"{placements}; Muon supports FSDP2's fully_shard layout (a 1-D mesh, Shard(0)) "
            "and plain (replicated) tensors. Tensor parallel and HSDP are not supported: "
            "they would need the matrix gathered across more than one mesh dimension.")


def all_finite(grads: Sequence[torch.Tensor]) -> bool:
    """Whether every gradient is finite on every rank (shards differ: a NaN on one rank must
    stop every rank before anything changes)."""
    ok = torch.tensor(all(bool(gr.isfinite().all()) for gr in grads if gr.numel()),
                      dtype=torch.int32)
    if world_and_rank()[0] > 1:
        ok = ok.cuda() if dist.get_backend() == "nccl" else ok
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok)


def world_and_rank(group=None) -> tuple[int, int]:
    if not (dist.is_available() and dist.is_initialized()):
        return 1, 0
    return dist.get_world_size(group), dist.get_rank(group)


def shard_rows(n: int, world: int) -> list[int]:
    """Rows of each rank's Shard(0) piece of n rows: torch.chunk's split, as FSDP2 uses."""
    c = -(-n // world) if n else 0
    return [max(0, min(c, n - r * c)) for r in range(world)]


def owners(costs: Sequence[float], world: int) -> list[int]:
    """Owner rank of each item: largest cost first to the least loaded rank (deterministic)."""
    load = [0.0] * world
    out = [0] * len(costs)
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        r = min(range(world), key=lambda r: (load[r], r))
        out[i] = r
        load[r] += costs[i]
    return out


@dataclass
class Item:
    """One parameter's update as this rank holds it."""

    local: torch.Tensor  # the full update (plain) or this rank's Shard(0) rows (FSDP2)
    shape: torch.Size  # the full shape
    sharded: bool  # FSDP2 DTensor
    aux_numel: int  # size of fn's aux output (0 if none)
    cost: float  # FLOPs of its orthogonalization, for the owner assignment


def exchange(items: Sequence[Item], fn: OrthoFn, group=None
             ) -> tuple[list[torch.Tensor], list[torch.Tensor | None], int]:
    """Orthogonalize every item once; return (local results, aux per item, bytes sent).

    The local result has the shape of ``item.local``; aux is the full aux tensor (or None)
    on every rank.  Bytes sent counts what this rank puts on the wire (not to itself).
    """
    world, rank = world_and_rank(group)
    if world == 1:
        outs = fn(list(enumerate(it.local for it in items)))
        return [o for o, _ in outs], [a for _, a in outs], 0
    own = owners([it.cost for it in items], world)
    results: list[torch.Tensor | None] = [None] * len(items)
    aux: list[torch.Tensor | None] = [None] * len(items)
    sent = 0
    plain = [i for i, it in enumerate(items) if not it.sharded]
    sharded = [i for i, it in enumerate(items) if it.sharded]
    if plain:
        sent += _gather_replicated(items, plain, own, fn, results, aux, world, rank, group)
    if sharded:
        sent += _all_to_all(items, sharded, own, fn, results, aux, world, rank, group)
    return results, aux, sent


def _wire_dtype(items: Sequence[Item], idx: Sequence[int]) -> torch.dtype:
    # One buffer per exchange; float32 (or float64 if any item is) holds every input exactly.
    dt = torch.float32
    for i in idx:
        dt = torch.promote_types(dt, items[i].local.dtype)
    return dt


def _gather_replicated(items, idx, own, fn, results, aux, world, rank, group) -> int:
    wire = _wire_dtype(items, idx)
    mine = [i for i in idx if own[i] == rank]
    outs = fn([(i, items[i].local) for i in mine]) if mine else []
    per_rank = [[i for i in idx if own[i] == r] for r in range(world)]

    def numel(i: int) -> int:
        return items[i].local.numel() + items[i].aux_numel

    sizes = [sum(numel(i) for i in per_rank[r]) for r in range(world)]
    length = max(sizes)
    dev = items[idx[0]].local.device
    buf = torch.zeros(length, dtype=wire, device=dev)
    pos = 0
    for (o, a), i in zip(outs, mine, strict=True):
        buf[pos: pos + o.numel()] = o.reshape(-1)
        pos += o.numel()
        if items[i].aux_numel:
            buf[pos: pos + a.numel()] = a.reshape(-1)
            pos += a.numel()
    gathered = [torch.empty_like(buf) for _ in range(world)]
    dist.all_gather(gathered, buf, group=group)
    for r in range(world):
        pos = 0
        for i in per_rank[r]:
            n = items[i].local.numel()
            results[i] = gathered[r][pos: pos + n].view(items[i].shape).to(items[i].local.dtype)
            pos += n
            if items[i].aux_numel:
                aux[i] = gathered[r][pos: pos + items[i].aux_numel].to(torch.float32)
                pos += items[i].aux_numel
    return (world - 1) * length * buf.element_size()


def _all_to_all(items, idx, own, fn, results, aux, world, rank, group) -> int:
    wire = _wire_dtype(items, idx)
    dev = items[idx[0]].local.device
    rows = {i: shard_rows(items[i].shape[0], world) for i in idx}
    for i in idx:
        if items[i].local.shape[0] != rows[i][rank]:
            raise RuntimeError(
                f"a DTensor shard has {items[i].local.shape[0]} rows where torch.chunk's "
                f"Shard(0) split gives {rows[i][rank]}; unsupported sharding")

    def row_numel(i: int) -> int:
        return items[i].shape[1:].numel()

    # Phase 1: each rank's shard of every update to the update's owner.
    send = [[i for i in idx if own[i] == d] for d in range(world)]
    in_split = [sum(rows[i][rank] * row_numel(i) for i in send[d]) for d in range(world)]
    mine = send[rank]
    out_split = [sum(rows[i][s] * row_numel(i) for i in mine) for s in range(world)]
    buf_in = torch.cat([items[i].local.reshape(-1).to(wire) for d in range(world)
                        for i in send[d]] or [torch.zeros(0, dtype=wire, device=dev)])
    buf_out = torch.empty(sum(out_split), dtype=wire, device=dev)
    dist.all_to_all_single(buf_out, buf_in, out_split, in_split, group=group)
    sent = (sum(in_split) - in_split[rank]) * buf_in.element_size()
    full: dict[int, list[torch.Tensor]] = {i: [] for i in mine}
    pos = 0
    for s in range(world):
        for i in mine:
            n = rows[i][s] * row_numel(i)
            full[i].append(buf_out[pos: pos + n].view(rows[i][s], *items[i].shape[1:]))
            pos += n
    outs = fn([(i, torch.cat(full[i]).to(items[i].local.dtype)) for i in mine]) if mine else []
    done = dict(zip(mine, outs, strict=True))

    # Phase 2: each owner returns every rank its rows of the result, and the full aux.
    offsets = {i: [sum(rows[i][:r]) for r in range(world)] for i in idx}
    pieces = []
    in_split2 = []
    for d in range(world):
        n = 0
        for i in mine:
            o, a = done[i]
            piece = o.narrow(0, offsets[i][d], rows[i][d]).reshape(-1)
            pieces.append(piece.to(wire))
            n += piece.numel()
            if items[i].aux_numel:
                pieces.append(a.reshape(-1).to(wire))
                n += a.numel()
        in_split2.append(n)
    out_split2 = [sum(rows[i][rank] * row_numel(i) + items[i].aux_numel for i in send[o])
                  for o in range(world)]
    buf_in2 = torch.cat(pieces) if pieces else torch.zeros(0, dtype=wire, device=dev)
    buf_out2 = torch.empty(sum(out_split2), dtype=wire, device=dev)
    dist.all_to_all_single(buf_out2, buf_in2, out_split2, in_split2, group=group)
    sent += (sum(in_split2) - in_split2[rank]) * buf_in2.element_size()
    pos = 0
    for o in range(world):
        for i in send[o]:
            n = rows[i][rank] * row_numel(i)
            results[i] = buf_out2[pos: pos + n].view(items[i].local.shape).to(
                items[i].local.dtype)
            pos += n
            if items[i].aux_numel:
                aux[i] = buf_out2[pos: pos + items[i].aux_numel].to(torch.float32)
                pos += items[i].aux_numel
    return sent
