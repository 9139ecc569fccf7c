"""The matrices every matrix study uses, the schedule list they study, and how they score.

Matrix families with prescribed spectra (:func:`families`), the real gradients and momenta
that ``python -m experiments.lm.capture`` saved (:func:`captured`), the error measures and
the one blow-up rule of every study (:func:`blew_up`).
"""

from __future__ import annotations

import numpy as np
import torch

from msign import metrics
from msign.exact import default_rtol, svd_msign

SCHEDULED = ["cubic", "quintic", "jordan", "you", "polar-express", "polar-express-bf16"]
CLASSICAL = ["newton", "qdwh"]


def family_name(key: str) -> str:
    """The matrix-family name of a captured matrix from its key in the capture's ``.npz``:
    ``"blocks.3.fc.weight/step300/grad"`` -> ``"blocks.3.fc.weight:step300:grad"``."""
    return key.replace("/", ":")


#: The captured matrix the precision studies and the paper follow (the last MLP layer's
#: gradient at step 300): its key in ``results/gradients/cpu.npz``.
GRAD_KEY = "blocks.3.fc.weight/step300/grad"


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


#: The dtype whose numerical rank defines the reference U_r V_r^T of ``dist_rank``: the
#: gradients are computed and stored in fp32, so directions below max(m, n) eps_fp32 sigma_1
#: are not there for any method to map to one.
RANK_DTYPE = torch.float32


def rank_reference(G64: torch.Tensor) -> torch.Tensor:
    """U_r V_r^T, r the numerical rank of G at :data:`RANK_DTYPE` (msign's own definition)."""
    return svd_msign(G64, default_rtol(*G64.shape[-2:], RANK_DTYPE))


def errors(X: torch.Tensor, ref: torch.Tensor, ref_r: torch.Tensor | None = None
           ) -> dict[str, float]:
    """max |sigma - 1|, orthogonality, distance to the full-rank factor ``ref`` and (given
    ``ref_r``, :func:`rank_reference`) to the rank-r one."""
    out = {"max_sigma_err": float(metrics.max_sigma_error(X)),
           "orth_err": float(metrics.orthogonality_error(X)),
           "dist_svd": float(metrics.relative_distance(X, ref))}
    if ref_r is not None:
        out["dist_rank"] = float(metrics.relative_distance(X, ref_r))
    return out


def finite_errors(X: torch.Tensor, ref: torch.Tensor, G: torch.Tensor | None = None,
                  ref_r: torch.Tensor | None = None) -> dict:
    """max |sigma - 1|, distance to ``ref`` (and ``ref_r``), and given G the nuclear-norm
    alignment <G, X>/||G||_* and the scale-free :func:`msign.metrics.alignment`, or None for
    all when X is not finite; ``blow_up`` by :func:`blew_up`."""
    if not bool(torch.isfinite(X).all()):
        return {"finite": False, "max_sigma_err": None, "dist_svd": None, "dist_rank": None,
                "nuclear_alignment": None, "alignment": None, "blow_up": True}
    e = {"finite": True, "max_sigma_err": float(metrics.max_sigma_error(X)),
         "dist_svd": float(metrics.relative_distance(X, ref))}
    if ref_r is not None:
        e["dist_rank"] = float(metrics.relative_distance(X, ref_r))
    if G is not None:
        e["nuclear_alignment"] = float(metrics.nuclear_alignment(G.to(X.device), X))
        e["alignment"] = float(metrics.alignment(G.to(X.device), X))
    e["blow_up"] = blew_up(e)
    return e


def blew_up(e: dict) -> bool:
    """The one blow-up rule of every study: a non-finite iterate or a singular value above 2
    (|sigma - 1| > 1 with sigma >= 0)."""
    return not e["finite"] or e["max_sigma_err"] > 1
