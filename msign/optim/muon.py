"""Muon: momentum orthogonalized by any msign method, AdamW for the other parameters.

References
----------
K. Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024
(KellerJordan/Muon, muon.py); ``torch.optim.Muon``; J. Liu et al., "Muon is scalable for
LLM training" (Moonlight), arXiv:2502.16982, 2025 (the "match_rms_adamw" scale);
Z. Li et al., "NorMuon", arXiv:2510.05491, 2025.

For a Muon parameter W with gradient G (one step), per orthogonalized matrix of its layout::

    B <- mu B + (1 - mu) G                      # momentum, torch.optim.Muon's EMA form
    M <- (1 - mu) G + mu B   (nesterov)  or  B   # = (1 - mu) (G + mu B_sum): same direction
    O <- s(W) msign(M)                           # then the post-rule (NorMuon), if any
    W <- W (1 - lr wd) - lr O                    # the decay rule (cautious: where W O > 0)

The EMA form differs from the sum form B = mu B + G only by the factor (1 - mu), which
msign ignores, and keeps the state equal to torch.optim.Muon's.  ``use_muon=False`` groups
follow torch.optim.AdamW's rule exactly.  Rules: :mod:`msign.optim.rules`; group options:
:mod:`~msign.optim.options`; matrix views: :mod:`~msign.optim.layout`; engine calls:
:mod:`~msign.optim.dispatch`; torch.distributed: :mod:`~msign.optim.sharding`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from ..schedules import Schedule, get_schedule
from . import options, rules, sharding
from .dispatch import Work, orthogonalize
from .layout import Layout

__all__ = ["Muon", "TORCH_MUON_DEFAULTS"]

#: torch.optim.Muon's defaults: ``Muon(params, **TORCH_MUON_DEFAULTS)`` is its algorithm.
TORCH_MUON_DEFAULTS: dict[str, Any] = {
    "lr": 1e-3, "weight_decay": 0.1, "momentum": 0.95, "nesterov": True,
    "ns_coefficients": get_schedule("jordan").coeffs[0], "eps": 1e-7, "ns_steps": 5,
    "adjust_lr_fn": None,
}


def _local(t: torch.Tensor) -> torch.Tensor:
    """This rank's part of a tensor: the local shard of a DTensor, else the tensor."""
    return t.to_local() if sharding.is_dtensor(t) else t


