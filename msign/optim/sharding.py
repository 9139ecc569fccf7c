"""Who orthogonalizes which matrix: one process, replicated ranks, or DTensor shards.

Every parameter's full update is orthogonalized exactly once per shard group, by one owner
rank, and every rank ends with the same result as a single process:

- one process: everything locally;
- replicated parameters (plain tensors under torch.distributed, e.g. after DDP averaged the
  gradients): owners are dealt by cost, each computes its share, and one ``all_gather``
  gives every rank every result (Keller Jordan's distributed Muon);
- DTensor parameters on any mesh (FSDP2's ``fully_shard`` on a 1-D mesh, HSDP's replicate x
  shard mesh, tensor parallel's ``Shard(0)``/``Shard(1)``, TP x FSDP, expert parallel): the
  *shard group* is the ranks along the mesh dimensions that shard the tensor (for HSDP the
  shard dimension; replicas each run their own group and never talk to each other).  Each
  rank holds a box of the full tensor (:func:`boxes`).  One ``all_to_all`` sends each rank's
  box of an update to its owner in the group, the owner orthogonalizes the full matrix with
  its layout (fused QKV split, heads), and a second returns each rank its box (Moonlight's
  ZeRO-1 gathers the full momentum the same way; dion unshards one matrix per rank with
  all-to-all).  Per rank and step that sends about 2 (S - 1) / S^2 of the Muon parameters'
  bytes, S the group size.
- expert parallel (a stack (E, out, in) sharded only along E, or any DTensor sharded only
  along its layout's batch axes): each rank holds whole matrices and orthogonalizes them
  where they are, sending nothing.  (With NorMuon, whose row statistics every rank keeps in
  full, such a stack goes through its group's exchange instead.)

The orthogonalize function is an argument (``fn``), so this module never imports the
optimizer.  ``fn`` gets ``[(index, full_update)]`` for the items this rank owns and returns
``[(full_result, aux)]``: ``aux`` is a small tensor (NorMuon's row statistics) or None,
delivered in full to every rank of the group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["Item", "Sharded", "exchange", "owners", "shard_rows", "is_dtensor",
           "check_placement", "spec_of", "boxes", "world_and_rank", "all_finite"]

OrthoFn = Callable[[list[tuple[int, torch.Tensor]]],
                   list[tuple[torch.Tensor, "torch.Tensor | None"]]]
Box = tuple[tuple[int, ...], tuple[int, ...]]  # (shape, offset) of a local block


def _dtensor_cls():
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # torch built without distributed
        return None
    return DTensor


def is_dtensor(p: torch.Tensor) -> bool:
    """Whether ``p`` is a DTensor (FSDP2, tensor parallel and their combinations)."""
    cls = _dtensor_cls()
    return cls is not None and isinstance(p, cls)


def _shard_dims(placements: Sequence[Any], name: str, shape: Sequence[int]) -> list[int]:
    """Mesh dimensions that shard the tensor; ValueError for a placement Muon cannot undo."""
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor.placement_types import _StridedShard

    dims = []
    for i, pl in enumerate(placements):
        if isinstance(pl, _StridedShard):
            # FSDP2 over tensor parallel on the same axis: contiguous boxes only when the
            # split factor is the product of the later shardings of that axis.
            later = [j for j in range(i + 1, len(placements))
                     if isinstance(placements[j], Shard) and placements[j].dim == pl.dim]
            if not later:
                raise ValueError(_unsupported(name, placements, "a strided shard with no "
                                              "later shard of its axis"))
            dims.append(i)
        elif isinstance(pl, Shard):
            dims.append(i)
        elif not isinstance(pl, Replicate):
            raise ValueError(_unsupported(name, placements, f"placement {pl!r}"))
    return dims


def _unsupported(name: str, placements: Sequence[Any], what: str) -> str:
    return (f"parameter {name} has DTensor placements {tuple(placements)}: {what} is not "
            "supported; Muon supports Replicate, Shard(d) on any mesh dimensions (FSDP2, "
            "HSDP, tensor parallel, expert parallel, and FSDP2 over tensor parallel's "
            "strided shards), and plain tensors")


def check_placement(p: torch.Tensor, name: str) -> None:
    """ValueError, naming the parameter and its placements, for a DTensor layout Muon cannot
    gather (a Partial or custom placement, an unnamed mesh sharded along part of its dims)."""
    if not is_dtensor(p):
        return
    mesh, placements = p.device_mesh, tuple(p.placements)
    dims = _shard_dims(placements, name, p.shape)
    if dims and len(dims) < mesh.ndim and mesh.mesh_dim_names is None:
        raise ValueError(f"parameter {name} is sharded along mesh dims {dims} of a "
                         f"{mesh.ndim}-D mesh without dimension names; name them "
                         "(init_device_mesh(..., mesh_dim_names=...)) so that Muon can form "
                         "the shard group")


@dataclass(frozen=True)
class Sharded:
    """Where a DTensor parameter lives: its shard group and every member's box."""

    group: Any  # the ProcessGroup of the ranks that hold the tensor between them
    boxes: tuple[Box, ...]  # per group rank
    local_only: bool  # each rank's box is whole matrices: orthogonalized where it is


