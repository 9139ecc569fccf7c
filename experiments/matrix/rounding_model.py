"""How large is bf16 rounding in each step, and which model of it holds?

    python -m experiments.matrix.rounding_model [--size 256x512] [--repeats 3]

Each step of a schedule computes X' = p(X) from the bf16 iterate X.  This study runs the
engine in bf16 one step at a time (native and emulated products), computes P = p(X) exactly
in float64 from the same bf16 X, and measures how far the singular values moved:

    c_sigma = max_i |sigma_i(X') - sigma_i(P)| / (u ||P||_2),   u = 2^-8 (bf16's round-off)

(sorted singular values; c_top the same for the largest only; c_weyl = ||X' - P||_2 /
(u ||P||_2) >= c_sigma; kappa the error over u sum_j |c_j| ||X||^(2j+1), the size of the
step's terms)
on Gaussian, kappa = 1e4, power-law, low rank + noise, rank-1 and rank-1 + noise matrices and
the captured step-300 gradients and momenta of the Shakespeare GPT, each under ``--repeats``
random orthogonal rotations (same spectrum, other rounding).  If c stays O(1) while the
singular values span decades, the error scales with ||X||, not with each singular value:
the relative model (``msign.scalar.rounding_band``) is then optimistic for small singular
values, and the absolute one (``msign.scalar.noise_band`` with cu = c u) is the one to use.
Then, with c the largest measured: does the absolute model's band contain every measured
iterate's singular values, step by step, and what did the relative model predict for the
smallest one?  Blow-ups (non-finite, or sigma > 2) are counted per schedule.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm import tqdm

from msign import design, get_schedule, scalar
from msign.gemm import resolve_gemm
from msign.iterate import iterate, normalize
from msign.results import provenance, write_json

from ..common.cli import add_out
from ..common.matrices import captured, families

U_BF16 = 2.0**-8
STUDIED = ["jordan", "you", "polar-express", "polar-express-bf16", "pe-s1", "cubic"]


def schedule(name: str):
    if name == "pe-s1":  # the designed 8 x 5 table without its safety factor
        return design.polar_express(safety=1.0)
    return get_schedule(name)


def test_matrices(m: int, n: int, gradients: str | None) -> dict[str, torch.Tensor]:
    fams = families(m, n)
    g = torch.Generator().manual_seed(7)
    u = torch.randn(m, 1, generator=g, dtype=torch.float64)
    v = torch.randn(1, n, generator=g, dtype=torch.float64)
    rank1 = u @ v
    out = {k: fams[k] for k in ("gaussian", "kappa1e4", "power_law", "lowrank_noise")}
    out["rank1"] = rank1
    out["rank1_noise"] = rank1 / rank1.norm() + 1e-4 * torch.randn(
        m, n, generator=g, dtype=torch.float64) / n**0.5
    if gradients:
        out.update({k: v for k, v in captured(gradients).items() if "step300" in k})
    return out


def haar(n: int, g: torch.Generator) -> torch.Tensor:
    Q, R = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return Q * torch.sign(torch.diagonal(R))


def horner_exact(X: torch.Tensor, c) -> torch.Tensor:
    """p(X) in float64 from the (bf16) X: c0 X + (c1 A + ... + cd A^d) X, A = X X^T."""
    X = X.double()
    A = X @ X.mT
    H = c[-1] * A
    for cj in reversed(c[1:-1]):
        H = (H + cj * torch.eye(A.shape[0], dtype=A.dtype)) @ A
    return c[0] * X + H @ X


def term_scale(c, norm: float) -> float:
    """sum_j |c_j| ||X||^(2j+1): what the step's products are proportional to."""
    return sum(abs(cj) * norm ** (2 * j + 1) for j, cj in enumerate(c))


