"""Provenance and atomic JSON writing for every results file (CLI and experiments)."""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any

import torch

__all__ = ["provenance", "write_json", "write_text"]


def provenance(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Device name, torch version and date, stamped into every results file."""
    dev = torch.device(device)
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
    else:
        name = f"{platform.machine()} cpu, {torch.get_num_threads()} threads"
    return {"device": name, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
            "python": platform.python_version()}


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write text atomically: a temp file beside the target, then rename."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically: a temp file beside the target, then rename."""
    write_text(path, json.dumps(obj, indent=1) + "\n")
