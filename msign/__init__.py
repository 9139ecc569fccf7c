"""msign: the matrix sign / polar factor msign(G) = U V^T, its approximations, and Muon."""

from . import metrics
from .api import msign, polar
from .registry import METHODS, Method, compiled, register
from .schedules import SCHEDULES, Schedule, get_schedule

__all__ = ["msign", "polar", "METHODS", "Method", "compiled", "register", "Schedule",
           "SCHEDULES", "get_schedule", "metrics", "design", "scalar", "__version__"]
#: the one place of the version: pyproject.toml reads it (``dynamic = ["version"]``)
__version__ = "0.3.0"


def __getattr__(name: str):
    # design/scalar import sympy and mpmath machinery; load them only when asked for.
    if name in ("design", "scalar"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'msign' has no attribute {name!r}")