class Muon(torch.optim.Optimizer):
    """Muon for hidden matrices (``use_muon=True`` groups), AdamW for the rest.

    The first nine parameters are torch.optim.Muon's, in its order and with its meaning, so
    a script changes only the import (:data:`TORCH_MUON_DEFAULTS` gives torch's defaults,
    which differ from msign's in lr, weight_decay, the method and eps).

    Parameters
    ----------
    params : iterable of parameters, (name, parameter) pairs or dicts
        Parameters or param groups; a group with ``use_muon=False`` is trained with AdamW
        (:func:`muon_param_groups` builds both from a model, with layouts).  Every keyword
        below except ``nonfinite`` and ``layouts`` may be set per group, and a group's value
        overrides the default.
    lr : float or 1-element Tensor
        Learning rate (a Tensor is read each step).
    weight_decay : float
        Decoupled weight decay: W <- W (1 - lr wd).
    momentum, nesterov : float in [0, 1), bool
        torch.optim.Muon's momentum (EMA form) and its Nesterov variant.
    ns_coefficients : tuple of floats, or a list of per-step tuples, optional
        torch.optim.Muon's Newton-Schulz coefficients as the orthogonalizer (``ns_steps``
        steps, default 5).  A group names its orthogonalizer by this or ``msign``, not both.
    eps : float, optional
        Floor of the normalization G / max(||G||_F, eps) of schedule methods (torch: 1e-7;
        default 0: every nonzero G is normalized exactly).
    ns_steps : int, optional
        Steps of the orthogonalizer (default: the method's; 5 with ``ns_coefficients``).
    adjust_lr_fn : {None, "original", "match_rms_adamw", "unscaled", "keller_jordan"}
        Shape scale s(W) on each orthogonalized matrix (out, in): sqrt(max(1, out/in))
        ("original" = None, Jordan and torch), 0.2 sqrt(max(out, in)) (Moonlight), 1, or
        muon.py's sqrt(max(1, size(-2)/size(-1))) of the stored tensor (conv: kh/kw).
    msign : str, Schedule or callable, optional
        The orthogonalizer: a name in ``msign.METHODS``, a Schedule, or ``fn(M) -> X`` on one
        2-D update in the parameter's dtype (its result is cast back).  Default
        "polar-express".
    msign_dtype, msign_gemm : torch.dtype or None, {"auto", "native", "emulated"}
        Compute dtype of named methods and schedules (default bf16; None = the parameter's)
        and how bf16/fp16 products are computed (:func:`msign.msign`'s ``gemm``).
    msign_budget : int, optional
        At most this many products per matrix, its steps chosen from its spectrum (adaptive).
    normuon_beta2, normuon_eps : float in [0, 1) or None, float
        NorMuon (:class:`msign.optim.rules.NorMuon`) with this second-moment decay; None off.
    cautious_weight_decay : bool
        Decay only where W and the update agree in sign (both sides).
    adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay : defaults for AdamW groups.
    nonfinite : {"raise", "skip"}
        On a NaN/Inf gradient (on any rank), before any change: raise ``FloatingPointError``
        (default), or skip the whole step and count it in ``skipped_steps``.
    layouts : mapping of fnmatch pattern -> Layout, optional
        Layouts by parameter name (needs named parameters, as :func:`muon_param_groups`
        gives); they override a group's ``layouts``/``layout``/``split``.
    diagnostics : bool
        Record per matrix what the step did in ``opt.diagnostics`` (a dict of floats, see
        :mod:`msign.optim.diagnostics`).

    Raises
    ------
    TypeError
        A removed keyword (``msign_steps``, ``adjust_lr``, ``batch_matrices``: the message
        names the replacement), complex parameters, an option of the wrong type.
    ValueError
        An option out of range, an unknown method, a layout that does not fit.

    Notes
    -----
    Layouts (:class:`msign.optim.Layout`) are fixed here, per parameter: a group's ``layouts``
    (from :func:`muon_param_groups`), else its ``layout``, else the inferred one (2-D as is,
    3-D a batch of matrices, conv flattened), cut into ``split=k`` row blocks if given.

    Under torch.distributed each matrix is orthogonalized by one owner rank
    (:mod:`msign.optim.sharding`); ``last_step_bytes_sent`` is what this rank sent last step.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from msign.optim import muon_param_groups
    >>> model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    >>> opt = Muon(muon_param_groups(model), lr=0.02, msign="jordan")
    >>> model(torch.randn(5, 8)).square().mean().backward()
    >>> opt.step()
    """

    def __init__(self, params: Iterable, lr: float | torch.Tensor = 0.02,
                 weight_decay: float = 0.0, momentum: float = 0.95, nesterov: bool = True,
                 ns_coefficients: Any = None, eps: float | None = None,
                 ns_steps: int | None = None, adjust_lr_fn: str | None = "original", *,
                 msign: str | Schedule | Callable | None = None,
                 msign_dtype: torch.dtype | None = torch.bfloat16, msign_gemm: str = "auto",
                 msign_budget: int | None = None,
                 normuon_beta2: float | None = None, normuon_eps: float = 1e-8,
                 cautious_weight_decay: bool = False, adamw_lr: float = 3e-4,
                 adamw_betas: tuple[float, float] = (0.9, 0.95), adamw_eps: float = 1e-8,
                 adamw_weight_decay: float = 0.0, nonfinite: str = "raise",
                 layouts: Mapping[str, Layout] | None = None, diagnostics: bool = False,
                 **removed: Any) -> None:
        options.refuse_removed(removed, "Muon()")
        if nonfinite not in ("raise", "skip"):
            raise ValueError(f"nonfinite must be 'raise' or 'skip'; got {nonfinite!r}")
        self.nonfinite = nonfinite
        self._name_layouts = dict(layouts or {})
        self._adamw_defaults = {"lr": adamw_lr, "betas": tuple(adamw_betas), "eps": adamw_eps,
                                "weight_decay": adamw_weight_decay}
        self._methods = options.Methods()
        self.last_step_bytes_sent = 0
        self.diagnostics: dict[str, float] | None = {} if diagnostics else None
        self._steps = 0  # steps this process attempted (for diagnostics' skipped_fraction)
        defaults = options.pick_orthogonalizer({
            "lr": lr, "weight_decay": weight_decay, "momentum": momentum, "nesterov": nesterov,
            "ns_coefficients": ns_coefficients, "eps": eps, "ns_steps": ns_steps,
            "adjust_lr_fn": adjust_lr_fn, "use_muon": True, "msign": msign,
            "msign_dtype": msign_dtype, "msign_gemm": msign_gemm, "msign_budget": msign_budget,
            "normuon_beta2": normuon_beta2, "normuon_eps": normuon_eps,
            "cautious_weight_decay": cautious_weight_decay, "skipped_steps": 0})
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (Muon unless ``use_muon=False``), with its checks and layouts."""
        if isinstance(param_group, dict):
            options.refuse_removed(param_group, "param group")
            if param_group.get("use_muon") is False:
                param_group = {**self._adamw_defaults, **param_group}
            param_group = options.pick_orthogonalizer(param_group)
        super().add_param_group(param_group)
        try:
            options.check_group(self.param_groups[-1], len(self.param_groups) - 1,
                                self._methods, self._name_layouts)
        except Exception:
            self.param_groups.pop()
            raise

    @property
    def skipped_steps(self) -> int:
        """Steps skipped for a non-finite gradient (``nonfinite="skip"``); in the state dict."""
        return max((g.get("skipped_steps", 0) for g in self.param_groups), default=0)

    def __getstate__(self) -> dict[str, Any]:
        # Optimizer keeps defaults, state and groups only; these must survive deepcopy too.
        return {**super().__getstate__(), "nonfinite": self.nonfinite,
                "_name_layouts": self._name_layouts, "_adamw_defaults": self._adamw_defaults,
                "_methods": options.Methods(), "last_step_bytes_sent": 0,
                "diagnostics": self.diagnostics, "_steps": self._steps}

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        for g in sd["param_groups"]:
            g.pop("layouts", None)  # fixed at construction: the loading optimizer keeps its own
            g["msign"] = options.portable_msign(g.get("msign"))
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of this class or of torch.optim.Muon (and ours into torch's);
        each saved group is completed by :func:`msign.optim.options.merge_saved`."""
        sd = dict(state_dict)
        legacy_skipped = int(sd.pop("skipped_steps", 0))
        saved = sd["param_groups"]  # extra saved groups stay: torch's count check fires
        sd["param_groups"] = [options.merge_saved(dict(g), cur, legacy_skipped) for g, cur
                              in zip(saved, self.param_groups, strict=False)] + \
            [dict(g) for g in saved[len(self.param_groups):]]
        super().load_state_dict(sd)
        self._methods = options.Methods()

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        active = self._active()
        if any(p.grad.is_sparse for _, p, _, _ in active):
            raise RuntimeError("Muon does not support sparse gradients")
        self._steps += 1
        if self.diagnostics is not None:
            self.diagnostics.clear()
            self.diagnostics["skipped_fraction"] = 0.0
        if not sharding.all_finite([_local(p.grad) for _, p, _, _ in active]):
            if self.nonfinite == "raise":
                raise FloatingPointError(
                    "a gradient contains NaN or Inf; parameters and optimizer state are "
                    "unchanged (pass nonfinite='skip' to skip such steps)")
            for g in self.param_groups:
                g["skipped_steps"] = g.get("skipped_steps", 0) + 1
            if self.diagnostics is not None:
                self.diagnostics["skipped_fraction"] = self.skipped_steps / self._steps
            return loss
        for g, p, _, _ in active:
            if not g["use_muon"]:
                self._adamw(g, p)
        muon = [a for a in active if a[0]["use_muon"]]
        if muon:
            self._muon_step(muon)
        return loss

    def _active(self) -> list[tuple[dict, torch.Tensor, Layout | None, str]]:
        """(group, parameter, layout, name) of every parameter with a gradient."""
        out = []
        for gi, g in enumerate(self.param_groups):
            n = len(g["params"])
            names = g.get("param_names") or [f"{gi}.{i}" for i in range(n)]
            out += [(g, p, lay, name) for p, lay, name in zip(
                g["params"], g.get("layouts") or [None] * n, names, strict=True)
                if p.grad is not None]
        return out

    def _adamw(self, g: dict, p: torch.Tensor) -> None:
        state = self.state[p]
        if "step" not in state:
            state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
        local = {"step": state["step"], "exp_avg": _local(state["exp_avg"]),
                 "exp_avg_sq": _local(state["exp_avg_sq"])}
        lr = float(g["lr"].item()) if isinstance(g["lr"], torch.Tensor) else float(g["lr"])
        rules.adamw(_local(p), _local(p.grad), local, lr, g["betas"], g["eps"],
                    g["weight_decay"], rules.rule_for("decay", g))
        state["step"] = local["step"]

    def _work(self, g: dict, p: torch.Tensor, lay: Layout, name: str) -> Work:
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        post = rules.rule_for("post", g)
        if post is not None and post.state_key not in state:
            state[post.state_key] = torch.zeros(lay.rows(p.shape), dtype=p.dtype,
                                                device=_local(p).device)
        method, steps = self._methods.resolve(g)
        return Work(g, p, lay, lay.scales(p.shape, g["adjust_lr_fn"]), method, steps, post,
                    state[post.state_key] if post is not None else None, self.diagnostics, name)

    def _muon_step(self, muon: list[tuple[dict, torch.Tensor, Layout, str]]) -> None:
        jobs, items = [], []
        for g, p, lay, name in muon:
            w = self._work(g, p, lay, name)
            u = rules.rule_for("momentum", g).direction(
                _local(self.state[p]["momentum_buffer"]), _local(p.grad), g)
            jobs.append(w)
            spec = sharding.spec_of(p, lay.batch_axes(p.dim()), w.post is not None) \
                if sharding.is_dtensor(p) else None
            items.append(sharding.Item(u, p.shape, spec,
                                       0 if w.post is None else w.post_state.numel(), w.cost))
        results, aux, self.last_step_bytes_sent = sharding.exchange(
            items, lambda pairs: orthogonalize([(jobs[i], u) for i, u in pairs]))
        for w, upd, state in zip(jobs, results, aux, strict=True):
            if state is not None:
                w.post_state.copy_(state)
            g = w.group
            # A Tensor lr stays a tensor, as in torch.optim.Muon: equal bit for bit either way.
            lr = g["lr"].squeeze() if isinstance(g["lr"], torch.Tensor) and g["lr"].dim() \
                else g["lr"]
            rules.rule_for("decay", g).decay(W := _local(w.param), upd, lr, g["weight_decay"])
            W.add_(upd, alpha=-(lr * w.scales[0]) if w.uniform else -lr)
