"""Provenance and atomic JSON writing for every results file (CLI and experiments)."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["provenance", "atomic_write", "write_json", "write_text"]


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one) and its bf16 support.

    The support class decides how fast a bf16 GEMM can be (:mod:`msign.gemm`): AMX or
    AVX512-BF16 run it natively, AVX2-only CPUs take torch's slow fallback.
    """
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cpu = torch.cpu
    if getattr(cpu, "_is_amx_tile_supported", lambda: False)():
        bf16 = "AMX"
    elif getattr(cpu, "_is_avx512_bf16_supported", lambda: False)():
        bf16 = "AVX512-BF16, no AMX"
    elif getattr(cpu, "_is_avx2_supported", lambda: False)():
        bf16 = "no native bf16 (AVX2)"
    else:
        bf16 = "no native bf16"
    return f"{name} [{platform.machine()}, {bf16}]"


def provenance(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Device name (CPU model and bf16 support, or GPU), torch version and date, stamped
    into every results file."""
    dev = torch.device(device)
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
    else:
        n = torch.get_num_threads()
        name = f"{cpu_model()} cpu, {n} thread{'' if n == 1 else 's'}"
    out = {"device": name, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
           "python": platform.python_version()}
    if dev.type == "cpu" and hasattr(os, "getloadavg"):
        # timings taken while other work shares the cores say so here
        out["load_average_1min"] = round(os.getloadavg()[0], 2)
    return out


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> None:
    """``write(tmp)`` to a temp file beside ``path`` (same extension), then rename it over
    ``path``: a reader never sees a half-written file, and an interrupted write leaves the old
    one.  The one atomic write of every results file, checkpoint and manifest."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    # the pid keeps two processes writing the same file from sharing a temp file
    tmp = f"{path}.{os.getpid()}.tmp{os.path.splitext(path)[1]}"
    write(tmp)
    os.replace(tmp, path)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write text atomically (:func:`atomic_write`)."""
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    atomic_write(path, write)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically: a temp file beside the target, then rename."""
    write_text(path, json.dumps(obj, indent=1) + "\n")
