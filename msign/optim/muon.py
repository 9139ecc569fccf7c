"""Muon: momentum orthogonalized by any msign method, AdamW for the other parameters.

References
----------
K. Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024
(KellerJordan/Muon, muon.py); ``torch.optim.Muon``; J. Liu et al., "Muon is scalable for
LLM training" (Moonlight), arXiv:2502.16982, 2025 (the "match_rms_adamw" scale).

For a Muon parameter W with gradient G (one step)::

    B <- mu B + (1 - mu) G                      # momentum, torch.optim.Muon's EMA form
    M <- (1 - mu) G + mu B   (nesterov)  or  B   # = (1 - mu) (G + mu B_sum): same direction
    W <- W (1 - lr wd) - lr s(W) msign(M)

The EMA form differs from the sum form B = mu B + G only by the factor (1 - mu), which
msign ignores, and keeps the state equal to torch.optim.Muon's.  s(W) is the shape scale:
``"original"`` sqrt(max(1, rows/cols)) (Jordan, torch), ``"match_rms_adamw"``
0.2 sqrt(max(rows, cols)) (Moonlight), ``None`` 1.  Parameters with ``use_muon=False``
follow torch.optim.AdamW's rule exactly.
"""

from __future__ import annotations

import fnmatch
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..api import apply_method, as_dtype
from ..gemm import GEMM_MODES
from ..registry import Method, resolve_method
from ..schedules import Schedule

__all__ = ["Muon", "muon_param_groups"]

_ADJUST = ("original", "match_rms_adamw", None)


def _shape_scale(rows: int, cols: int, mode: str | None) -> float:
    if mode == "original":
        return math.sqrt(max(1.0, rows / cols))
    if mode == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return 1.0


