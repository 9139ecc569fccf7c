"""The update rules around msign: momentum, post-rules such as NorMuon, (cautious) decay, AdamW.

Each part of a Muon step that has variants is a *slot*, and each variant a :class:`Rule`
object in :data:`RULES`, switched on by its group options: a new variant is one rule here
plus its keyword on :class:`msign.optim.Muon`, and touches no method of the optimizer.

- ``momentum`` (torch.optim.Muon's EMA form): B <- mu B + (1 - mu) G;
  M = (1 - mu) G + mu B (Nesterov) or B.
- ``post``, on each orthogonalized (out, in) matrix O = s(W) msign(M) on its owner rank;
  none by default.  NorMuon (arXiv 2510.05491; dion, modded-nanogpt):
  v <- beta2 v + (1 - beta2) mean_j O_ij^2 (one entry per row), O' = O / (sqrt(v) + eps),
  then O' rescaled to ||O||_F.
- ``decay``: W <- W (1 - lr wd); cautious (modded-nanogpt #43/#50, dion ``cautious_wd``):
  W <- W - lr wd (W * 1[W * U > 0]), decaying only where W and U point the same way.
- AdamW (:func:`adamw`): torch.optim.AdamW's rule (bias-corrected moments, decoupled decay),
  with the group's decay rule.

``W`` is a parameter (or this rank's shard of it), ``U`` the update that is subtracted (lr
excluded).  The first rule of a slot in :data:`RULES` whose ``active(group)`` holds is the
group's; variants come before the slot's base rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

import torch

__all__ = ["Rule", "RULES", "rule_for", "rule_options", "Momentum", "NorMuon", "Decoupled",
           "CautiousDecay", "adamw"]


class Rule(Protocol):
    """One variant of one slot of the update, set by its group options."""

    slot: ClassVar[str]  # "momentum", "post" or "decay"
    options: ClassVar[Mapping[str, Any]]  # the group keywords it reads, with defaults

    def active(self, group: Mapping[str, Any]) -> bool: ...

    def check(self, group: Mapping[str, Any]) -> None: ...


def _number(g: Mapping[str, Any], key: str, lo: float, hi: float | None = None,
            open_lo: bool = False, none_ok: bool = False) -> None:
    v = g[key]
    if v is None and none_ok:
        return
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (
        v > lo if open_lo else v >= lo) and (hi is None or v < hi)
    if not ok:
        where = f"({lo}, " if open_lo else f"[{lo}, "
        where += f"{hi})" if hi is not None else "inf)"
        raise ValueError(f"{key} must be {'None or ' if none_ok else ''}a number in {where}; "
                         f"got {v!r}")


class Momentum:
    """torch.optim.Muon's momentum; the direction it returns is what msign orthogonalizes."""

    slot: ClassVar[str] = "momentum"
    options: ClassVar[Mapping[str, Any]] = {}  # momentum, nesterov: torch's own keywords

    def active(self, group: Mapping[str, Any]) -> bool:
        return True

    def check(self, group: Mapping[str, Any]) -> None:
        _number(group, "momentum", 0, 1)
        if not isinstance(group["nesterov"], bool):
            raise TypeError(f"nesterov must be a bool; got {group['nesterov']!r}")

    def direction(self, buf: torch.Tensor, g: torch.Tensor,
                  group: Mapping[str, Any]) -> torch.Tensor:
        """Update the momentum buffer in place and return the direction to orthogonalize."""
        mu = group["momentum"]
        buf.lerp_(g, 1 - mu)
        return g.lerp(buf, mu) if group["nesterov"] else buf.clone()


