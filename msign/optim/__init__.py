"""The Muon optimizer with any msign method, and its parameter-group helper."""

from .muon import Muon, muon_param_groups

__all__ = ["Muon", "muon_param_groups"]
