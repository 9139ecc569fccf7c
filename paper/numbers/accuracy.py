"""Sections 4-5: the captured gradients, convergence, the normalization study, Gram."""

from __future__ import annotations

import math

import numpy as np

from experiments.common.matrices import blew_up

from ..sources import GRAD, GRAD_KEY
from .format import sci, tex


def gradient_numbers(npz: np.lib.npyio.NpzFile) -> dict[str, str]:
    """What the captured gradients look like: the share of singular values below 1e-3 of the
    Frobenius norm at step 10, the count at step 300, and the direction of the smallest."""
    tiny10, count300, cosines, ranks = [], set(), [], set()
    for key in npz.files:
        if "/" not in key:
            continue
        G = npz[key].astype(np.float64)
        _, s, vt = np.linalg.svd(G, full_matrices=False)
        small = s < 1e-3 * np.linalg.norm(G)
        ranks.add(len(s))
        if "step10/grad" in key:
            tiny10.append(float(small.mean()))
        if "step300" in key:
            count300.add(int(small.sum()))
            cosines.append(abs(vt[-1].sum()) / math.sqrt(len(s)))  # against (1, ..., 1)
    if len(ranks) != 1 or count300 != {1}:
        raise ValueError(f"the paper says one of n at step 300 in every matrix; got "
                         f"ranks {ranks}, counts {count300}")
    (n,) = ranks
    return {"GradTenMin": f"{100 * min(tiny10):.0f}", "GradTenMax": f"{100 * max(tiny10):.0f}",
            "GradRank": str(n), "InvSqrtRank": f"{1 / math.sqrt(n):.3f}",
            "GradOnesCos": f"{math.floor(min(cosines) * 1e4) / 1e4:.4f}"}


def convergence_numbers(res: dict) -> dict[str, str]:
    """Final errors of the convergence study on the captured gradient, and the largest gap
    between the bf16 singular values and the scalar map over the captured matrices."""
    runs = {(r["dtype"], r["family"], r["method"]): r for r in res["runs"]}

    def final(dt: str, fam: str, method: str) -> dict:
        r = runs[dt, fam, method]
        return r["steps"][min(r["default_steps"], len(r["steps"])) - 1]

    out = {"ConvSize": "\\times".join(map(str, res["size"])),
           "ConvDevice": tex(res["device"])}
    gaps = [final(*k)["scalar_map_gap"] for k, r in runs.items()
            if k[0] == "bf16" and ":" in k[1] and "scalar_map_gap" in r["steps"][0]]
    out.update(GapMin=sci(min(gaps), 2), GapMax=sci(max(gaps), 2))
    return out


def null_direction_numbers(res: dict) -> dict[str, str]:
    """The captured gradient's null direction (experiments/matrix/null_direction.py): each
    method's distance to the full-rank U V^T and to U_r V_r^T at the fp32 rank, the
    scale-free alignment, where bf16 puts the null direction, and the iterate gaps."""
    if res["key"] != GRAD_KEY:
        raise ValueError(f"null_direction ran on {res['key']}, the paper follows {GRAD_KEY}")
    m = res["methods"]
    out = {"NullRank": str(res["rank"]), "NullRankFull": str(res["rank_fp64"])}
    for name, key in (("polar-express", "PE"), ("newton", "Newton"), ("qdwh", "QDWH"),
                      ("jordan", "Jordan"), ("polar-express-bf16", "PEbf")):
        for dt, suffix in (("fp64", ""), ("bf16", "Bf")):
            if dt in m[name]:
                r = m[name][dt]
                out[f"Dist{key}{suffix}Full"] = sci(r["dist_svd"], 2)
                out[f"Dist{key}{suffix}Rank"] = sci(r["dist_rank"], 2)
                out[f"Align{key}{suffix}"] = f"{r['alignment']:.4f}"
    pe = m["polar-express"]["bf16"]
    out.update(NullLift=f"{pe['null_lift']:.2f}", NullInCol=f"{pe['null_in_col']:.3f}",
               IterGapFp=sci(res["iterate_gap"]["float64"], 1),
               IterGapBf=sci(res["iterate_gap"]["bfloat16"], 1))
    return out