def run_one(G: torch.Tensor, name: str, gemm: str) -> dict:
    sched = schedule(name)
    path = resolve_gemm(gemm, torch.bfloat16)
    s0 = torch.linalg.svdvals(G)
    nu = sched.divisor(s0.numpy())
    X0 = (G / nu).to(torch.bfloat16)
    c0 = float(torch.linalg.matrix_norm(X0.double() - G / nu, 2) / (U_BF16 * s0[0] / nu))
    X = normalize(G.to(torch.bfloat16), sched.safety)
    steps = []
    for c in sched.step_coeffs():
        P = horner_exact(X, c)
        Xn = iterate(X, [c], gemm=path)
        # A blow-up ends the run: past ||X|| ~ 1e6 the SVDs below lose their way (LAPACK
        # has been seen to hang on such a float64 matrix), and the verdict is already in.
        finite = (bool(torch.isfinite(Xn).all()) and bool(torch.isfinite(P).all())
                  and float(torch.linalg.matrix_norm(P)) < 1e6)
        rec = {"finite": finite}
        if finite:
            normX = float(torch.linalg.matrix_norm(X.double(), 2))
            sp = torch.linalg.svdvals(P)
            sv = torch.linalg.svdvals(Xn.double())
            scale = U_BF16 * float(sp[0])
            rec["c_sigma"] = float((sv - sp).abs().max()) / scale
            rec["c_top"] = float((sv[0] - sp[0]).abs()) / scale
            err = float(torch.linalg.matrix_norm(Xn.double() - P, 2))
            rec["c_weyl"] = err / scale
            rec["kappa"] = err / (U_BF16 * term_scale(c, normX))
            rec["sigma_max"], rec["sigma_min"] = float(sv[0]), float(sv[-1])
        steps.append(rec)
        X = Xn
        if not finite:
            break
    return {"c0": c0, "x_min": float(s0[-1] / nu), "x_max": float(s0[0] / nu),
            "steps": steps}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="256x512")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--gradients", default="results/gradients/cpu.npz")
    ap.add_argument("--gemms", default="native,emulated")
    add_out(ap, "results/rounding/cpu.json")
    args = ap.parse_args(argv)
    m, n = (int(v) for v in args.size.split("x"))
    mats = test_matrices(m, n, args.gradients or None)
    g = torch.Generator().manual_seed(0)
    runs = []
    jobs = [(fam, r) for fam in mats for r in range(args.repeats)]
    for fam, r in tqdm(jobs, desc="matrices x repeats"):
        G = mats[fam]
        if G.shape[0] > G.shape[1]:
            G = G.mT.contiguous()
        if r:  # same spectrum, other rounding
            G = haar(G.shape[0], g) @ G @ haar(G.shape[1], g)
        for name in STUDIED:
            for gemm in args.gemms.split(","):
                runs.append({"family": fam, "repeat": r, "schedule": name, "gemm": gemm,
                             **run_one(G, name, gemm)})
    def stats(key: str) -> dict:
        v = np.array([s[key] for x in runs for s in x["steps"] if key in s])
        return {"max": float(v.max()), "p99": float(np.quantile(v, 0.99)),
                "median": float(np.median(v)), "count": int(v.size)}

    res = {**provenance(), "size": [m, n], "u": U_BF16, "repeats": args.repeats,
           "c_sigma": stats("c_sigma"), "c_top": stats("c_top"), "c_weyl": stats("c_weyl"),
           "kappa": stats("kappa"), "c0_max": max(x["c0"] for x in runs), "runs": runs}
    res["models"] = compare_models(runs, res["c_sigma"]["max"])
    write_json(args.out, res)
    print(summary(res))
    return res


def run_interval(run: dict) -> tuple[float, float]:
    """A run's own [x_min, x_max], kept inside (0, 1] where the model's enclosure is defined."""
    return min(max(run["x_min"], 1e-12), 0.999), min(run["x_max"], 1.0)


