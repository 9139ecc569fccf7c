"""Run a function on N gloo ranks (CPU) in spawned processes: free port, joined with a timeout.

Workers write their results to files; a rank that dies of a signal during interpreter
teardown (gloo's threads, seen as SIGABRT "terminate called without an active exception"
on loaded CI machines) is retried once with a fresh port, a Python exception fails at once.
"""

from __future__ import annotations

import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, fn, world: int, port: int, args: tuple) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        fn(rank, world, *args)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    # Results are on disk: skip the interpreter shutdown where gloo's threads can abort.
    os._exit(0)


def run(fn, world: int, *args, timeout: float = TIMEOUT_S) -> None:
    """``fn(rank, world, *args)`` on ``world`` gloo ranks; raise if any rank fails."""
    for attempt in range(2):
        ctx = mp.start_processes(_entry, args=(fn, world, free_port(), args), nprocs=world,
                                 join=False, start_method="spawn")
        deadline = time.monotonic() + timeout
        try:
            while not ctx.join(timeout=1.0):
                if time.monotonic() > deadline:
                    for p in ctx.processes:
                        p.kill()
                    raise TimeoutError(f"{world} gloo ranks did not finish in {timeout} s")
            return
        except mp.ProcessExitedException as e:
            if e.signal_name is None or attempt == 1:
                raise
