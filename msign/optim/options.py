"""A Muon param group's options: defaults, checks, the orthogonalizer and the layouts.

Names: torch.optim.Muon's keywords for torch's concepts (``ns_coefficients``, ``ns_steps``,
``adjust_lr_fn``, ...), one msign keyword for each extension (``msign``, ``msign_dtype``,
the rules' options).  A group's options override the optimizer's defaults, as in every torch
optimizer; the orthogonalizer a group names, by ``msign`` or ``ns_coefficients``, replaces the
default one whichever keyword the default used.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .. import adaptive
from ..api import as_dtype
from ..gemm import GEMM_MODES
from ..registry import Method, resolve_method
from ..schedules import Schedule, check_steps
from . import rules, sharding
from .layout import ADJUST_MODES, Layout, infer_layout

__all__ = ["REMOVED", "refuse_removed", "pick_orthogonalizer", "check_group", "Methods",
           "param_name", "portable_msign",
           "merge_saved"]

#: removed keywords -> what replaces them (a TypeError names it).
REMOVED = {
    "msign_steps": "ns_steps (torch.optim.Muon's name)",
    "adjust_lr": "adjust_lr_fn (torch.optim.Muon's name; None means 'original')",
    "batch_matrices": "nothing: a 3-D parameter is a batch of (out, in) matrices by default "
                      "(msign.optim.infer_layout); give layout=Layout(...) for another view",
}
_TORCH_ADJUST = (None, "original", "match_rms_adamw")
_ORTHOGONALIZER = ("msign", "ns_coefficients")


def refuse_removed(options: Mapping[str, Any], where: str) -> None:
    """TypeError naming the replacement of the first removed keyword in ``options``."""
    for key in options:
        if key in REMOVED:
            raise TypeError(f"{where}: {key!r} was removed; use {REMOVED[key]}")
    if where == "Muon()" and options:
        raise TypeError(f"Muon() got unexpected keyword arguments {sorted(options)}")


def pick_orthogonalizer(group: dict[str, Any]) -> dict[str, Any]:
    """The group with the default orthogonalizer dropped where it names its own."""
    named = [k for k in _ORTHOGONALIZER if group.get(k) is not None]
    if len(named) == 2:
        raise ValueError("give msign or ns_coefficients (torch.optim.Muon's keyword), "
                         "not both")
    if named:
        group = {**group, **{k: None for k in _ORTHOGONALIZER if k not in named}}
    return group


def portable_msign(msign: Any) -> Any:
    """What a state dict stores for a group's ``msign``: a name as is, a Schedule as its
    dict (so ``torch.load(weights_only=True)`` reads it), a callable (closures do not
    pickle) as a placeholder that load_state_dict resolves to the loader's own callable."""
    if msign is None or isinstance(msign, str):
        return msign
    if isinstance(msign, Schedule):
        return msign.to_dict()
    return f"callable:{getattr(msign, 'name', None) or getattr(msign, '__qualname__', 'fn')}"


def merge_saved(saved: dict[str, Any], cur: Mapping[str, Any], legacy_skipped: int
                ) -> dict[str, Any]:
    """A saved group (of msign's Muon or torch.optim.Muon) made whole for this optimizer:
    keys it lacks keep this optimizer's values, a callable placeholder resolves to this
    optimizer's callable, a Schedule dict to its Schedule; layouts stay this optimizer's."""
    torch_style = "msign" not in saved and saved.get("ns_coefficients") is not None
    saved.update({k: v for k, v in cur.items() if k != "params" and k not in saved})
    if torch_style:
        saved["msign"] = None
    if isinstance(saved.get("msign"), str) and saved["msign"].startswith("callable:"):
        saved["msign"] = cur["msign"]
    if isinstance(saved.get("msign"), dict):
        saved["msign"] = Schedule.from_dict(saved["msign"])
    saved["layouts"] = cur.get("layouts")
    saved["skipped_steps"] = max(saved.get("skipped_steps", 0), legacy_skipped)
    return saved


def param_name(group: Mapping[str, Any], i: int, gi: int) -> str:
    names = group.get("param_names")
    return repr(names[i]) if names else f"param_groups[{gi}]['params'][{i}]"


def _scalar(v: Any) -> float:
    return float(v.item()) if isinstance(v, torch.Tensor) else float(v)


