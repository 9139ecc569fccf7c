"""The matrices every matrix study uses, the schedule list they study, and how they score.

Matrix families with prescribed spectra (:func:`families`), the real gradients and momenta
that ``python -m experiments.lm.capture`` saved (:func:`captured`), the error measures and
the one blow-up rule of every study (:func:`blew_up`).
"""

from __future__ import annotations

import numpy as np
import torch

from msign import metrics

SCHEDULED = ["cubic", "quintic", "jordan", "you", "polar-express", "polar-express-bf16"]
CLASSICAL = ["newton", "qdwh"]


def family_name(key: str) -> str:
    """The matrix-family name of a captured matrix from its key in the capture's ``.npz``:
    ``"blocks.3.fc.weight/step300/grad"`` -> ``"blocks.3.fc.weight:step300:grad"``."""
    return key.replace("/", ":")


def captured(path: str) -> dict[str, torch.Tensor]:
    """Real gradients/momenta saved by experiments.lm.capture, as float64 matrices."""
    with np.load(path) as z:
        return {family_name(k): torch.from_numpy(z[k]).double() for k in z.files
                if k.endswith(("grad", "momentum")) and "step" in k}


def families(m: int, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Float64 test matrices (m <= n) with prescribed spectra."""
    g = torch.Generator().manual_seed(seed)
    k = min(m, n)
    U, _ = torch.linalg.qr(torch.randn(m, k, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=torch.float64))

    def spec(s: torch.Tensor) -> torch.Tensor:
        return (U * s) @ V.T

    i = torch.arange(1, k + 1, dtype=torch.float64)
    low = torch.randn(m, 16, generator=g, dtype=torch.float64) @ torch.randn(
        16, n, generator=g, dtype=torch.float64)
    out = {
        "gaussian": torch.randn(m, n, generator=g, dtype=torch.float64),
        "kappa1e2": spec(torch.logspace(0, -2, k, dtype=torch.float64)),
        "kappa1e4": spec(torch.logspace(0, -4, k, dtype=torch.float64)),
        "kappa1e8": spec(torch.logspace(0, -8, k, dtype=torch.float64)),
        "clustered": spec(torch.where(i <= k // 2, 1.0, 1e-3).to(torch.float64)),
        "power_law": spec(1 / i),
        "lowrank_noise": low / low.norm() + 1e-3 * torch.randn(m, n, generator=g,
                                                               dtype=torch.float64) / n**0.5,
    }
    return out


def errors(X: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    return {"max_sigma_err": float(metrics.max_sigma_error(X)),
            "orth_err": float(metrics.orthogonality_error(X)),
            "dist_svd": float(metrics.relative_distance(X, ref))}


def finite_errors(X: torch.Tensor, ref: torch.Tensor, G: torch.Tensor | None = None) -> dict:
    """max |sigma - 1|, distance to ``ref`` and (given G) the nuclear-norm alignment
    <G, X>/||G||_*, or None for all when X is not finite; ``blow_up`` by :func:`blew_up`."""
    if not bool(torch.isfinite(X).all()):
        return {"finite": False, "max_sigma_err": None, "dist_svd": None,
                "nuclear_alignment": None, "blow_up": True}
    e = {"finite": True, "max_sigma_err": float(metrics.max_sigma_error(X)),
         "dist_svd": float(metrics.relative_distance(X, ref))}
    if G is not None:
        e["nuclear_alignment"] = float(metrics.nuclear_alignment(G.to(X.device), X))
    e["blow_up"] = blew_up(e)
    return e


def blew_up(e: dict) -> bool:
    """The one blow-up rule of every study: a non-finite iterate or a singular value above 2
    (|sigma - 1| > 1 with sigma >= 0)."""
    return not e["finite"] or e["max_sigma_err"] > 1
