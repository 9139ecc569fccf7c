import numpy as np
import pytest
import torch

from msign import metrics


def test_orthogonality_error_known_values():
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 6)))
    assert metrics.orthogonality_error(Q) < 1e-14
    assert metrics.orthogonality_error(2 * Q) == pytest.approx(3 * np.sqrt(6))
    # Smaller side: a 3x8 matrix with orthonormal rows is exact on its 3x3 Gram.
    W = np.linalg.qr(np.random.default_rng(1).standard_normal((8, 3)))[0].T
    assert metrics.orthogonality_error(W) < 1e-14 and metrics.orthogonality_error(W.T) < 1e-14


def test_batched_and_dtype_aware():
    X = torch.eye(4).repeat(3, 1, 1).bfloat16()
    X[1] *= 1.5
    err = metrics.orthogonality_error(X)
    assert err.shape == (3,) and err.dtype == np.float64
    assert err[0] == 0 and err[1] == pytest.approx(np.sqrt(4) * 1.25)
    lo, hi = metrics.sigma_band(X)
    np.testing.assert_allclose(lo, [1, 1.5, 1])
    np.testing.assert_allclose(metrics.max_sigma_error(X), [0, 0.5, 0])


def test_polar_distance():
    G = np.diag([3.0, 2.0, 0.5])
    assert metrics.polar_distance(np.eye(3), G) < 1e-15
    assert metrics.polar_distance(-np.eye(3), G) == pytest.approx(2.0)


def test_rejects_vectors():
    with pytest.raises(ValueError, match="shape"):
        metrics.orthogonality_error(np.ones(3))


def test_relative_distance_matches_polar_distance():
    G = np.random.default_rng(2).standard_normal((5, 7))
    X = G / np.linalg.norm(G, 2)
    U, _, Vt = np.linalg.svd(G, full_matrices=False)
    expected = metrics.polar_distance(X, G)
    assert metrics.relative_distance(X, U @ Vt) == pytest.approx(expected, rel=1e-12)
