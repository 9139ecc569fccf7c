"""The LM experiments' model and run sizes, by name (``--preset``)."""

from __future__ import annotations

from .model import GPTConfig

PRESETS = {
    "smoke": {"model": GPTConfig(block=64, layers=2, heads=2, d_model=64), "batch": 8,
              "steps": 40, "eval_every": 20, "eval_batches": 4, "warmup": 4},
    # 1.29M parameters; about 0.6 s a step on one thread, so a run of 800 steps takes about
    # 8 minutes and two run side by side on 2 cores (--jobs 2 --threads 1).
    "cpu": {"model": GPTConfig(block=128, layers=4, heads=4, d_model=160), "batch": 32,
            "steps": 800, "eval_every": 100, "eval_batches": 16, "warmup": 50},
    # The scale check: 2.7M parameters, 2000 steps (8.2M tokens), about 1.3 s a step on one
    # thread; run for AdamW and one Muon at the cpu sweep's best learning rates.
    "cpu-long": {"model": GPTConfig(block=128, layers=6, heads=4, d_model=192), "batch": 32,
                 "steps": 2000, "eval_every": 200, "eval_batches": 16, "warmup": 100},
    "gpu": {"model": GPTConfig(block=512, layers=12, heads=12, d_model=768), "batch": 64,
            "steps": 5000, "eval_every": 250, "eval_batches": 40, "warmup": 250},
}