class NorMuon:
    """NorMuon's per-row second-moment normalization of the orthogonalized update."""

    slot: ClassVar[str] = "post"
    options: ClassVar[Mapping[str, Any]] = {"normuon_beta2": None, "normuon_eps": 1e-8}
    state_key: ClassVar[str] = "normuon_v"  # one entry per output row of each matrix

    def active(self, group: Mapping[str, Any]) -> bool:
        return group["normuon_beta2"] is not None

    def check(self, group: Mapping[str, Any]) -> None:
        _number(group, "normuon_beta2", 0, 1, none_ok=True)
        _number(group, "normuon_eps", 0, open_lo=True)

    def apply(self, upd: torch.Tensor, v: torch.Tensor,
              group: Mapping[str, Any]) -> torch.Tensor:
        """NorMuon on a stack ``upd`` = O of shape (B, out, in); ``v`` (B, out) updated in place.

        Computed in float32 (float64 for float64 O); returns O's dtype.
        """
        beta2, eps = group["normuon_beta2"], group["normuon_eps"]
        wide = torch.float64 if upd.dtype == torch.float64 else torch.float32
        Of = upd.to(wide)
        v.mul_(beta2).add_(Of.square().mean(dim=-1).to(v.dtype), alpha=1 - beta2)
        On = Of / (v.to(wide).sqrt() + eps).unsqueeze(-1)
        norm_o = torch.linalg.vector_norm(Of, dim=(-2, -1), keepdim=True)
        norm_n = torch.linalg.vector_norm(On, dim=(-2, -1), keepdim=True)
        # A zero O (zero momentum) stays zero instead of 0/0.
        On = On * (norm_o / norm_n.clamp_min(torch.finfo(wide).tiny))
        return On.to(upd.dtype)


class Decoupled:
    """Decoupled weight decay W <- W (1 - lr wd), before W -= lr U."""

    slot: ClassVar[str] = "decay"
    options: ClassVar[Mapping[str, Any]] = {}  # weight_decay: torch's own keyword
    reads_update: ClassVar[bool] = False  # it may run before U is formed

    def active(self, group: Mapping[str, Any]) -> bool:
        return True

    def check(self, group: Mapping[str, Any]) -> None:
        _number(group, "weight_decay", 0)

    def decay(self, W: torch.Tensor, U: torch.Tensor, lr: float | torch.Tensor,
              wd: float) -> None:
        if wd:
            W.mul_(1 - lr * wd)


class CautiousDecay:
    """Decay only the coordinates where W and the update U agree in sign (both sides)."""

    slot: ClassVar[str] = "decay"
    options: ClassVar[Mapping[str, Any]] = {"cautious_weight_decay": False}
    reads_update: ClassVar[bool] = True

    def active(self, group: Mapping[str, Any]) -> bool:
        return group["cautious_weight_decay"]

    def check(self, group: Mapping[str, Any]) -> None:
        if not isinstance(group["cautious_weight_decay"], bool):
            raise TypeError(f"cautious_weight_decay must be a bool; got "
                            f"{group['cautious_weight_decay']!r}")

    def decay(self, W: torch.Tensor, U: torch.Tensor, lr: float | torch.Tensor,
              wd: float) -> None:
        if wd:
            mask = (W * U > 0).to(W.dtype)
            W.addcmul_(W, mask, value=-float(lr) * wd)


#: every rule, variants before the base rule of their slot.
RULES: tuple[Any, ...] = (Momentum(), NorMuon(), CautiousDecay(), Decoupled())


def rule_for(slot: str, group: Mapping[str, Any]) -> Any | None:
    """The group's rule for ``slot`` (None for a slot without a base rule, e.g. ``post``)."""
    return next((r for r in RULES if r.slot == slot and r.active(group)), None)


def rule_options() -> dict[str, Any]:
    """Every rule's group keywords with their defaults."""
    return {k: v for r in RULES for k, v in r.options.items()}


def adamw(W: torch.Tensor, g: torch.Tensor, state: dict, lr: float, betas: tuple[float, float],
          eps: float, wd: float, decay: Any) -> None:
    """One torch.optim.AdamW step on W in place (``state``: step, exp_avg, exp_avg_sq)."""
    state["step"] += 1
    t, (b1, b2) = state["step"], betas
    m, s = state["exp_avg"], state["exp_avg_sq"]
    m.lerp_(g, 1 - b1)
    s.mul_(b2).addcmul_(g, g, value=1 - b2)
    denom = (s.sqrt() / math.sqrt(1 - b2**t)).add_(eps)
    if decay.reads_update:
        U = m / denom / (1 - b1**t)
        decay.decay(W, U, lr, wd)
        W.add_(U, alpha=-lr)
        return
    decay.decay(W, m, lr, wd)  # torch.optim.AdamW's exact arithmetic
    W.addcdiv_(m, denom, value=-lr / (1 - b1**t))