_GROUPS: dict[tuple, Any] = {}


def _group(mesh: Any, dims: Sequence[int]) -> tuple[Any, list[list[int]]]:
    """(process group, mesh coordinates along ``dims`` of each group rank)."""
    import itertools

    sizes = [mesh.size(d) for d in dims]
    coords = [list(c) for c in itertools.product(*(range(n) for n in sizes))]
    if len(dims) == mesh.ndim and mesh.ndim == 1:
        return mesh.get_group(), coords
    key = (id(mesh), tuple(dims))
    if key not in _GROUPS:
        names = tuple(mesh.mesh_dim_names[d] for d in dims)
        sub = mesh[names] if len(names) < mesh.ndim else mesh
        _GROUPS[key] = sub.get_group() if sub.ndim == 1 else sub._flatten().get_group()
    return _GROUPS[key], coords


def boxes(shape: Sequence[int], mesh_shape: Sequence[int], coordinate: Sequence[int],
          placements: Sequence[Any], dims: Sequence[int], coords: Sequence[Sequence[int]]
          ) -> tuple[Box, ...]:
    """The box (shape, offset) of the full tensor that each mesh coordinate along ``dims``
    holds, the other coordinates as in ``coordinate`` (DTensor's own rule, strided shards
    included)."""
    from torch.distributed.tensor._utils import _compute_local_shape_and_global_offset

    out = []
    for c in coords:
        full = list(coordinate)
        for d, v in zip(dims, c, strict=True):
            full[d] = v
        shp, off = _compute_local_shape_and_global_offset(tuple(shape), tuple(mesh_shape),
                                                           full, tuple(placements))
        out.append((tuple(shp), tuple(off)))
    return tuple(out)


def spec_of(p: torch.Tensor, batch_axes: Sequence[int], exchange_always: bool = False
            ) -> Sharded:
    """The shard group and boxes of DTensor ``p``; ``batch_axes`` are its layout's."""
    mesh, placements = p.device_mesh, tuple(p.placements)
    dims = _shard_dims(placements, "", p.shape)
    if not dims:  # replicated on every rank: each computes it
        box = (tuple(p.shape), (0,) * p.dim())
        return Sharded(None, (box,), True)
    group, coords = _group(mesh, dims)
    bx = boxes(p.shape, mesh.shape, mesh.get_coordinate(), placements, dims, coords)
    sharded_axes = {placements[d].dim for d in dims}
    local = not exchange_always and sharded_axes <= set(batch_axes)
    return Sharded(group, bx, local)


def _slices(box: Box) -> tuple[slice, ...]:
    shp, off = box
    return tuple(slice(o, o + n) for o, n in zip(off, shp, strict=True))


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

    local: torch.Tensor  # the full update (plain) or this rank's box of it (DTensor)
    shape: torch.Size  # the full shape
    spec: Sharded | None  # a DTensor's group and boxes; None for a plain tensor
    aux_numel: int  # size of fn's aux output (0 if none)
    cost: float  # FLOPs of its orthogonalization, for the owner assignment


def exchange(items: Sequence[Item], fn: OrthoFn
             ) -> tuple[list[torch.Tensor], list[torch.Tensor | None], int]:
    """Orthogonalize every item once per group; return (local results, aux, bytes sent).

    The local result has the shape of ``item.local``; aux is the full aux tensor (or None)
    on every rank of the item's group.  Bytes sent counts what this rank puts on the wire
    (not to itself).
    """
    results: list[torch.Tensor | None] = [None] * len(items)
    aux: list[torch.Tensor | None] = [None] * len(items)
    local = [i for i, it in enumerate(items) if it.spec is not None and it.spec.local_only]
    plain = [i for i, it in enumerate(items) if it.spec is None]
    world, _ = world_and_rank()
    if world == 1:
        local, plain = local + plain, []
    for i, (o, a) in zip(local, fn([(i, items[i].local) for i in local]) if local else [],
                         strict=True):
        results[i], aux[i] = o, a
    sent = 0
    if plain:
        sent += _gather_replicated(items, plain, fn, results, aux)
    groups: dict[Any, list[int]] = {}
    for i, it in enumerate(items):
        if it.spec is not None and not it.spec.local_only and world > 1:
            groups.setdefault(it.spec.group, []).append(i)
    for group, idx in groups.items():
        sent += _all_to_all(items, idx, fn, results, aux, group)
    return results, aux, sent


def _wire_dtype(items: Sequence[Item], idx: Sequence[int]) -> torch.dtype:
    # One buffer per exchange; float32 (or float64 if any item is) holds every input exactly.
    dt = torch.float32
    for i in idx:
        dt = torch.promote_types(dt, items[i].local.dtype)
    return dt


