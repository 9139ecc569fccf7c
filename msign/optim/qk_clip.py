"""QK-clip (MuonClip), Kimi K2 (arXiv:2507.20534): cap each head's largest attention logit.

After an optimizer step, for every attention head h whose largest pre-softmax logit over the
last batch, S_max^h = max_ij q_i . k_j / sqrt(d), exceeds tau (K2: 100), with
gamma_h = tau / S_max^h:

- multi-head attention (as many key heads as query heads): W_q^h and W_k^h, the rows that
  produce head h's queries and keys, are each multiplied by sqrt(gamma_h);
- grouped-query attention (fewer key heads, shared): W_q^h is multiplied by gamma_h and the
  shared keys are left alone.

Logits are bilinear in W_q and W_k, so the same batch's logits of a clipped head then max
out at exactly tau (to rounding); heads at or under tau are left bit for bit unchanged.  (K2's
MLA variant, which splits heads into rotary and non-rotary parts, is not covered.)

The rows of a head are found through a :class:`~msign.optim.Layout` in (out, in)
orientation, so fused QKV (``split``), transposed storage (GPT-2's Conv1D) and separate
projections all work: :class:`Heads` names one block of one parameter and its head count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import sharding
from .layout import Layout

__all__ = ["Heads", "qk_clip"]


@dataclass(frozen=True)
class Heads:
    """The rows of block ``block`` of ``param`` (under ``layout``) cut into ``heads`` heads.

    ``layout`` defaults to the (out, in) layout of a 2-D weight; for a fused QKV give its
    split, e.g. ``Heads(qkv.weight, 12, Layout.linear(split=(768,) * 3), block=1)`` for K.
    """

    param: torch.Tensor
    heads: int
    layout: Layout | None = None
    block: int = 0

    def multiplier(self, factors: torch.Tensor) -> torch.Tensor:
        """A tensor of the parameter's shape: ``factors[h]`` on head h's rows, 1 elsewhere."""
        lay = self.layout or Layout.linear()
        ones = torch.ones(self.param.shape, dtype=self.param.dtype, device="cpu")
        blocks = lay.to_blocks(ones)
        if not 0 <= self.block < len(blocks):
            raise ValueError(f"block {self.block} does not exist: the layout has "
                             f"{len(blocks)} blocks")
        b, rows, cols = blocks[self.block].shape
        if rows % self.heads:
            raise ValueError(f"{self.heads} heads do not divide the block's {rows} rows")
        per_head = factors.to(ones.dtype).repeat_interleave(rows // self.heads)
        blocks[self.block] = per_head.view(1, rows, 1).expand(b, rows, cols).clone()
        return lay.from_blocks(blocks, self.param.shape)


@torch.no_grad()
def qk_clip(s_max: torch.Tensor, q: Heads, k: Heads, tau: float = 100.0,
            record: dict[str, float] | None = None) -> torch.Tensor:
    """Rescale the query/key rows of every head whose largest logit exceeds ``tau``.

    Parameters
    ----------
    s_max : Tensor, shape (q.heads,)
        Each query head's largest pre-softmax logit over the last batch (q . k / sqrt(d)).
    q, k : Heads
        Where each head's query rows and key rows are.  ``k.heads`` must equal ``q.heads``
        (multi-head) or divide it (grouped-query attention).
    tau : float
        The cap (Kimi K2: 100).
    record : dict, optional
        Where to add ``qk/max_logit`` (the largest entry of ``s_max`` so far this step) and
        ``qk/clipped_heads`` (their running count): pass ``opt.diagnostics``.

    Returns
    -------
    Tensor of bool, shape (q.heads,)
        Which heads were clipped.

    Examples
    --------
    >>> import torch
    >>> W_q, W_k = torch.ones(4, 2), torch.ones(4, 2)   # 2 heads of 2 rows each
    >>> qk_clip(torch.tensor([400.0, 50.0]), Heads(W_q, 2), Heads(W_k, 2))
    tensor([ True, False])
    >>> W_q[:, 0]                                         # head 0 scaled by sqrt(100/400)
    tensor([0.5000, 0.5000, 1.0000, 1.0000])
    """
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a finite number > 0; got {tau!r}")
    s_max = torch.as_tensor(s_max, dtype=torch.float64).detach().cpu()
    if s_max.shape != (q.heads,):
        raise ValueError(f"s_max must have shape ({q.heads},), one entry per query head; got "
                         f"{tuple(s_max.shape)}")
    if q.heads % k.heads:
        raise ValueError(f"key heads ({k.heads}) must divide query heads ({q.heads})")
    clip = s_max > tau
    if record is not None:
        record["qk/max_logit"] = max(record.get("qk/max_logit", -math.inf), float(s_max.max()))
        record["qk/clipped_heads"] = record.get("qk/clipped_heads", 0) + int(clip.sum())
    if not bool(clip.any()):
        return clip
    gamma = torch.where(clip, tau / s_max, torch.ones_like(s_max))
    if k.heads == q.heads:
        _scale(q, gamma.sqrt())
        _scale(k, gamma.sqrt())
    else:  # shared keys: the whole factor on the queries
        _scale(q, gamma)
    return clip


def _scale(h: Heads, factors: torch.Tensor) -> None:
    M = h.multiplier(factors)
    p = h.param
    if sharding.is_dtensor(p):  # FSDP2: this rank's Shard(0) rows of the multiplier
        from torch.distributed.tensor import Shard

        if p.device_mesh.ndim != 1 or tuple(p.placements) != (Shard(0),):
            raise ValueError(f"qk_clip supports plain tensors and FSDP2's 1-D Shard(0) "
                             f"DTensors; this one has placements {tuple(p.placements)}")
        rows = sharding.shard_rows(p.shape[0], p.device_mesh.size())
        rank = p.device_mesh.get_local_rank()
        p.to_local().mul_(M.narrow(0, sum(rows[:rank]), rows[rank]).to(p.device))
    else:
        p.mul_(M.to(p.device))