def final_inside(run: dict, band: tuple[float, float]) -> bool:
    """Every final singular value of ``run`` inside ``band`` (the model's proof obligation)."""
    last = run["steps"][-1]
    return bool(band[0] <= last["sigma_min"] and last["sigma_max"] <= band[1])


def compare_models(runs: list[dict], c: float) -> list[dict]:
    """Per schedule, from each finite run's own x_min and x_max: is the measured final
    [sigma_min, sigma_max] inside the absolute model's envelope (cu = c u), and what did
    the relative model (rel = u) predict for the smallest singular value?"""
    out = []
    for name in STUDIED:
        rs = [r for r in runs if r["schedule"] == name]
        sched = schedule(name)
        blown = [r for r in rs if not r["steps"][-1]["finite"]
                 or r["steps"][-1].get("sigma_max", 0) > 2]
        ok = [r for r in rs if r not in blown]
        inside, tracked, rel_pred, abs_pred, meas = 0, 0, [], [], []
        for r in ok:
            lo, hi = run_interval(r)
            t = scalar.noise_trajectory(sched, lo, hi, c * U_BF16, points=(lo,))
            a_lo, a_hi = t["points"][0][-1]
            last = r["steps"][-1]
            inside += final_inside(r, t["band"][-1])
            # and the smallest one where its own track says (a prediction: p may reorder)
            tracked += a_lo <= last["sigma_min"] <= a_hi
            rel_pred.append(scalar.rounding_band(sched, lo, U_BF16, upper=lo)[1])
            abs_pred.append([a_lo, a_hi])
            meas.append(last["sigma_min"])
        model_hi = scalar.noise_band(sched, 1e-3, c * U_BF16)[1]
        out.append({"schedule": name, "runs": len(rs), "blow_ups": len(blown),
                    "blow_up_families": sorted({r["family"] for r in blown}),
                    "final_sigmas_inside_absolute_model": inside, "finite_runs": len(ok),
                    "min_sigma_inside_its_track": tracked,
                    "absolute_model_min_sigma_track_median": np.median(abs_pred, axis=0).tolist()
                    if abs_pred else None,
                    "absolute_model_upper_end_from_1e-3": model_hi,
                    "relative_model_min_sigma_median": float(np.median(rel_pred))
                    if rel_pred else None,
                    "measured_min_sigma_median": float(np.median(meas)) if meas else None})
    return out


def summary(res: dict) -> str:
    lines = []
    for key, what in (("c_sigma", "max |sigma_i(X') - sigma_i(p(X))|"),
                      ("c_top", "|sigma_1(X') - sigma_1(p(X))|"), ("c_weyl", "||X' - p(X)||"),
                      ("kappa", "||X' - p(X)|| / (u sum |c_j| ||X||^(2j+1))")):
        c = res[key]
        lines.append(f"{key:<8} {what:<44} / (u ||p(X)||): median {c['median']:.2f}, "
                     f"99% {c['p99']:.2f}, max {c['max']:.2f} over {c['count']} steps")
    lines.append(f"{'schedule':<20}{'blow-ups':>10}{'in abs. band':>14}{'min in track':>14}"
                 f"{'abs. hi (1e-3)':>16}{'rel. model min s':>18}{'measured min s':>16}")
    for m in res["models"]:
        lines.append(f"{m['schedule']:<20}{m['blow_ups']:>5}/{m['runs']:<4}"
                     f"{m['final_sigmas_inside_absolute_model']:>8}/{m['finite_runs']:<5}"
                     f"{m['min_sigma_inside_its_track']:>8}/{m['finite_runs']:<5}"
                     f"{m['absolute_model_upper_end_from_1e-3']:>16.4g}"
                     f"{m['relative_model_min_sigma_median'] or float('nan'):>18.3g}"
                     f"{m['measured_min_sigma_median'] or float('nan'):>16.3g}"
                     + (f"  ({', '.join(m['blow_up_families'])})" if m['blow_ups'] else ""))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
