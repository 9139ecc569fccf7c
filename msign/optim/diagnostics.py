"""What Muon did to each matrix, as plain numbers to log (TensorBoard, W&B, JSONL).

With ``Muon(..., diagnostics=True)``, after every step ``opt.diagnostics`` is a flat dict:

- ``update_rms/<param>``: the root mean square of the update subtracted from the parameter
  before the learning rate, s(W) msign(M) (after NorMuon where it is on);
- ``orth_error/<param>``: ``max_i |sigma_i - 1|`` of msign(M) over the parameter's matrices, from
  their Gram matrices X X^T (one product and an eigendecomposition of the small side);
- ``matmuls/<param>``: matrix products per orthogonalized matrix, as run (the mean steps
  an adaptive ``msign_budget`` chose);
- ``skipped_fraction``: the share of this process's steps skipped for a non-finite gradient;
- ``qk/max_logit`` and ``qk/clipped_heads``: where QK-clip is on, written by
  :func:`msign.optim.qk_clip` when given ``record=opt.diagnostics``.

Under torch.distributed each matrix's numbers are computed by its owner rank, so a rank
holds the entries of the matrices it owns.

Examples
--------
>>> import json, torch
>>> from torch import nn
>>> from msign.optim import Muon
>>> w = nn.Parameter(torch.randn(8, 4))
>>> opt = Muon([("w", w)], msign="svd", msign_dtype=torch.float64, diagnostics=True)
>>> w.grad = torch.randn(8, 4)
>>> opt.step()
>>> sorted(opt.diagnostics)
['matmuls/w', 'orth_error/w', 'skipped_fraction', 'update_rms/w']
>>> opt.diagnostics["orth_error/w"] < 1e-6
True
>>> line = json.dumps({"step": 1, **opt.diagnostics})   # one JSONL record
"""

from __future__ import annotations

import torch

__all__ = ["orth_error", "update_rms"]


def orth_error(blocks: torch.Tensor) -> float:
    """``max |sigma_i - 1|`` of a (B, m, n) stack of matrices, from the Gram matrix of the
    smaller side (sigma_i^2 are its eigenvalues)."""
    x = blocks.double()
    gram = x @ x.mT if x.shape[-2] <= x.shape[-1] else x.mT @ x
    lam = torch.linalg.eigvalsh(gram).clamp_min(0)
    return float((lam.sqrt() - 1).abs().max()) if lam.numel() else 0.0


def update_rms(update: torch.Tensor) -> float:
    return float(update.double().square().mean().sqrt()) if update.numel() else 0.0
