"""Images for the conv-net study, in the shape of a real image pipeline: (N, C, H, W) tensors.

The default data set is scikit-learn's ``load_digits`` (1,797 8x8 grey images of digits, 10
classes, shipped with the package: nothing is downloaded).  The split is fixed and written
down: a stratified 80/20 split by ``sklearn.model_selection.train_test_split`` with
``random_state=0`` (1,437 train, 360 test).  ``--data DIR`` reads CIFAR-10's python pickles
instead (``data_batch_1`` ... ``data_batch_5`` and ``test_batch`` in DIR, as the CIFAR-10
python archive unpacks), so that the study runs unchanged on a real CIFAR-10 copy.

Normalization: per-channel mean and std of the training images.  Augmentation (training
only): random translations by up to ``shift`` pixels (zero padding); horizontal flips only
where they keep the label (CIFAR-10, not digits).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = "test_batch"


@dataclass
class Images:
    """Normalized train and test images and labels, and how to augment them."""

    x_train: torch.Tensor  # (N, C, H, W) float32, normalized
    y_train: torch.Tensor  # (N,) int64
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str
    flip: bool  # whether a horizontal flip keeps the label
    shift: int  # largest translation (pixels) of the augmentation

    @property
    def classes(self) -> int:
        return int(self.y_train.max()) + 1

    def batches(self, batch: int, gen: torch.Generator, augment: bool = True):
        """One epoch of shuffled, augmented training batches."""
        order = torch.randperm(len(self.y_train), generator=gen)
        for i in range(0, len(order), batch):
            idx = order[i: i + batch]
            x = self.x_train[idx]
            yield (augmented(x, gen, self.shift, self.flip) if augment else x), self.y_train[idx]


def augmented(x: torch.Tensor, gen: torch.Generator, shift: int, flip: bool) -> torch.Tensor:
    """Each image translated by a random (dy, dx) in [-shift, shift] with zero fill, and
    flipped left-right with probability 1/2 where ``flip``."""
    n, _, h, w = x.shape
    if shift:
        pad = torch.nn.functional.pad(x, (shift, shift, shift, shift))
        dy, dx = (torch.randint(0, 2 * shift + 1, (n,), generator=gen) for _ in range(2))
        rows = (dy[:, None] + torch.arange(h))[:, :, None]
        cols = (dx[:, None] + torch.arange(w))[:, None, :]
        x = pad[torch.arange(n)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
    if flip:
        mask = torch.rand(n, generator=gen) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(-1), x)
    return x.contiguous()


def _normalized(train: np.ndarray, test: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    mean = train.mean(axis=(0, 2, 3), keepdims=True)
    std = train.std(axis=(0, 2, 3), keepdims=True)
    return (torch.from_numpy(((train - mean) / std).astype(np.float32)),
            torch.from_numpy(((test - mean) / std).astype(np.float32)))


def digits() -> Images:
    """scikit-learn's digits, split as the module docstring says."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images[:, None].astype(np.float64)  # (1797, 1, 8, 8), values 0..16
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.2, random_state=0,
                                          stratify=d.target)
    a, b = _normalized(xtr, xte)
    return Images(a, torch.from_numpy(ytr).long(), b, torch.from_numpy(yte).long(),
                  "sklearn digits (8x8, 1437 train / 360 test)", flip=False, shift=2)


def _unpickle(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    try:
        data, labels = d[b"data"], d[b"labels"]
    except KeyError as e:
        raise ValueError(f"{path} is not a CIFAR-10 batch: it has no {e.args[0]!r} entry"
                         ) from None
    x = np.asarray(data, dtype=np.float64).reshape(-1, 3, 32, 32) / 255.0
    return x, np.asarray(labels, dtype=np.int64)


def cifar10(directory: str | Path) -> Images:
    """CIFAR-10 from its python pickles in ``directory``."""
    root = Path(directory)
    missing = [n for n in (*CIFAR_TRAIN, CIFAR_TEST) if not (root / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"--data {root}: CIFAR-10's python batches are missing ({', '.join(missing)}); "
            "give the folder that cifar-10-python.tar.gz unpacks to (cifar-10-batches-py)")
    parts = [_unpickle(root / n) for n in CIFAR_TRAIN]
    xtr = np.concatenate([p[0] for p in parts])
    ytr = np.concatenate([p[1] for p in parts])
    xte, yte = _unpickle(root / CIFAR_TEST)
    a, b = _normalized(xtr, xte)
    return Images(a, torch.from_numpy(ytr), b, torch.from_numpy(yte),
                  f"CIFAR-10 from {root}", flip=True, shift=2)


def load(data: str | None = None) -> Images:
    """``None``: the digits; otherwise a CIFAR-10 pickle directory."""
    return digits() if data is None else cifar10(data)
