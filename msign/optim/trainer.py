"""Muon for the Hugging Face ``Trainer``: the optimizer and its schedule in one call.

``transformers`` is never imported here: the Trainer takes any ``torch.optim.Optimizer`` and
``LambdaLR`` through ``Trainer(optimizers=(optimizer, scheduler))``, and saves and restores
both in its checkpoints (``optimizer.pt``, ``scheduler.pt``) through their state dicts.

PyTorch Lightning takes the same pair from ``configure_optimizers``::

    def configure_optimizers(self):
        opt, sched = for_trainer(self, num_training_steps=self.trainer.max_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from .groups import muon_param_groups
from .layout import Layout
from .muon import Muon

__all__ = ["for_trainer", "WarmupCosine"]


class WarmupCosine:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``floor`` of the peak at
    ``total`` (nanoGPT's schedule); a class, not a lambda, so that it pickles."""

    def __init__(self, total: int, warmup: int = 0, floor: float = 0.1) -> None:
        if not (isinstance(total, int) and total >= 1):
            raise ValueError(f"num_training_steps must be an int >= 1; got {total!r}")
        if not (isinstance(warmup, int) and 0 <= warmup < total):
            raise ValueError(f"warmup_steps must be an int in [0, {total}); got {warmup!r}")
        if not 0 <= floor <= 1:
            raise ValueError(f"floor must lie in [0, 1]; got {floor!r}")
        self.total, self.warmup, self.floor = total, warmup, floor

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        t = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * t))


def for_trainer(model: nn.Module, *, num_training_steps: int, warmup_steps: int = 0,
                floor: float = 0.1, muon: Sequence[str] = (), adamw: Sequence[str] = (),
                layouts: Mapping[str, Layout] | None = None, **muon_kwargs: Any
                ) -> tuple[Muon, LambdaLR]:
    """``(optimizer, scheduler)`` for ``transformers.Trainer(optimizers=...)``.

    Parameters
    ----------
    model : nn.Module
        Its parameters are split by :func:`muon_param_groups` (hidden matrices to Muon with
        their layouts; embeddings, heads, norms, biases and routers to AdamW).
    num_training_steps, warmup_steps : int
        The schedule (:class:`WarmupCosine`): linear warm-up, cosine decay to ``floor``.
    muon, adamw, layouts :
        Passed to :func:`muon_param_groups`.
    **muon_kwargs :
        Passed to :class:`Muon` (``lr``, ``adamw_lr``, ``msign``, ``weight_decay``, ...).

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    >>> opt, sched = for_trainer(model, num_training_steps=100, warmup_steps=10, lr=0.02)
    >>> [f"{g['lr']:.1e}" for g in opt.param_groups]  # step 0 of the warm-up: 1/10
    ['2.0e-03', '3.0e-05']
    """
    opt = Muon(muon_param_groups(model, muon=muon, adamw=adamw, layouts=layouts),
               **muon_kwargs)
    return opt, LambdaLR(opt, WarmupCosine(num_training_steps, warmup_steps, floor))