def precision_numbers(res: dict) -> dict[str, str]:
    """Normalization study (experiments/matrix/precision.py): blow-ups by the one rule, and what the
    Schatten-4 normalization does to each metric."""
    rows = res["rows"]

    def sel(sched: str, norm: str, dtype: str | None = None, fam=None) -> list[dict]:
        return [r for r in rows if (r["schedule"], r["normalization"]) == (sched, norm)
                and dtype in (None, r["dtype"]) and (fam is None or fam(r["family"]))]

    def blowups(sched: str, norm: str) -> str:
        rs = sel(sched, norm)
        return f"{sum(r['verdict'] == 'blow-up' for r in rs)}/{len(rs)}"

    def med(key: str, norm: str) -> float:
        return float(np.median([r[key] for r in sel("polar-express", norm, "bf16")]))

    def one(key: str, norm: str, fam: str) -> float:
        (r,) = sel("polar-express", norm, "bf16", lambda f: f == fam)
        return r[key]

    grads = [r["max_sigma_err"] for r in sel("polar-express", "schatten4", "fp64",
                                             lambda f: ":" in f)]
    return {"BlowPETwo": blowups("polar-express", "power-2"),
            "BlowPEEight": blowups("polar-express", "power-8"),
            "BlowPEbfEight": blowups("polar-express-bf16", "power-8"),
            "BlowJordanTwo": blowups("jordan", "power-2"),
            "BlowPEFro": blowups("polar-express", "fro"),
            "PrecPEFro": sci(med("max_sigma_err", "fro"), 1),
            "PrecPESchatten": sci(med("max_sigma_err", "schatten4"), 1),
            "PrecSFpMin": f"{min(grads):.2f}", "PrecSFpMax": f"{max(grads):.3f}",
            "PrecDistGradFro": f"{one('dist_rank', 'fro', GRAD):.3f}",
            "PrecDistGradS": f"{one('dist_rank', 'schatten4', GRAD):.3f}",
            "PrecDistKappaFro": f"{one('dist_rank', 'fro', 'kappa1e4'):.3f}",
            "PrecDistKappaS": f"{one('dist_rank', 'schatten4', 'kappa1e4'):.3f}",
            "PrecAlignFro": f"{med('alignment', 'fro'):.4f}",
            "PrecAlignS": f"{med('alignment', 'schatten4'):.4f}"}


def gram_numbers(res: dict) -> dict[str, str]:
    """Gram-side iteration: blow-ups per restart interval in bf16 (the rule of every study),
    time and FLOP ratios."""
    bf = [r for r in res["accuracy"] if r["dtype"] == "bf16"]
    out = {"GramDevice": tex(res["device"])}
    for key, r in (("Two", 2), ("Three", 3), ("Never", None)):
        out[f"GramBlow{key}"] = f"{sum(blew_up(x[f'restart_{r}']) for x in bf)}/{len(bf)}"
    t2 = [t for t in res["timing"] if t["restart"] == 2 and t["dtype"] == "bf16"]
    out.update(GramTimeMin=f"{min(t['time_ratio'] for t in t2):.2f}",
               GramTimeMax=f"{max(t['time_ratio'] for t in t2):.2f}",
               GramTimeMedian=f"{np.median([t['time_ratio'] for t in t2]):.2f}",
               GramLoad=f"{res.get('load_average_1min', float('nan')):.1f}",
               GramFlopMin=f"{min(t['flop_ratio'] for t in t2):.2f}",
               GramFlopMax=f"{max(t['flop_ratio'] for t in t2):.2f}",
               GramFpDiff=sci(max(x[f"restart_{k}"]["max_diff_to_standard"]
                                  for x in res["accuracy"] if x["dtype"] == "fp64"
                                  for k in (2, 3)), 1))
    return out
