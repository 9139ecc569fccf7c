import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# HYPOTHESIS_PROFILE=stress looks 20x harder for a counterexample than CI has time for.
settings.register_profile(
    "stress", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def with_singular_values(m: int, n: int, s, seed: int = 0):
    """G = U diag(s) V^T with Haar-random U (m x k), V (n x k); returns (G, U, V)."""
    rng = np.random.default_rng(seed)
    k = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, k)))
    V, _ = np.linalg.qr(rng.standard_normal((n, k)))
    s = np.asarray(s, dtype=np.float64)
    return (U * s) @ V.T, U, V


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def tol(dtype, multiple: float) -> float:
    """A tolerance written as ``multiple`` units of the dtype's machine epsilon (numpy or torch
    dtype): ``tol(np.float64, 4500)`` is 1.0e-12, ``tol(torch.float32, 8)`` 9.5e-7."""
    import torch

    eps = torch.finfo(dtype).eps if isinstance(dtype, torch.dtype) else np.finfo(dtype).eps
    return multiple * eps
