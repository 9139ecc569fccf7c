"""The Muon optimizer with any msign method, its parameter layouts and parameter groups."""

from .groups import muon_param_groups
from .layout import Layout, infer_layout
from .muon import TORCH_MUON_DEFAULTS, Muon
from .qk_clip import Heads, qk_clip
from .trainer import for_trainer

__all__ = ["Muon", "muon_param_groups", "Layout", "infer_layout", "TORCH_MUON_DEFAULTS",
           "qk_clip", "Heads", "for_trainer"]
