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
    O <- s(W) msign(M)                           # (NorMuon: row-normalized, norm kept)
    W <- W (1 - lr wd) - lr O                    # (cautious: decay only where W O > 0)

The EMA form differs from the sum form B = mu B + G only by the factor (1 - mu), which
msign ignores, and keeps the state equal to torch.optim.Muon's.  Parameters with
``use_muon=False`` follow torch.optim.AdamW's rule exactly.  The rules are in
:mod:`msign.optim.rules`, the matrix views in :mod:`msign.optim.layout`, who computes what
under torch.distributed in :mod:`msign.optim.sharding`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
import torch.distributed as dist

from ..api import apply_method, as_dtype
from ..gemm import GEMM_MODES
from ..registry import Method, resolve_method
from ..schedules import Schedule, check_steps
from . import rules, sharding
from .layout import ADJUST_MODES, Layout, infer

__all__ = ["Muon", "TORCH_MUON_DEFAULTS"]

#: torch.optim.Muon's defaults: ``Muon(params, **TORCH_MUON_DEFAULTS)`` is its algorithm.
TORCH_MUON_DEFAULTS: dict[str, Any] = {
    "lr": 1e-3, "weight_decay": 0.1, "momentum": 0.95, "nesterov": True,
    "ns_coefficients": (3.4445, -4.775, 2.0315), "eps": 1e-7, "ns_steps": 5,
    "adjust_lr_fn": None,
}
_UNSET: Any = object()
_TORCH_ADJUST = (None, "original", "match_rms_adamw")


def _local(t: torch.Tensor) -> torch.Tensor:
    """This rank's part of a tensor: the local shard of a DTensor, else the tensor."""
    return t.to_local() if sharding.is_fsdp2(t) else t


def _scalar(v: Any) -> float:
    return float(v.item()) if isinstance(v, torch.Tensor) else float(v)


def _lr(v: Any) -> float | torch.Tensor:
    """A group's lr as torch.optim.Muon uses it: a float, or a 0-dim tensor."""
    return v.squeeze() if isinstance(v, torch.Tensor) and v.dim() else v


def _portable(msign: Any) -> Any:
    """What a state dict stores for a group's ``msign``: a name as is, a Schedule as its
    dict (so ``torch.load(weights_only=True)`` reads it), a callable (closures do not
    pickle) as a placeholder that load_state_dict resolves to the loader's own callable."""
    if msign is None or isinstance(msign, str):
        return msign
    if isinstance(msign, Schedule):
        return msign.to_dict()
    name = msign.name if isinstance(msign, Method) else getattr(msign, "__qualname__", "fn")
    return f"callable:{name}"


