"""The conv-net study: its data (digits, CIFAR-10 pickles), its scale rules, its smoke run."""

import json
import pickle

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
from experiments.vision import cnn, data  # noqa: E402


def write_cifar(root, n=6):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in (*data.CIFAR_TRAIN, data.CIFAR_TEST):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": list(rng.integers(0, 10, n))}
        with open(root / name, "wb") as f:
            pickle.dump(batch, f)


def test_digits_split_is_fixed_and_normalized():
    im = data.load()
    assert im.x_train.shape == (1437, 1, 8, 8) and im.x_test.shape == (360, 1, 8, 8)
    assert im.classes == 10 and not im.flip
    assert abs(float(im.x_train.mean())) < 1e-5 and abs(float(im.x_train.std()) - 1) < 1e-3
    assert torch.equal(data.load().y_test, im.y_test)  # the same split every time


def test_cifar_pickles_are_read_as_nchw(tmp_path):
    write_cifar(tmp_path / "cifar")
    im = data.load(str(tmp_path / "cifar"))
    assert im.x_train.shape == (30, 3, 32, 32) and im.x_test.shape == (6, 3, 32, 32)
    assert im.flip and im.y_train.dtype == torch.int64
    x, y = next(im.batches(8, torch.Generator().manual_seed(0)))
    assert x.shape == (8, 3, 32, 32) and y.shape == (8,)


def test_a_data_dir_without_cifar_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1.*cifar-10-batches-py"):
        data.load(str(tmp_path))
    write_cifar(tmp_path / "bad")
    with open(tmp_path / "bad" / "test_batch", "wb") as f:
        pickle.dump({b"nothing": 1}, f)
    with pytest.raises(ValueError, match="not a CIFAR-10 batch"):
        data.load(str(tmp_path / "bad"))


def test_augmentation_shifts_and_flips():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(64, 1, 1, 1)
    y = data.augmented(x, g, shift=1, flip=False)
    assert y.shape == x.shape and not torch.equal(y, x)
    assert set(y.flatten().tolist()) <= set(x.flatten().tolist()) | {0.0}  # zero fill
    same = data.augmented(x, torch.Generator().manual_seed(0), shift=0, flip=False)
    assert torch.equal(same, x)


def test_epochs_to_target_and_interval():
    assert cnn.epochs_to([0.5, 0.7, 0.9], 0.8) == pytest.approx(2.5)
    assert cnn.epochs_to([0.9, 0.95], 0.8) == 1.0
    assert cnn.epochs_to([0.1, 0.2], 0.8) is None
    from experiments.common.stats import t_interval

    m, lo, hi = t_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and lo < 2.0 < hi


def test_smoke_study_end_to_end(tmp_path):
    args = ["--preset", "smoke", "--runs", str(tmp_path / "runs"), "--out",
            str(tmp_path / "out"), "--threads", "1", "--timing-rounds", "1"]
    s = cnn.main(args)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {r["arm"] for r in summary["rows"]} == set(cnn.GRIDS)
    assert all(len(r["finals"]) == 2 for r in summary["rows"])
    assert summary["rule_comparison"]["verdict"]
    assert (tmp_path / "out" / "accuracy.png").stat().st_size > 1000
    # resumable: a second call trains nothing new and gives the same table
    again = cnn.main(args)
    assert [r["finals"] for r in again["rows"]] == [r["finals"] for r in s["rows"]]