def check_group(g: dict[str, Any], gi: int, methods: Methods,
                name_layouts: Mapping[str, Layout]) -> None:
    """Check a group (raising a ValueError/TypeError naming the option) and fix its layouts."""
    lr = g["lr"]
    if isinstance(lr, torch.Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not (math.isfinite(_scalar(lr)) and _scalar(lr) >= 0):
        raise ValueError(f"lr must be a finite number >= 0; got {lr!r}")
    for i, p in enumerate(g["params"]):
        if p.is_complex():
            raise TypeError(
                f"Muon does not support complex parameters: {param_name(g, i, gi)} is "
                f"{p.dtype}; train torch.view_as_real(p) if real and imaginary parts "
                "are meant to be separate parameters")
        sharding.check_placement(p, param_name(g, i, gi))
    for rule in rules.RULES:
        if rule.slot == "decay" or g["use_muon"]:
            rule.check(g)
    if not g["use_muon"]:
        b = g["betas"]
        if not (len(b) == 2 and all(0 <= x < 1 for x in b)):
            raise ValueError(f"adamw betas must be two numbers in [0, 1); got {b!r}")
        if not (isinstance(g["eps"], (int, float)) and g["eps"] >= 0):
            raise ValueError(f"adamw eps must be a number >= 0; got {g['eps']!r}")
        return
    if g["adjust_lr_fn"] not in (*_TORCH_ADJUST, *ADJUST_MODES):
        raise ValueError(f"Adjust learning rate function {g['adjust_lr_fn']} is not "
                         f"supported: adjust_lr_fn must be one of {ADJUST_MODES} or None")
    if g["ns_steps"] is not None:
        check_steps(g["ns_steps"])
    if g["eps"] is not None and not (isinstance(g["eps"], (int, float)) and g["eps"] >= 0):
        raise ValueError(f"eps must be None or a number >= 0; got {g['eps']!r}")
    if g["msign_gemm"] not in GEMM_MODES:
        raise ValueError(f"msign_gemm must be one of {GEMM_MODES}; got {g['msign_gemm']!r}")
    if g["msign_dtype"] is not None:
        g["msign_dtype"] = as_dtype(g["msign_dtype"], "msign_dtype")
    methods.resolve(g)  # an unknown name, malformed coefficients or a bad budget fail here
    g["layouts"] = _layouts(g, gi, name_layouts)


def _equal_split(lay: Layout, shape: torch.Size, k: Any, name: str) -> Layout:
    """``split=k``: the inferred layout cut into k equal blocks of output rows."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"split must be a positive int (number of equal row blocks); "
                         f"got {k!r} for {name}")
    if k == 1:
        return lay
    rows = lay.matrix_shapes(shape)[0][1]
    if rows % k:
        raise ValueError(f"split={k} does not divide the {rows} out rows of {name} "
                         f"(shape {tuple(shape)})")
    return Layout(lay.out_axes, lay.in_axes, split=(rows // k,) * k)


def _layouts(g: dict[str, Any], gi: int, name_layouts: Mapping[str, Layout]) -> list[Layout]:
    """Per parameter: a name pattern, else the group's ``layouts[i]``, ``layout`` or ``split``
    applied to the inferred layout (:func:`~msign.optim.layout.infer_layout`)."""
    given = g.get("layouts")
    if given is not None and len(given) != len(g["params"]):
        raise ValueError(f"param group {gi}: 'layouts' has {len(given)} entries for "
                         f"{len(g['params'])} parameters")
    names = g.get("param_names")
    if name_layouts and not names:
        raise ValueError("layouts by name need named parameters: pass "
                         "muon_param_groups(model) or (name, parameter) pairs")
    out = []
    for i, p in enumerate(g["params"]):
        pname = param_name(g, i, gi)
        lay = next((lay for pat, lay in name_layouts.items()
                    if names and fnmatch.fnmatchcase(names[i], pat)), None)
        if lay is None and given is not None:
            lay = given[i]
        if lay is None:
            lay = g.get("layout")
        if lay is None:
            if p.dim() < 2:
                raise ValueError(f"Muon needs parameters with >= 2 dimensions; {pname} has "
                                 f"shape {tuple(p.shape)} (put it in a use_muon=False group)")
            lay = _equal_split(infer_layout(p.shape), p.shape, g.get("split", 1), pname)
        if not isinstance(lay, Layout):
            raise TypeError(f"the layout of {pname} must be a msign.optim.Layout; got {lay!r}")
        lay.check(p.shape, pname)
        out.append(lay)
    return out


class Methods:
    """Each group's orthogonalizer, resolved once per distinct setting and cached."""

    def __init__(self) -> None:
        self._cache: dict[tuple, Method] = {}

    def resolve(self, g: Mapping[str, Any]) -> tuple[Method | Callable, int | None]:
        """(a registry Method or a plain callable, the group's steps); with ``msign_budget``
        the schedule's steps are chosen per matrix (:func:`msign.adaptive.method`)."""
        m, steps = self._resolve(g)
        budget = g.get("msign_budget")
        if budget is None:
            return m, steps
        if not isinstance(m, Method) or m.schedule is None:
            raise ValueError("msign_budget needs a schedule method (a name such as 'jordan', "
                             f"a Schedule or ns_coefficients); got {g['msign']!r}")
        if steps is not None:
            raise ValueError("give ns_steps or msign_budget, not both: the budget chooses the "
                             "steps per matrix")
        key = ("budget", id(m), budget)
        if key not in self._cache:
            self._cache[key] = adaptive.method(m.schedule, budget)
        return self._cache[key], None

    def _resolve(self, g: Mapping[str, Any]) -> tuple[Method | Callable, int | None]:
        spec, coeffs, steps, eps = g["msign"], g["ns_coefficients"], g["ns_steps"], g["eps"]
        if coeffs is not None:
            table = [tuple(coeffs)] if all(isinstance(c, (int, float)) for c in coeffs) \
                else [tuple(c) for c in coeffs]
            key = ("ns", tuple(table), eps)
            if key not in self._cache:
                s = Schedule(table, name="ns_coefficients", default_steps=5, eps=eps or 0.0,
                             source="torch.optim.Muon-style ns_coefficients")
                self._cache[key] = resolve_method(s)
            return self._cache[key], steps
        if spec is None:
            spec = "polar-express"
        if not isinstance(spec, (str, Schedule, Method)):
            if not callable(spec):
                raise TypeError(f"msign must be a method name, a Schedule or a callable; "
                                f"got {spec!r}")
            return spec, steps
        key = ("m", spec if isinstance(spec, (str, Schedule)) else id(spec), eps)
        if key not in self._cache:
            m = resolve_method(spec)
            if eps and m.schedule is not None:
                m = resolve_method(dataclasses.replace(m.schedule, eps=eps))
            self._cache[key] = m
        return self._cache[key], steps