class Muon(torch.optim.Optimizer):
    """Muon for hidden matrices (``use_muon=True`` groups), AdamW for the rest.

    The first nine parameters are torch.optim.Muon's, in its order and with its meaning, so
    a script changes only the import (see :data:`TORCH_MUON_DEFAULTS` for torch's defaults,
    which differ from msign's in lr, weight_decay, the method and eps).

    Parameters
    ----------
    params : iterable of parameters, (name, parameter) pairs or dicts
        Parameters or param groups; a group with ``use_muon=False`` is trained with AdamW
        (:func:`muon_param_groups` builds both from a model, with layouts).  Every keyword
        below except ``nonfinite`` and ``layouts`` may also be set per group.
    lr : float or 1-element Tensor
        Learning rate (a Tensor is read each step).
    weight_decay : float
        Decoupled weight decay: W <- W (1 - lr wd).
    momentum, nesterov : float in [0, 1), bool
    ns_coefficients : tuple of floats, or a list of per-step tuples, optional
        torch.optim.Muon's Newton-Schulz coefficients: the orthogonalizer becomes this
        schedule (``ns_steps`` steps, default 5).  Exclusive with ``msign``.
    eps : float, optional
        Floor of the normalization G / max(||G||_F, eps) of schedule methods (torch: 1e-7;
        default 0: every nonzero G is normalized exactly).
    ns_steps : int, optional
        Steps of the orthogonalizer (default: the method's; 5 with ``ns_coefficients``).
    adjust_lr_fn : {None, "original", "match_rms_adamw"}
        torch.optim.Muon's name for ``adjust_lr``; here too ``None`` means "original".
    msign : str, Schedule or callable, optional
        The orthogonalizer: a name in ``msign.METHODS``, a Schedule, or ``fn(M) -> X`` on one
        2-D update in the parameter's dtype (its result is cast back).  Default
        "polar-express".
    msign_dtype : torch.dtype or None
        Compute dtype for named methods and schedules (default bf16; None = parameter dtype).
    msign_steps : int, optional
        Alias of ``ns_steps``.
    msign_gemm : {"auto", "native", "emulated"}
        How bf16/fp16 products are computed (see :func:`msign.msign`'s ``gemm``).
    adjust_lr : {"original", "match_rms_adamw", "unscaled"}
        Shape scale s(W) on each orthogonalized matrix (out, in): sqrt(max(1, out/in))
        (Jordan, torch), 0.2 sqrt(max(out, in)) (Moonlight), or 1.  ``None`` is refused: in
        torch's ``adjust_lr_fn`` it means "original", so it cannot silently mean 1 here.
    normuon_beta2 : float in [0, 1), optional
        NorMuon (:func:`msign.optim.rules.normuon`) with this second-moment decay; None off.
    normuon_eps : float
        NorMuon's epsilon.
    cautious_weight_decay : bool
        Decay only the coordinates where W and the update agree in sign (both sides).
    adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay : defaults for AdamW groups.
    nonfinite : {"raise", "skip"}
        On a NaN/Inf gradient (on any rank), before any change: raise ``FloatingPointError``
        (default), or skip the whole step and count it in ``skipped_steps``.
    layouts : mapping of fnmatch pattern -> Layout, optional
        Layouts by parameter name (needs named parameters, as :func:`muon_param_groups`
        gives); they override a group's ``layouts``/``layout``/``split``/``batch_matrices``.

    Notes
    -----
    Layouts (:class:`msign.optim.Layout`) are fixed here, per parameter: a group's
    ``layouts`` list (from :func:`muon_param_groups`), else its ``layout``, else the legacy
    ``split=k`` (k equal row blocks) / ``batch_matrices=True`` (3-D stacks), else by shape
    (2-D as is, >2-D flattened to (out, in * ...)).  A layout that does not fit its
    parameter is a ValueError naming it.

    Under torch.distributed (:mod:`msign.optim.sharding`): plain parameters are assumed
    replicated with averaged gradients (DDP); each matrix is orthogonalized on one owner
    rank and all-gathered.  FSDP2 parameters (DTensor, Shard(0)) are gathered to their
    owner by all-to-all and scattered back; the AdamW side works on local shards.  Other
    DTensor placements raise at construction.  ``last_step_bytes_sent`` is what this rank
    sent in the last step's exchange.

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
                 ns_steps: int | None = None, adjust_lr_fn: str | None = _UNSET, *,
                 msign: str | Schedule | Callable | None = None,
                 msign_dtype: torch.dtype | None = torch.bfloat16,
                 msign_steps: int | None = None, msign_gemm: str = "auto",
                 adjust_lr: str = _UNSET, normuon_beta2: float | None = None,
                 normuon_eps: float = 1e-8, cautious_weight_decay: bool = False,
                 adamw_lr: float = 3e-4, adamw_betas: tuple[float, float] = (0.9, 0.95),
                 adamw_eps: float = 1e-8, adamw_weight_decay: float = 0.0,
                 nonfinite: str = "raise", layouts: Mapping[str, Layout] | None = None) -> None:
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if adjust_lr is not _UNSET and adjust_lr_fn is not _UNSET:
            raise ValueError("give adjust_lr (msign's name) or adjust_lr_fn (torch's), not both")
        if adjust_lr is None:
            raise ValueError(
                "adjust_lr=None is ambiguous: torch.optim.Muon's adjust_lr_fn=None means "
                "'original'. Pass 'original', 'match_rms_adamw' or 'unscaled' (scale 1).")
        adjust = "original" if adjust_lr is _UNSET and adjust_lr_fn is _UNSET else (
            adjust_lr if adjust_lr is not _UNSET else adjust_lr_fn)
        if msign_steps is not None and ns_steps is not None and msign_steps != ns_steps:
            raise ValueError(f"msign_steps={msign_steps} and ns_steps={ns_steps} disagree")
        if nonfinite not in ("raise", "skip"):
            raise ValueError(f"nonfinite must be 'raise' or 'skip'; got {nonfinite!r}")
        self.nonfinite = nonfinite
        self._name_layouts = dict(layouts or {})
        self._adamw_defaults = {"lr": adamw_lr, "betas": tuple(adamw_betas), "eps": adamw_eps,
                                "weight_decay": adamw_weight_decay}
        self._methods: dict[tuple, Method] = {}
        self.last_step_bytes_sent = 0
        defaults = {
            "lr": lr, "weight_decay": weight_decay, "momentum": momentum, "nesterov": nesterov,
            "ns_coefficients": ns_coefficients, "eps": eps,
            "ns_steps": ns_steps if ns_steps is not None else msign_steps,
            "adjust_lr_fn": adjust, "use_muon": True, "msign": msign, "msign_dtype": msign_dtype,
            "msign_gemm": msign_gemm, "normuon_beta2": normuon_beta2, "normuon_eps": normuon_eps,
            "cautious_weight_decay": cautious_weight_decay, "skipped_steps": 0,
        }
        super().__init__(params, defaults)

    # -- groups and their checks ------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (Muon unless ``use_muon=False``), with its checks and layouts."""
        if isinstance(param_group, dict) and param_group.get("use_muon") is False:
            param_group = {**self._adamw_defaults, **param_group}
        if isinstance(param_group, dict) and "adjust_lr" in param_group:
            param_group = dict(param_group)
            param_group["adjust_lr_fn"] = param_group.pop("adjust_lr")
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._check_group(group, len(self.param_groups) - 1)
        except Exception:
            self.param_groups.pop()
            raise

    def _pname(self, group: dict, i: int, gi: int) -> str:
        names = group.get("param_names")
        return repr(names[i]) if names else f"param_groups[{gi}]['params'][{i}]"

    def _check_group(self, g: dict, gi: int) -> None:
        lr = g["lr"]
        if isinstance(lr, torch.Tensor):
            if lr.numel() != 1:
                raise ValueError("Tensor lr must be 1-element")
        if not (math.isfinite(_scalar(lr)) and _scalar(lr) >= 0):
            raise ValueError(f"lr must be a finite number >= 0; got {lr!r}")
        wd = g["weight_decay"]
        if not (isinstance(wd, (int, float)) and math.isfinite(wd) and wd >= 0):
            raise ValueError(f"weight_decay must be a finite number >= 0; got {wd!r}")
        if not isinstance(g["cautious_weight_decay"], bool):
            raise TypeError(f"cautious_weight_decay must be a bool; got "
                            f"{g['cautious_weight_decay']!r}")
        for i, p in enumerate(g["params"]):
            if p.is_complex():
                raise TypeError(
                    f"Muon does not support complex parameters: {self._pname(g, i, gi)} is "
                    f"{p.dtype}; train torch.view_as_real(p) if real and imaginary parts "
                    "are meant to be separate parameters")
            sharding.check_placement(p, self._pname(g, i, gi))
        if g["use_muon"]:
            self._check_muon_group(g, gi)
        else:
            b = g["betas"]
            if not (len(b) == 2 and all(0 <= x < 1 for x in b)):
                raise ValueError(f"adamw betas must be two numbers in [0, 1); got {b!r}")
            if not (isinstance(g["eps"], (int, float)) and g["eps"] >= 0):
                raise ValueError(f"adamw eps must be a number >= 0; got {g['eps']!r}")

    def _check_muon_group(self, g: dict, gi: int) -> None:
        mu = g["momentum"]
        if not (isinstance(mu, (int, float)) and 0 <= mu < 1):
            raise ValueError(f"momentum must lie in [0, 1); got {mu!r} (param group {gi})")
        if not isinstance(g["nesterov"], bool):
            raise TypeError(f"nesterov must be a bool; got {g['nesterov']!r}")
        if g["adjust_lr_fn"] not in (*_TORCH_ADJUST, *ADJUST_MODES):
            raise ValueError(f"Adjust learning rate function {g['adjust_lr_fn']} is not "
                             f"supported: adjust_lr (torch: adjust_lr_fn) must be one of "
                             f"{ADJUST_MODES}")
        if g["ns_steps"] is not None:
            check_steps(g["ns_steps"])
        if g["eps"] is not None and not (isinstance(g["eps"], (int, float)) and g["eps"] >= 0):
            raise ValueError(f"eps must be None or a number >= 0; got {g['eps']!r}")
        if g["msign_gemm"] not in GEMM_MODES:
            raise ValueError(f"msign_gemm must be one of {GEMM_MODES}; got {g['msign_gemm']!r}")
        if g["msign_dtype"] is not None:
            g["msign_dtype"] = as_dtype(g["msign_dtype"], "msign_dtype")
        b2 = g["normuon_beta2"]
        if b2 is not None and not (isinstance(b2, (int, float)) and 0 <= b2 < 1):
            raise ValueError(f"normuon_beta2 must be None or lie in [0, 1); got {b2!r}")
        if not (isinstance(g["normuon_eps"], (int, float)) and g["normuon_eps"] > 0):
            raise ValueError(f"normuon_eps must be a number > 0; got {g['normuon_eps']!r}")
        if g["msign"] is not None and g["ns_coefficients"] is not None:
            raise ValueError("give msign or ns_coefficients (torch.optim.Muon's keyword), "
                             "not both")
        self._method(g)  # resolve now: an unknown name or malformed coefficients fail here
        g["layouts"] = self._layouts(g, gi)

    def _layouts(self, g: dict, gi: int) -> list[Layout]:
        given = g.get("layouts")
        if given is not None and len(given) != len(g["params"]):
            raise ValueError(f"param group {gi}: 'layouts' has {len(given)} entries for "
                             f"{len(g['params'])} parameters")
        names = g.get("param_names")
        if self._name_layouts and not names:
            raise ValueError("layouts by name need named parameters: pass "
                             "muon_param_groups(model) or (name, parameter) pairs")
        out = []
        for i, p in enumerate(g["params"]):
            pname = self._pname(g, i, gi)
            lay = next((lay for pat, lay in self._name_layouts.items()
                        if names and fnmatch.fnmatchcase(names[i], pat)), None)
            if lay is None and given is not None:
                lay = given[i]
            if lay is None:
                lay = g.get("layout")
            if lay is None:
                lay = infer(p.shape, batch_matrices=bool(g.get("batch_matrices", False)),
                            split=g.get("split", 1), name=pname)
            if not isinstance(lay, Layout):
                raise TypeError(f"the layout of {pname} must be a msign.optim.Layout; "
                                f"got {lay!r}")
            lay.check(p.shape, pname)
            out.append(lay)
        return out

    def _method(self, g: dict) -> tuple[Method | Callable, int | None]:
        """The group's orthogonalizer (a registry Method, or a plain callable) and steps."""
        spec, coeffs, steps, eps = g["msign"], g["ns_coefficients"], g["ns_steps"], g["eps"]
        if coeffs is not None:
            table = [tuple(coeffs)] if all(isinstance(c, (int, float)) for c in coeffs) \
                else [tuple(c) for c in coeffs]
            key = ("ns", tuple(table), eps)
            if key not in self._methods:
                s = Schedule(table, name="ns_coefficients", default_steps=5, eps=eps or 0.0,
                             source="torch.optim.Muon-style ns_coefficients")
                self._methods[key] = resolve_method(s)
            return self._methods[key], steps
        if spec is None:
            spec = "polar-express"
        if not isinstance(spec, (str, Schedule, Method)):
            if not callable(spec):
                raise TypeError(f"msign must be a method name, a Schedule or a callable; "
                                f"got {spec!r}")
            return spec, steps
        key = ("m", spec if isinstance(spec, (str, Schedule)) else id(spec), eps)
        if key not in self._methods:
            m = resolve_method(spec)
            if eps and m.schedule is not None:
                m = resolve_method(dataclasses.replace(m.schedule, eps=eps))
            self._methods[key] = m
        return self._methods[key], steps

    # -- state ---------------------------------------------------------------------------------
    @property
    def skipped_steps(self) -> int:
        """Steps skipped for a non-finite gradient (``nonfinite="skip"``); in the state dict."""
        return max((g.get("skipped_steps", 0) for g in self.param_groups), default=0)

    def __getstate__(self) -> dict[str, Any]:
        # Optimizer.__getstate__ keeps defaults, state and param_groups only; the settings
        # below must survive copy.deepcopy and pickling too.  The method cache is rebuilt.
        return {**super().__getstate__(), "nonfinite": self.nonfinite,
                "_name_layouts": self._name_layouts, "_adamw_defaults": self._adamw_defaults,
                "_methods": {}, "last_step_bytes_sent": 0}

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        for g in sd["param_groups"]:
            g.pop("layouts", None)  # fixed at construction: the loading optimizer keeps its own
            g["msign"] = _portable(g.get("msign"))
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of this class or of torch.optim.Muon (and ours into torch's).

        Keys a saved group lacks (a torch.optim.Muon state dict has no ``use_muon`` or
        ``msign``) keep this optimizer's values; a saved callable placeholder resolves to
        this optimizer's callable; layouts always stay this optimizer's.
        """
        sd = dict(state_dict)
        legacy_skipped = int(sd.pop("skipped_steps", 0))
        groups = [dict(g) for g in sd["param_groups"]]
        for saved, cur in zip(groups, self.param_groups, strict=False):
            torch_style = "msign" not in saved and saved.get("ns_coefficients") is not None
            for k, v in cur.items():
                if k != "params" and k not in saved:
                    saved[k] = v
            if torch_style:
                saved["msign"] = None
            if isinstance(saved.get("msign"), str) and saved["msign"].startswith("callable:"):
                saved["msign"] = cur["msign"]
            if isinstance(saved.get("msign"), dict):
                saved["msign"] = Schedule.from_dict(saved["msign"])
            saved["layouts"] = cur.get("layouts")
            saved["skipped_steps"] = max(saved.get("skipped_steps", 0), legacy_skipped)
        sd["param_groups"] = groups
        super().load_state_dict(sd)
        self._methods = {}

    # -- step -------------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        active = [(g, p) for g in self.param_groups for p in g["params"] if p.grad is not None]
        if any(p.grad.is_sparse for _, p in active):
            raise RuntimeError("Muon does not support sparse gradients")
        if not self._all_finite([_local(p.grad) for _, p in active]):
            if self.nonfinite == "raise":
                raise FloatingPointError(
                    "a gradient contains NaN or Inf; parameters and optimizer state are "
                    "unchanged (pass nonfinite='skip' to skip such steps)")
            for g in self.param_groups:
                g["skipped_steps"] = g.get("skipped_steps", 0) + 1
            return loss
        muon = []
        for g, p in active:
            if g["use_muon"]:
                muon.append((g, p))
            else:
                self._adamw(g, p)
        if muon:
            self._muon_step(muon)
        return loss

    def _all_finite(self, grads: list[torch.Tensor]) -> bool:
        ok = torch.tensor(all(bool(gr.isfinite().all()) for gr in grads if gr.numel()))
        world, _ = sharding.world_and_rank()
        if world > 1:  # FSDP2 shards differ: a NaN on one rank must stop every rank
            ok = ok.to(torch.int32)
            if dist.get_backend() == "nccl":
                ok = ok.cuda()
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        return bool(ok)

    def _adamw(self, g: dict, p: torch.Tensor) -> None:
        state = self.state[p]
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        local = {"step": state["step"], "exp_avg": _local(state["exp_avg"]),
                 "exp_avg_sq": _local(state["exp_avg_sq"])}
        rules.adamw(_local(p), _local(p.grad), local, _scalar(g["lr"]), g["betas"], g["eps"],
                    g["weight_decay"], g["cautious_weight_decay"])
        state["step"] = local["step"]

    def _muon_step(self, muon: list[tuple[dict, torch.Tensor]]) -> None:
        items, jobs = [], []
        for g, p in muon:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p)
            lay = g["layouts"][self._index(g, p)]
            normuon = g["normuon_beta2"] is not None
            if normuon and "normuon_v" not in state:
                state["normuon_v"] = torch.zeros(lay.rows(p.shape), dtype=p.dtype,
                                                 device=_local(p).device)
            u = rules.muon_momentum(_local(state["momentum_buffer"]), _local(p.grad),
                                    g["momentum"], g["nesterov"])
            cost = sum(b * min(o, i) ** 2 * max(o, i) for b, o, i in lay.matrix_shapes(p.shape))
            items.append(sharding.Item(u, p.shape, sharding.is_fsdp2(p),
                                       lay.rows(p.shape) if normuon else 0, float(cost)))
            scales = lay.scales(p.shape, g["adjust_lr_fn"])
            # One scale for the whole parameter goes into the step's alpha (as torch does,
            # so 2-D steps equal torch.optim.Muon's bit for bit); otherwise the owner
            # applies each block's scale.
            uniform = len(set(scales)) == 1 and not normuon
            jobs.append((g, p, lay, scales, uniform))
        group = next((p.device_mesh.get_group() for _, p in muon if sharding.is_fsdp2(p)), None)

        def orthogonalize(pairs: list[tuple[int, torch.Tensor]]):
            return self._orthogonalize([(jobs[i], u) for i, u in pairs])

        results, aux, self.last_step_bytes_sent = sharding.exchange(items, orthogonalize, group)
        for (g, p, _, scales, uniform), upd, v in zip(jobs, results, aux, strict=True):
            if v is not None:
                self.state[p]["normuon_v"].copy_(v)
            # A Tensor lr stays a tensor in this arithmetic, as in torch.optim.Muon, so that
            # the two agree bit for bit with either kind of lr.
            W, lr = _local(p), _lr(g["lr"])
            rules.decay(W, upd, lr, g["weight_decay"], g["cautious_weight_decay"])
            W.add_(upd, alpha=-(lr * scales[0]) if uniform else -lr)

    def _index(self, g: dict, p: torch.Tensor) -> int:
        return next(i for i, q in enumerate(g["params"]) if q is p)

    def _orthogonalize(self, work: list[tuple[tuple, torch.Tensor]]
                       ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Full updates -> (s * msign per block, NorMuon statistics) on this (owner) rank.

        Blocks of the same shape, dtype and method are orthogonalized in one call; on CPU
        the engine loops over them (faster than batched GEMMs there), on GPU it batches.
        """
        blocks = [lay.to_blocks(u) for (_, _, lay, _, _), u in work]
        buckets: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
        for w, ((g, _, _, _, _), _) in enumerate(work):
            method, steps = self._method(g)
            for b, blk in enumerate(blocks[w]):
                key = (tuple(blk.shape[1:]), blk.dtype, blk.device, id(method), steps,
                       g["msign_dtype"], g["msign_gemm"])
                buckets[key].append((w, b))
        out: list[list[torch.Tensor | None]] = [[None] * len(bl) for bl in blocks]
        for members in buckets.values():
            g = work[members[0][0]][0][0]
            method, steps = self._method(g)
            mats = [blocks[w][b] for w, b in members]
            if mats[0].numel() == 0:  # 0-size parameters: nothing to orthogonalize
                res = [torch.zeros_like(m) for m in mats]
            elif not isinstance(method, Method):
                res = [torch.stack([method(x).to(m.dtype) for x in m]) for m in mats]
            elif mats[0].device.type == "cpu":
                res = [apply_method(m, method, steps, g["msign_dtype"], gemm=g["msign_gemm"])
                       for m in mats]
            else:
                stacked = apply_method(torch.cat(mats), method, steps, g["msign_dtype"],
                                       gemm=g["msign_gemm"])
                res = list(stacked.split([m.shape[0] for m in mats]))
            for (w, b), r in zip(members, res, strict=True):
                out[w][b] = r
        results = []
        for ((g, p, lay, scales, uniform), _), xs in zip(work, out, strict=True):
            if uniform:
                results.append((lay.from_blocks(xs, p.shape), None))
                continue
            xs = [x * s for x, s in zip(xs, scales, strict=True)]
            v = None
            if g["normuon_beta2"] is not None:
                v = self.state[p]["normuon_v"].clone()
                pieces = v.split([x.shape[0] * x.shape[1] for x in xs])
                xs = [rules.normuon(x, vp.view(x.shape[:2]), g["normuon_beta2"],
                                    g["normuon_eps"]) for x, vp in zip(xs, pieces, strict=True)]
            results.append((lay.from_blocks(xs, p.shape), v))
        return results