def _gather_replicated(items, idx, fn, results, aux, group=None) -> int:
    world, rank = world_and_rank(group)
    own = owners([items[i].cost for i in idx], world)
    own = dict(zip(idx, own, strict=True))
    wire = _wire_dtype(items, idx)
    mine = [i for i in idx if own[i] == rank]
    outs = fn([(i, items[i].local) for i in mine]) if mine else []
    per_rank = [[i for i in idx if own[i] == r] for r in range(world)]

    def numel(i: int) -> int:
        return items[i].local.numel() + items[i].aux_numel

    sizes = [sum(numel(i) for i in per_rank[r]) for r in range(world)]
    dev = items[idx[0]].local.device
    parts = [t.reshape(-1).to(wire) for (o, a), i in zip(outs, mine, strict=True)
             for t in ((o, a) if items[i].aux_numel else (o,))]
    buf = torch.cat(parts) if parts else torch.zeros(0, dtype=wire, device=dev)
    # An all-gather of unequal pieces: every rank's results to every rank, none padded.
    gathered = torch.empty(sum(sizes), dtype=wire, device=dev)
    dist.all_to_all_single(gathered, buf.repeat(world), sizes, [buf.numel()] * world,
                           group=group)
    pos = 0
    for r in range(world):
        for i in per_rank[r]:
            n = items[i].local.numel()
            results[i] = gathered[pos: pos + n].view(items[i].shape).to(items[i].local.dtype)
            pos += n
            if items[i].aux_numel:
                aux[i] = gathered[pos: pos + items[i].aux_numel].to(torch.float32)
                pos += items[i].aux_numel
    return (world - 1) * buf.numel() * buf.element_size()


def _all_to_all(items, idx, fn, results, aux, group) -> int:
    world, rank = world_and_rank(group)
    own = dict(zip(idx, owners([items[i].cost for i in idx], world), strict=True))
    wire = _wire_dtype(items, idx)
    dev = items[idx[0]].local.device
    bx = {i: items[i].spec.boxes for i in idx}
    for i in idx:
        if tuple(items[i].local.shape) != bx[i][rank][0]:
            raise RuntimeError(f"a DTensor's local block has shape {tuple(items[i].local.shape)}"
                               f" where its placements give {bx[i][rank][0]}")

    def numel(i: int, r: int) -> int:
        return int(torch.Size(bx[i][r][0]).numel())

    # Phase 1: each rank's box of every update to the update's owner.
    send = [[i for i in idx if own[i] == d] for d in range(world)]
    in_split = [sum(numel(i, rank) for i in send[d]) for d in range(world)]
    mine = send[rank]
    out_split = [sum(numel(i, s) for i in mine) for s in range(world)]
    buf_in = torch.cat([items[i].local.reshape(-1).to(wire) for d in range(world)
                        for i in send[d]] or [torch.zeros(0, dtype=wire, device=dev)])
    buf_out = torch.empty(sum(out_split), dtype=wire, device=dev)
    dist.all_to_all_single(buf_out, buf_in, out_split, in_split, group=group)
    sent = (sum(in_split) - in_split[rank]) * buf_in.element_size()
    full = {i: torch.empty(items[i].shape, dtype=wire, device=dev) for i in mine}
    pos = 0
    for s in range(world):
        for i in mine:
            n = numel(i, s)
            full[i][_slices(bx[i][s])] = buf_out[pos: pos + n].view(bx[i][s][0])
            pos += n
    outs = fn([(i, full[i].to(items[i].local.dtype)) for i in mine]) if mine else []
    done = dict(zip(mine, outs, strict=True))

    # Phase 2: each owner returns every rank its box of the result, and the full aux.
    pieces = []
    in_split2 = []
    for d in range(world):
        n = 0
        for i in mine:
            o, a = done[i]
            piece = o[_slices(bx[i][d])].reshape(-1)
            pieces.append(piece.to(wire))
            n += piece.numel()
            if items[i].aux_numel:
                pieces.append(a.reshape(-1).to(wire))
                n += a.numel()
        in_split2.append(n)
    out_split2 = [sum(numel(i, rank) + items[i].aux_numel for i in send[o])
                  for o in range(world)]
    buf_in2 = torch.cat(pieces) if pieces else torch.zeros(0, dtype=wire, device=dev)
    buf_out2 = torch.empty(sum(out_split2), dtype=wire, device=dev)
    dist.all_to_all_single(buf_out2, buf_in2, out_split2, in_split2, group=group)
    sent += (sum(in_split2) - in_split2[rank]) * buf_in2.element_size()
    pos = 0
    for o in range(world):
        for i in send[o]:
            n = numel(i, rank)
            results[i] = buf_out2[pos: pos + n].view(items[i].local.shape).to(
                items[i].local.dtype)
            pos += n
            if items[i].aux_numel:
                aux[i] = buf_out2[pos: pos + items[i].aux_numel].to(torch.float32)
                pos += items[i].aux_numel
    return sent
