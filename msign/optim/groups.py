"""muon_param_groups: route a model's parameters to Muon or AdamW and infer their layouts.

Routing, in order (first match wins; patterns are fnmatch patterns on the full name):

1. a name matching ``adamw`` -> AdamW; a name matching ``muon`` -> Muon;
2. parameters with fewer than 2 dimensions (biases, norm gains) -> AdamW;
3. embeddings (``nn.Embedding`` weights, and any parameter that *is* one: a tied head) ->
   AdamW;
4. output heads -> AdamW: a module whose own name is in ``head_names`` anywhere in the
   model (``lm_head``, ``classifier``, ``score``, ``fc_out``), or in ``top_head_names`` as
   a direct child of the model (``head``, ``fc``, ``output``: ResNet's ``fc``, timm's
   ``head``; deeper modules of those names are hidden layers, e.g. GPT MLPs' ``fc``);
5. MoE routers -> AdamW: modules whose class name ends in ``Router`` or whose own name is
   in ``router_names`` (``gate``, ``router``, ``shared_expert_gate``); move them with
   ``muon=["*.gate.weight"]``;
6. every other parameter with >= 2 dimensions -> Muon.

Layouts (:class:`msign.optim.Layout`) are decided here once, by the same rule as for bare
parameters (:func:`msign.optim.layout.infer_layout`), with each parameter's module known:
so a ``nn.Conv1d`` weight is flattened like any conv while another 3-D parameter is a batch
of (out, in) matrices; ``layouts={pattern: Layout}`` overrides any of them by name.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from .layout import Layout, infer_layout

__all__ = ["muon_param_groups", "HEAD_NAMES", "TOP_HEAD_NAMES", "ROUTER_NAMES"]

HEAD_NAMES = ("lm_head", "classifier", "score", "fc_out")
TOP_HEAD_NAMES = ("head", "fc", "output")
ROUTER_NAMES = ("gate", "router", "shared_expert_gate")


def _match(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pat) for pat in patterns)


def muon_param_groups(model: nn.Module, *, muon: Sequence[str] = (), adamw: Sequence[str] = (),
                      layouts: Mapping[str, Layout] | None = None,
                      head_names: Sequence[str] = HEAD_NAMES,
                      top_head_names: Sequence[str] = TOP_HEAD_NAMES,
                      router_names: Sequence[str] = ROUTER_NAMES) -> list[dict[str, Any]]:
    """Split a model's parameters into a Muon group and an AdamW group, with layouts.

    Parameters
    ----------
    model : nn.Module
    muon, adamw : sequences of fnmatch patterns on full parameter names
        Force a parameter to Muon or to AdamW (``adamw`` wins over ``muon``).
    layouts : mapping of fnmatch pattern -> Layout, optional
        Override the inferred layout of matching Muon parameters (first match wins), e.g.
        ``{"*.attn.c_attn.weight": Layout.transposed(split=(768, 768, 768))}``.
    head_names, top_head_names, router_names : sequences of str
        Module names treated as output heads (anywhere / as direct children of ``model``)
        and as MoE routers; all go to AdamW.

    Returns
    -------
    list of dict
        ``[{"params": [(name, p), ...], "use_muon": True, "layouts": [...]},
        {"params": [(name, p), ...], "use_muon": False}]`` (empty groups left out); the
        named parameters give the optimizer ``param_names`` for its messages and state
        dicts.  Each parameter lands in exactly one group; frozen ones are left out.

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 8), nn.LayerNorm(8))
    >>> [(g["use_muon"], [n for n, _ in g["params"]]) for g in muon_param_groups(model)]
    [(True, ['1.weight']), (False, ['0.weight', '1.bias', '2.weight', '2.bias'])]
    """
    layouts = dict(layouts or {})
    embed_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    owner: dict[int, nn.Module] = {}
    special: set[int] = set()
    for mod_name, mod in model.named_modules():
        last = mod_name.split(".")[-1]
        is_head = last in head_names or (mod_name == last and last in top_head_names)
        is_router = type(mod).__name__.endswith("Router") or last in router_names
        for _, p in mod.named_parameters(recurse=False):
            owner.setdefault(id(p), mod)
            if is_head or is_router:
                special.add(id(p))
    groups: dict[bool, dict[str, list]] = {True: {"params": [], "layouts": []},
                                           False: {"params": []}}
    for name, p in model.named_parameters():  # shared (tied) tensors are listed once
        if not p.requires_grad:
            continue
        if _match(name, adamw):
            use = False
        elif _match(name, muon):
            use = True
        else:
            use = p.dim() >= 2 and id(p) not in embed_ids and id(p) not in special
        groups[use]["params"].append((name, p))
        if use:
            mod = owner[id(p)]
            lay = next((lay for pat, lay in layouts.items() if fnmatch.fnmatchcase(name, pat)),
                       None) or infer_layout(p.shape, mod)
            lay.check(p.shape, name)
            groups[use]["layouts"].append(lay)
    return [{**groups[u], "use_muon": u} for u in (True, False) if groups[u]["params"]]
