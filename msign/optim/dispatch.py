"""From full momentum updates to scaled orthogonalized ones, on the rank that owns them.

Each Muon parameter's step is one :class:`Work`.  :func:`orthogonalize` cuts the updates
into the (B, out, in) blocks of their layouts, buckets blocks of one shape, dtype and
method, runs each bucket through the engine (looped or batched as
:func:`msign.iterate.loops_over_batch` decides), applies the block scales and the group's
post-rule (NorMuon), and reassembles each parameter.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..api import apply_method
from ..iterate import loops_over_batch
from ..registry import Method
from . import diagnostics
from .layout import Layout

__all__ = ["Work", "orthogonalize"]


@dataclass
class Work:
    """One Muon parameter's part of a step."""

    group: dict[str, Any]
    param: torch.Tensor
    layout: Layout
    scales: list[float]  # the shape scale of each block
    method: Method | Callable
    steps: int | None
    post: Any | None  # the group's post-rule (rules.NorMuon) or None
    post_state: torch.Tensor | None  # its state (e.g. NorMuon's v), read by the owner
    record: dict[str, float] | None = None  # diagnostics to fill (msign.optim.diagnostics)
    name: str = ""

    @property
    def uniform(self) -> bool:
        """One scale for the whole parameter: it goes into the step's alpha, as torch does,
        so that 2-D steps equal torch.optim.Muon's bit for bit; otherwise the owner applies
        each block's scale."""
        return len(set(self.scales)) == 1 and self.post is None

    @property
    def cost(self) -> float:
        """FLOPs-like cost of its orthogonalization, for dealing owners."""
        return float(sum(b * min(o, i) ** 2 * max(o, i)
                         for b, o, i in self.layout.matrix_shapes(self.param.shape)))


def _run(method: Method | Callable, mats: list[torch.Tensor], w: Work
         ) -> tuple[list[torch.Tensor], float | None]:
    """The bucket's results and, when diagnostics are on, its mean products per matrix."""
    g = w.group
    if mats[0].numel() == 0:  # 0-size parameters: nothing to orthogonalize
        return [torch.zeros_like(m) for m in mats], None
    if not isinstance(method, Method):
        return [torch.stack([method(x).to(m.dtype) for x in m]) for m in mats], None
    infos = [{} if w.record is not None else None for _ in mats]
    if loops_over_batch(mats[0].device, sum(m.shape[0] for m in mats)):
        out = [apply_method(m, method, w.steps, g["msign_dtype"], i, g["msign_gemm"])
               for m, i in zip(mats, infos, strict=True)]
    else:
        infos = infos[:1]
        out = list(apply_method(torch.cat(mats), method, w.steps, g["msign_dtype"], infos[0],
                                g["msign_gemm"]).split([m.shape[0] for m in mats]))
    if w.record is None:
        return out, None
    sizes = [m.shape[0] for m in mats] if len(infos) > 1 else [1]
    return out, sum(i["matmuls"] * b for i, b in zip(infos, sizes, strict=True)) / sum(sizes)


def orthogonalize(work: list[tuple[Work, torch.Tensor]]
                  ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Full updates -> (s * msign per block, the post-rule's new state or None)."""
    blocks = [w.layout.to_blocks(u) for w, u in work]
    buckets: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
    for k, (w, _) in enumerate(work):
        g = w.group
        for b, blk in enumerate(blocks[k]):
            key = (tuple(blk.shape[1:]), blk.dtype, blk.device, id(w.method), w.steps,
                   g["msign_dtype"], g["msign_gemm"])
            buckets[key].append((k, b))
    out: list[list[torch.Tensor | None]] = [[None] * len(bl) for bl in blocks]
    for members in buckets.values():
        first = work[members[0][0]][0]
        res, mms = _run(first.method, [blocks[k][b] for k, b in members], first)
        for (k, b), r in zip(members, res, strict=True):
            out[k][b] = r
            if mms is not None:  # products per matrix as run (an adaptive budget's mean)
                work[k][0].record[f"matmuls/{work[k][0].name}"] = float(mms)
    results = []
    for (w, u), xs in zip(work, out, strict=True):
        shape = u.shape  # the full matrix, or an expert-parallel rank's own experts
        if w.record is not None:
            w.record[f"orth_error/{w.name}"] = max(diagnostics.orth_error(x) for x in xs)
        if w.uniform:
            results.append((w.layout.from_blocks(xs, shape), None))
            if w.record is not None:
                w.record[f"update_rms/{w.name}"] = (
                    diagnostics.update_rms(results[-1][0]) * w.scales[0])
            continue
        xs = [x * s for x, s in zip(xs, w.scales, strict=True)]
        state = None
        if w.post is not None:
            state = w.post_state.clone()
            pieces = state.split([x.shape[0] * x.shape[1] for x in xs])
            xs = [w.post.apply(x, vp.view(x.shape[:2]), w.group)
                  for x, vp in zip(xs, pieces, strict=True)]
        results.append((w.layout.from_blocks(xs, shape), state))
        if w.record is not None:
            w.record[f"update_rms/{w.name}"] = diagnostics.update_rms(results[-1][0])
    return results