def _as_matrices(x: torch.Tensor, group: dict) -> torch.Tensor:
    """The update of one parameter as a stack (B, m, n) of the matrices to orthogonalize.

    - 2-D: itself.  ``split=k`` (fused QKV): k equal row blocks, each orthogonalized alone.
    - >2-D with ``batch_matrices=True`` (stacked heads/experts): a batch over the leading
      dimensions of the trailing (m, n) matrices.
    - >2-D otherwise (conv weights): flattened to (out, in * k_h * k_w ...).
    """
    if x.dim() > 2:
        x = x.reshape(-1, *x.shape[-2:]) if group["batch_matrices"] else x.reshape(x.shape[0], -1)
    if x.dim() == 2:
        k = group["split"]
        x = x.reshape(k, x.shape[0] // k, x.shape[1])
    return x


class Muon(torch.optim.Optimizer):
    """Muon for hidden matrices (``use_muon=True`` groups), AdamW for the rest.

    Parameters
    ----------
    params : iterable of parameters or dicts
        Parameters or param groups; a group with ``use_muon=False`` is trained with AdamW
        (:func:`muon_param_groups` builds both from a model).  Muon groups accept per-group
        ``lr, momentum, nesterov, weight_decay, adjust_lr, split, batch_matrices``; AdamW
        groups ``lr, betas, eps, weight_decay`` (defaults: the ``adamw_*`` arguments).
    lr, momentum, nesterov, weight_decay : Muon hyperparameters (decoupled weight decay).
    msign : str, Schedule or callable
        The orthogonalizer: a name in ``msign.METHODS``, a Schedule, or ``fn(M) -> X`` on one
        2-D update in the parameter's dtype (its result is cast back).
    msign_dtype : torch.dtype or None
        Compute dtype for named methods and schedules (default bf16; None = parameter dtype).
    msign_steps : int, optional
        Steps for the method (default: the method's).
    msign_gemm : {"auto", "native", "emulated"}
        How bf16/fp16 products are computed (see :func:`msign.msign`'s ``gemm``).
    adjust_lr : {"original", "match_rms_adamw", None}
        Shape scale s(W) of the learning rate, computed on the matrix actually orthogonalized.
    adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay : defaults for AdamW groups.
    nonfinite : {"raise", "skip"}
        On a NaN/Inf gradient, before any change: raise ``FloatingPointError`` (default), or
        skip the whole step and count it in ``skipped_steps``.  Parameters and state are
        never touched by such a step.

    Notes
    -----
    Same-shape updates are stacked and orthogonalized in one batched call.  Under an
    initialized ``torch.distributed`` with several ranks (after DDP has averaged the
    gradients), the matrices of each shape are dealt round-robin to the ranks, each rank
    orthogonalizes only its share, and ``all_gather`` returns the results, so every rank
    applies the same update as a single process would.  ``split`` must divide the rows.
    """

    def __init__(self, params: Iterable, lr: float = 0.02, momentum: float = 0.95,
                 nesterov: bool = True, weight_decay: float = 0.0,
                 msign: str | Schedule | Callable = "polar-express",
                 msign_dtype: torch.dtype | None = torch.bfloat16, msign_steps: int | None = None,
                 adjust_lr: str | None = "original", adamw_lr: float = 3e-4,
                 adamw_betas: tuple[float, float] = (0.9, 0.95), adamw_eps: float = 1e-8,
                 adamw_weight_decay: float = 0.0, nonfinite: str = "raise",
                 msign_gemm: str = "auto") -> None:
        for name, v in (("lr", lr), ("weight_decay", weight_decay), ("adamw_lr", adamw_lr),
                        ("adamw_eps", adamw_eps), ("adamw_weight_decay", adamw_weight_decay)):
            if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a finite number >= 0; got {v!r}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1); got {momentum!r}")
        if not all(0 <= b < 1 for b in adamw_betas) or len(adamw_betas) != 2:
            raise ValueError(f"adamw_betas must be two numbers in [0, 1); got {adamw_betas!r}")
        if adjust_lr not in _ADJUST:
            raise ValueError(f"adjust_lr must be one of {_ADJUST}; got {adjust_lr!r}")
        if nonfinite not in ("raise", "skip"):
            raise ValueError(f"nonfinite must be 'raise' or 'skip'; got {nonfinite!r}")
        if isinstance(msign, (str, Schedule, Method)):
            self._method: Method | None = resolve_method(msign)
            self._callable = None
        elif callable(msign):
            self._method, self._callable = None, msign
        else:
            raise TypeError(f"msign must be a method name, a Schedule or a callable; got {msign!r}")
        self._msign_dtype = None if msign_dtype is None else as_dtype(msign_dtype, "msign_dtype")
        self._msign_steps = msign_steps
        if msign_gemm not in GEMM_MODES:
            raise ValueError(f"msign_gemm must be one of {GEMM_MODES}; got {msign_gemm!r}")
        self._msign_gemm = msign_gemm
        self.nonfinite = nonfinite
        self.skipped_steps = 0
        adamw = {"lr": adamw_lr, "betas": tuple(adamw_betas), "eps": adamw_eps,
                 "weight_decay": adamw_weight_decay}
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        groups = [{**adamw, **g} if g.get("use_muon") is False else dict(g) for g in groups]
        defaults = {"lr": lr, "momentum": momentum, "nesterov": nesterov,
                    "weight_decay": weight_decay, "adjust_lr": adjust_lr, "use_muon": True,
                    "split": 1, "batch_matrices": False}
        super().__init__(groups, defaults)
        for g in self.param_groups:
            if g["use_muon"]:
                for p in g["params"]:
                    if p.dim() < 2:
                        raise ValueError(
                            f"Muon groups need parameters with >= 2 dimensions; got shape "
                            f"{tuple(p.shape)} (put it in a use_muon=False group)")
                    if p.dim() == 2 and p.shape[0] % g["split"]:
                        raise ValueError(f"split={g['split']} does not divide {p.shape[0]} rows")

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd["skipped_steps"] = self.skipped_steps
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        self.skipped_steps = int(state_dict.pop("skipped_steps", 0))
        super().load_state_dict(state_dict)

    # -- orthogonalization ---------------------------------------------------------------
    def _orthogonalize(self, stack: torch.Tensor) -> torch.Tensor:
        if self._callable is not None:
            return torch.stack([self._callable(m).to(stack.dtype) for m in stack])
        return apply_method(stack, self._method, self._msign_steps, self._msign_dtype,
                            gemm=self._msign_gemm)

    def _orthogonalize_all(self, updates: list[torch.Tensor]) -> list[torch.Tensor]:
        """msign of every (B_i, m, n) stack, batched by shape, sharded across ranks.

        On CUDA same-shape matrices go through one batched call; on CPU each matrix is its
        own call, because there stacking costs copies and batched GEMMs are slower than a
        loop (experiments/bench_optimizer.py).
        """
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        rank = dist.get_rank() if world > 1 else 0
        buckets: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
        for i, u in enumerate(updates):
            for j in range(u.shape[0]):
                buckets[(tuple(u.shape[1:]), u.dtype, u.device)].append((i, j))
        results: list[list] = [[None] * u.shape[0] for u in updates]
        for items in buckets.values():
            mats = [updates[i][j] for i, j in items]
            mine = mats if world == 1 else mats[rank::world]
            if mats[0].device.type == "cpu":
                res = [self._orthogonalize(m[None])[0] for m in mine]
            else:
                res = list(self._orthogonalize(torch.stack(mine))) if mine else []
            if world > 1:
                per = -(-len(mats) // world)
                local = torch.zeros(per, *mats[0].shape, dtype=mats[0].dtype,
                                    device=mats[0].device)
                if res:
                    local[: len(res)] = torch.stack(res)
                gathered = [torch.empty_like(local) for _ in range(world)]
                dist.all_gather(gathered, local)
                res = [gathered[k % world][k // world] for k in range(len(mats))]
            for (i, j), x in zip(items, res, strict=True):
                results[i][j] = x
        # A single matrix needs no stacking copy (the common case: a plain 2-D weight).
        return [r[0][None] if len(r) == 1 else torch.stack(r) for r in results]

    # -- step ----------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        if any(gr.is_sparse for gr in grads):
            raise RuntimeError("Muon does not support sparse gradients")
        if grads and not bool(torch.stack([gr.isfinite().all() for gr in grads]).all()):
            if self.nonfinite == "raise":
                raise FloatingPointError(
                    "a gradient contains NaN or Inf; parameters and optimizer state are "
                    "unchanged (pass nonfinite='skip' to skip such steps)")
            self.skipped_steps += 1
            return loss

        muon_params, updates = [], []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["use_muon"]:
                    u = self._muon_momentum(p, group)
                    muon_params.append((p, group))
                    updates.append(_as_matrices(u, group))
                else:
                    self._adamw(p, group)
        for (p, group), X in zip(muon_params, self._orthogonalize_all(updates), strict=True):
            m, n = X.shape[-2:]
            p.mul_(1 - group["lr"] * group["weight_decay"])
            p.add_(X.reshape(p.shape), alpha=-group["lr"] * _shape_scale(m, n, group["adjust_lr"]))
        return loss

    def _muon_momentum(self, p: torch.Tensor, group: dict) -> torch.Tensor:
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        buf, g, mu = state["momentum_buffer"], p.grad, group["momentum"]
        buf.lerp_(g, 1 - mu)
        return g.lerp(buf, mu) if group["nesterov"] else buf.clone()

    def _adamw(self, p: torch.Tensor, group: dict) -> None:
        state = self.state[p]
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        t, (b1, b2), g = state["step"], group["betas"], p.grad
        p.mul_(1 - group["lr"] * group["weight_decay"])
        state["exp_avg"].lerp_(g, 1 - b1)
        state["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - b2**t)).add_(group["eps"])
        p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / (1 - b1**t))


HEAD_NAMES = ("lm_head", "head", "output", "classifier", "fc_out")


def muon_param_groups(model: nn.Module, *, muon: Sequence[str] = (), adamw: Sequence[str] = (),
                      head_names: Sequence[str] = HEAD_NAMES) -> list[dict[str, Any]]:
    """Split a model's parameters into a Muon group and an AdamW group.

    Rules, in order (first match wins; ``muon``/``adamw`` are fnmatch patterns on the full
    parameter name, e.g. ``"blocks.*.attn.qkv.weight"``):

    1. a name matching ``adamw`` -> AdamW; a name matching ``muon`` -> Muon;
    2. parameters with fewer than 2 dimensions (biases, norm gains) -> AdamW;
    3. ``nn.Embedding`` weights, and any parameter that *is* an embedding weight (a tied
       output head) -> AdamW;
    4. weights of a module whose own name is in ``head_names`` (the output head) -> AdamW;
    5. every other parameter with >= 2 dimensions (linear, conv) -> Muon.

    Each parameter lands in exactly one group; frozen parameters are left out.  Returns
    ``[{"params": [...], "use_muon": True, "names": [...]}, {... "use_muon": False}]``.
    """
    embed_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    head_ids = set()
    for mod_name, mod in model.named_modules():
        if mod_name.split(".")[-1] in head_names:
            head_ids.update(id(p) for p in mod.parameters(recurse=False))
    groups = {True: ([], []), False: ([], [])}
    for name, p in model.named_parameters():  # shared (tied) tensors are listed once
        if not p.requires_grad:
            continue
        if any(fnmatch.fnmatchcase(name, pat) for pat in adamw):
            use = False
        elif any(fnmatch.fnmatchcase(name, pat) for pat in muon):
            use = True
        else:
            use = p.dim() >= 2 and id(p) not in embed_ids and id(p) not in head_ids
        groups[use][0].append(p)
        groups[use][1].append(name)
    return [{"params": groups[u][0], "names": groups[u][1], "use_muon": u} for u in (True, False)
            if groups[u][0]]
