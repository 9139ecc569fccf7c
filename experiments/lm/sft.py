"""Supervised fine-tuning pairs from the plays, no download: the previous speech and the next
speaker's name as the prompt, that speaker's speech as the response.

The Gutenberg texts put a speaker's (abbreviated) name alone on a line ending in a full stop,
then the speech, then a blank line; bracketed stage directions are dropped.  A pair is encoded
in a chat-style template over the byte vocabulary plus three special tokens::

    <user> previous speech \\n SPEAKER. <assistant> the speech <end>

and the loss is taken on the response and <end> only (``mask``).  A prompt is cut to its last
``max_prompt`` bytes when the pairs are built; a pair file whose prompt would still fill the
whole context is refused, as is an empty one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from msign.results import write_text

from . import data

USER, ASSISTANT, END = 256, 257, 258
VOCAB = 259  # bytes and the three special tokens
_SPEAKER = re.compile(r"^[A-Z][A-Za-z'. ]{0,28}\.$")


def speeches(text: str) -> list[tuple[str, str]]:
    """(speaker, speech) in order; a paragraph without a speaker line continues the last."""
    out: list[tuple[str, str]] = []
    for para in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [ln.strip() for ln in para.strip().split("\n")
                 if ln.strip() and not ln.strip().startswith("[")]
        if not lines:
            continue
        if _SPEAKER.match(lines[0]) and len(lines) > 1:
            out.append((lines[0], " ".join(lines[1:])))
        elif out and not _SPEAKER.match(lines[0]):
            speaker, speech = out[-1]
            out[-1] = (speaker, f"{speech} {' '.join(lines)}")
    return out


def pairs(text: str, max_prompt: int = 96, max_response: int = 160) -> list[dict]:
    """Prompt/response pairs from one play (see the module docstring)."""
    sp = speeches(text)
    out = []
    for (_, prev), (speaker, speech) in zip(sp, sp[1:], strict=False):
        prompt = f"{prev}\n{speaker}"[-max_prompt:]  # the end: the speaker is kept
        out.append({"prompt": prompt, "response": speech[:max_response]})
    return out


def build(cache: Path | None = None, plays: tuple[str, ...] = data.COMEDIES,
          held_out: tuple[str, ...] = data.MISMATCH_HELD_OUT, out: Path | None = None,
          max_prompt: int = 96) -> dict[str, Path]:
    """Write train.jsonl (``plays`` but ``held_out``) and val.jsonl (``held_out``) of pairs.

    The defaults are the mismatch study's split: pretraining reads the tragedies and
    histories, fine-tuning the comedies, and two comedies are held out for evaluation.
    """
    texts = data.fetch(cache)
    plays = sorted(p for p in texts.glob("*_gut.txt") if p.stem.removesuffix("_gut") in plays)
    folder = out or texts.parent / f"sft_p{max_prompt}"
    files = {}
    for split in ("train", "val"):
        rows = [pr for p in plays if (p.stem.removesuffix("_gut") in held_out) == (split == "val")
                for pr in pairs(p.read_text(encoding="utf-8", errors="replace"), max_prompt)]
        files[split] = folder / f"{split}.jsonl"
        write_text(files[split], "".join(json.dumps(r) + "\n" for r in rows))
    return files


def files(cache: Path | None = None, max_prompt: int = 96) -> dict[str, Path]:
    """The pair files :func:`build` writes (building them if they are missing)."""
    folder = data.fetch(cache).parent / f"sft_p{max_prompt}"
    out = {s: folder / f"{s}.jsonl" for s in ("train", "val")}
    return out if all(p.exists() for p in out.values()) else build(cache,
                                                                   max_prompt=max_prompt)


def load(path: Path, block: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Encoded pairs of a JSONL file: (ids, mask) per pair, at most ``block + 1`` long."""
    rows = [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]
    if not rows:
        raise ValueError(f"{path}: the SFT pair file is empty")
    return [encode(r["prompt"], r["response"], block, where=f"{path}:{i + 1}")
            for i, r in enumerate(rows)]


def encode(prompt: str, response: str, block: int, where: str = "pair"
           ) -> tuple[np.ndarray, np.ndarray]:
    """ids = <user> prompt <assistant> response <end>; mask marks the positions whose next
    token is a response token or <end> (what the loss sees), cut to ``block + 1`` tokens."""
    p, r = list(prompt.encode("utf-8")), list(response.encode("utf-8"))
    head = [USER, *p, ASSISTANT]
    if len(head) >= block:
        raise ValueError(f"{where}: the prompt ({len(p)} bytes) fills the whole context of "
                         f"{block} tokens; nothing of the response would be trained on")
    ids = np.array((head + r + [END])[: block + 1], dtype=np.int64)
    target = np.zeros(len(ids) - 1, dtype=bool)
    target[len(head) - 1:] = True  # predicting response[0] from <assistant> onward
    return ids, target


def batch(encoded: list[tuple[np.ndarray, np.ndarray]], size: int, block: int,
          gen: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, y, mask) of ``size`` random pairs, right-padded with <end> (masked out)."""
    x = np.full((size, block), END, dtype=np.int64)
    y = np.full((size, block), END, dtype=np.int64)
    m = np.zeros((size, block), dtype=bool)
    for row, i in enumerate(gen.integers(0, len(encoded), size)):
        ids, target = encoded[i]
        n = len(ids) - 1
        x[row, :n], y[row, :n], m[row, :n] = ids[:-1], ids[1:], target
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(m)
