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


def test_nuclear_alignment():
    rng = np.random.default_rng(3)
    G = rng.standard_normal((6, 9))
    U, s, Vt = np.linalg.svd(G, full_matrices=False)
    assert metrics.nuclear_alignment(G, U @ Vt) == pytest.approx(1.0)  # the exact factor
    assert metrics.nuclear_alignment(G, -U @ Vt) == pytest.approx(-1.0)
    # dropping the smallest direction loses its share of the nuclear norm
    X = U[:, :-1] @ Vt[:-1]
    assert metrics.nuclear_alignment(G, X) == pytest.approx(1 - s[-1] / s.sum())
    batch = np.stack([G, 2 * G])
    np.testing.assert_allclose(metrics.nuclear_alignment(batch, np.stack([U @ Vt] * 2)), 1.0)


def test_alignment_is_scale_free_and_at_most_one():
    rng = np.random.default_rng(4)
    G = rng.standard_normal((6, 9))
    U, s, Vt = np.linalg.svd(G, full_matrices=False)
    assert metrics.alignment(G, 3.0 * U @ Vt) == pytest.approx(1.0)  # any positive scale
    # overshoot: nuclear_alignment rewards it past one, alignment does not
    over = U @ np.diag(np.linspace(1.0, 1.3, 6)) @ Vt
    assert metrics.nuclear_alignment(G, over) > 1 > metrics.alignment(G, over)
    assert metrics.alignment(G, over) == pytest.approx(
        (s * np.linspace(1.0, 1.3, 6)).sum() / (s.sum() * 1.3))
    for _ in range(20):  # trace duality: <G, X> <= ||G||_* ||X||_2
        assert metrics.alignment(G, rng.standard_normal((6, 9))) <= 1.0
    assert metrics.alignment(G, np.zeros((6, 9))) == 0.0  # the zero update, not NaN
    with pytest.raises(ValueError, match="shape"):
        metrics.alignment(np.ones(3), np.ones(3))


def test_max_sigma_error_gram_path_matches_svd():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((20, 50)) / 7
    s = np.linalg.svd(X, compute_uv=False)
    assert metrics.max_sigma_error(X) == pytest.approx(np.abs(s - 1).max(), abs=1e-14)
    assert metrics.max_sigma_error(X.T) == pytest.approx(np.abs(s - 1).max(), abs=1e-14)
    huge = np.full((3, 3), 1e200)  # its Gram matrix overflows: the SVD answers
    assert metrics.max_sigma_error(huge) == pytest.approx(3e200)


class TestNumericalRank:
    def test_rank_in_the_input_dtype_against_scipy(self):
        import scipy.linalg

        rng = np.random.default_rng(5)
        U, _ = np.linalg.qr(rng.standard_normal((40, 12)))
        V, _ = np.linalg.qr(rng.standard_normal((30, 12)))
        s = np.r_[np.geomspace(1, 1e-3, 10), 1e-6, 1e-12]  # fp32 sees 10, fp64 12
        G = (U * s) @ V.T
        assert int(metrics.numerical_rank(G)) == np.linalg.matrix_rank(G) == 12
        r32 = int(metrics.numerical_rank(G, torch.float32))
        assert r32 == np.sum(s > 40 * np.finfo(np.float32).eps * s[0]) == 10
        # Against U_r V_r^T (scipy's SVD, float64) the reduced factor is at distance 0.
        Uf, sf, Vhf = scipy.linalg.svd(G, full_matrices=False)
        ref = Uf[:, :r32] @ Vhf[:r32]
        assert float(metrics.polar_distance(ref, G, torch.float32)) < 1e-12
        assert float(metrics.polar_distance(ref, G)) > 0.2  # the fp64 rank counts two more
