"""The update rules around msign: momentum, NorMuon, (cautious) weight decay, AdamW.

Each is a function on tensors, so a rule is readable next to its formula and testable
against a float64 transcription of it.  ``W`` is a parameter (or this rank's shard of it),
``U`` the update that is subtracted (lr excluded).

- Muon momentum (torch.optim.Muon's EMA form): B <- mu B + (1 - mu) G;
  M = (1 - mu) G + mu B (Nesterov) or B.
- NorMuon (arXiv 2510.05491; dion, modded-nanogpt): for O = s(W) msign(M) of one (out, in)
  matrix, v <- beta2 v + (1 - beta2) mean_j O_ij^2 (one entry per row),
  O' = O / (sqrt(v) + eps), then O' rescaled to ||O||_F.
- Weight decay: W <- W (1 - lr wd); cautious (modded-nanogpt #43/#50, dion ``cautious_wd``):
  W <- W - lr wd (W * 1[W * U > 0]), decaying only where W and U point the same way.
- AdamW: torch.optim.AdamW's rule (bias-corrected moments, decoupled decay).
"""

from __future__ import annotations

import math

import torch

__all__ = ["muon_momentum", "normuon", "decay", "adamw"]


def muon_momentum(buf: torch.Tensor, g: torch.Tensor, mu: float, nesterov: bool) -> torch.Tensor:
    """Update the momentum buffer in place and return the direction to orthogonalize."""
    buf.lerp_(g, 1 - mu)
    return g.lerp(buf, mu) if nesterov else buf.clone()


def normuon(upd: torch.Tensor, v: torch.Tensor, beta2: float, eps: float) -> torch.Tensor:
    """NorMuon on a stack ``upd`` = O of shape (B, out, in); ``v`` (B, out) updated in place.

    Computed in float32 (float64 for float64 O); returns O's dtype.
    """
    wide = torch.float64 if upd.dtype == torch.float64 else torch.float32
    Of = upd.to(wide)
    v.mul_(beta2).add_(Of.square().mean(dim=-1).to(v.dtype), alpha=1 - beta2)
    On = Of / (v.to(wide).sqrt() + eps).unsqueeze(-1)
    norm_o = torch.linalg.vector_norm(Of, dim=(-2, -1), keepdim=True)
    norm_n = torch.linalg.vector_norm(On, dim=(-2, -1), keepdim=True)
    # A zero O (zero momentum) stays zero instead of 0/0.
    On = On * (norm_o / norm_n.clamp_min(torch.finfo(wide).tiny))
    return On.to(upd.dtype)


def decay(W: torch.Tensor, U: torch.Tensor, lr: float | torch.Tensor, wd: float,
          cautious: bool) -> None:
    """Decoupled weight decay of W in place (before W -= lr U); cautious masks by W U > 0."""
    if wd == 0:
        return
    if not cautious:
        W.mul_(1 - lr * wd)
        return
    mask = (W * U > 0).to(W.dtype)
    W.addcmul_(W, mask, value=-float(lr) * wd)


def adamw(W: torch.Tensor, g: torch.Tensor, state: dict, lr: float, betas: tuple[float, float],
          eps: float, wd: float, cautious: bool) -> None:
    """One torch.optim.AdamW step on W in place (``state``: step, exp_avg, exp_avg_sq)."""
    state["step"] += 1
    t, (b1, b2) = state["step"], betas
    m, s = state["exp_avg"], state["exp_avg_sq"]
    m.lerp_(g, 1 - b1)
    s.mul_(b2).addcmul_(g, g, value=1 - b2)
    denom = (s.sqrt() / math.sqrt(1 - b2**t)).add_(eps)
    if cautious:
        U = m / denom / (1 - b1**t)
        decay(W, U, lr, wd, True)
        W.add_(U, alpha=-lr)
        return
    decay(W, m, lr, wd, False)
    W.addcdiv_(m, denom, value=-lr / (1 - b1**t))
