"""The paper's figures, one function each; every one reads results files or the library.

    python -m paper.figures [--out paper/figures]

Each ``fig_*`` function takes its data (a loaded results dict, or a matrix) and an output
path, draws one PDF and returns the path, so the tests can run each on tiny inputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import msign  # noqa: E402
from experiments.common.matrices import SCHEDULED  # noqa: E402
from experiments.common.plots import seed_intervals  # noqa: E402
from experiments.lm import moe  # noqa: E402
from experiments.lm.compare_optimizers import arm_of  # noqa: E402
from experiments.matrix.null_direction import iterate_values  # noqa: E402
from msign import get_schedule  # noqa: E402
from msign.scalar import band  # noqa: E402
from msign.schedules import odd_poly  # noqa: E402

from .sources import GRAD, GRAD_KEY, RESULTS, load, pending, study_command  # noqa: E402

plt.rcParams.update({"font.size": 8, "axes.titlesize": 8, "legend.fontsize": 7,
                     "figure.dpi": 150, "savefig.bbox": "tight"})
# One colour per method in every figure.
COLORS = {"cubic": "C0", "quintic": "C1", "jordan": "C3", "you": "C4", "polar-express": "C2",
          "polar-express-bf16": "C9", "newton": "C5", "qdwh": "C7", "svd": "k", "adamw": "k"}
MAPS = SCHEDULED  # the studies' schedules


def _legend_below(fig: plt.Figure, ax: plt.Axes, ncol: int = 3) -> None:
    """One legend for the whole figure, under the panels (never over the data)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol,
               frameon=False)


def _save(fig: plt.Figure, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def fig_jordan(out: Path, points: int = 2001) -> Path:
    """(1) One Jordan quintic step and its 5-fold composition on [0, 1]."""
    s = get_schedule("jordan")
    x = np.linspace(0, 1, points)
    lo, hi = band(s, lower=1e-2)
    fig, ax = plt.subplots(figsize=(3.3, 2.4))
    ax.axhspan(lo, hi, color="0.92", label=f"certified band on [0.01, 1]: [{lo:.2f}, {hi:.2f}]")
    ax.plot(x, x, color="0.6", lw=0.6, ls=":")
    ax.plot(x, odd_poly(s.step_coeffs(1)[0], x), color="C0", label="one step $p(x)$")
    ax.plot(x, s.scalar_map(x), color="C3", label="5 steps $p^{\\circ 5}(x)$")
    ax.set_xlabel("$x = \\sigma / \\|G\\|_F$")
    ax.set_ylabel("image")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.3)
    ax.legend(loc="lower right")
    return _save(fig, out)


def fig_composites(out: Path, points: int = 4001) -> Path:
    """(2) Composite maps of the named schedules on a log x-axis from 1e-4."""
    x = np.logspace(-4, 0, points)
    fig, (a, b) = plt.subplots(1, 2, figsize=(6.6, 2.5))
    for name in MAPS:
        s = get_schedule(name)
        label = f"{name} ({s.resolve_steps(None)} steps, {s.matmuls()} mm)"
        f = s.scalar_map(x)
        a.plot(x, f, color=COLORS[name], label=label, lw=1)
        b.plot(x, np.maximum(np.abs(f - 1), 1e-17), color=COLORS[name], lw=1)
    a.axhline(1, color="0.6", lw=0.6, ls=":")
    for ax in (a, b):
        ax.set_xscale("log")
        ax.set_xlabel("$x = \\sigma / (s\\,\\|G\\|_F)$")
        ax.axvline(1e-3, color="0.6", lw=0.6, ls="--")
    a.set_ylabel("$f(x)$")
    a.set_ylim(0, 1.3)
    b.set_yscale("log")
    b.set_ylabel("$|f(x) - 1|$")
    b.set_ylim(1e-17, 2)
    fig.tight_layout()
    _legend_below(fig, a)
    return _save(fig, out)


def _interval(lo: float, hi: float) -> str:
    """[lo, hi], or 1 +- its half-width once that is too small to read in decimals."""
    if hi - lo < 1e-2:
        return f"$1 \\pm {max(1 - lo, hi - 1):.1e}$"
    return f"$[{lo:.3g}, {hi:.3g}]$"


def fig_pe_steps(out: Path, name: str = "polar-express", lower: float = 1e-3,
                 points: int = 801) -> Path:
    """(3) Each Polar Express polynomial and the rigorous interval it maps.

    While the interval entering a step is wide, the panel shows p on [0, 1.05 u]; once it is
    within 1% of one (the last steps), it shows p(x) - 1 against x - 1 on that interval,
    where the step's work (squeezing 1 +- 1e-3 to 1 +- 1e-9 and below) is visible.
    """
    s = get_schedule(name)
    coeffs = s.step_coeffs()
    k = len(coeffs)
    cols = 4
    fig, axes = plt.subplots((k + cols - 1) // cols, cols, figsize=(6.6, 2.4 * ((k + 3) // 4)),
                             squeeze=False)
    lo, hi = lower, 1.0
    for i, (c, ax) in enumerate(zip(coeffs, axes.flat, strict=False)):
        nlo, nhi = band(s, lower=lower, steps=i + 1)
        if hi - lo > 1e-2:
            x = np.linspace(0, 1.05 * hi, points)
            ax.axvspan(lo, hi, color="C0", alpha=0.15, lw=0)
            ax.axhspan(nlo, nhi, color="C2", alpha=0.25, lw=0)
            ax.plot(x, odd_poly(c, x), color="k", lw=1)
            ax.set_xlim(0, 1.05 * hi)
            ax.set_xlabel("$x$ (input singular value)", fontsize=6)
            ax.set_ylabel("$p(x)$", fontsize=6)
        else:  # zoom: deviations from one
            w = max(1 - lo, hi - 1)
            x = np.linspace(1 - 1.5 * w, 1 + 1.5 * w, points)
            ax.axvspan(lo - 1, hi - 1, color="C0", alpha=0.15, lw=0)
            ax.axhspan(nlo - 1, nhi - 1, color="C2", alpha=0.25, lw=0)
            ax.plot(x - 1, odd_poly(c, x) - 1, color="k", lw=1)
            ax.axhline(0, color="0.6", lw=0.5, ls=":")
            ax.set_xlabel("$x - 1$", fontsize=6)
            ax.set_ylabel("$p(x) - 1$", fontsize=6)
            ax.ticklabel_format(axis="both", style="sci", scilimits=(-2, 2))
            ax.xaxis.get_offset_text().set_fontsize(5)
            ax.yaxis.get_offset_text().set_fontsize(5)
        ax.set_title(f"step {i + 1}\n{_interval(lo, hi)} $\\to$ {_interval(nlo, nhi)}",
                     fontsize=6)
        ax.tick_params(labelsize=5.5)
        lo, hi = nlo, nhi
    for ax in axes.flat[k:]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, out)


def fig_iterates(G: np.ndarray, out: Path, name: str = "polar-express",
                 steps: tuple[int, ...] = (1, 2, 3, 5, 8)) -> Path:
    """(4) Singular values of real iterates vs the scalar-map prediction, fp64 and bf16.

    ``G`` is one matrix (a captured gradient); see :func:`iterate_values`.
    """
    sched = get_schedule(name)
    fig, axes = plt.subplots(1, 3, figsize=(6.6, 2.4))
    last = max(steps)
    colors = ["C0", "C1", "C4", "C3", "k"]  # the last step in black, drawn last
    for ax, dtype in zip(axes, (torch.float64, torch.bfloat16), strict=False):
        x, vals = iterate_values(G, name, dtype, last)
        x = np.maximum(x, 1e-30)  # every pair is shown, an exactly zero one at the axis' end
        xs = np.logspace(np.log10(x.min()), 0, 400)
        for k, color in zip(steps, colors, strict=False):
            proj = vals[k - 1]
            ax.plot(xs, sched.scalar_map(xs, k), color=color, lw=0.8 if k == last else 0.6,
                    label=f"step {k}", zorder=3 if k == last else 2)
            ax.plot(x, proj, "o" if k == last else ".", color=color,
                    ms=2.2 if k == last else 2.5, mfc="none" if k == last else color)
        ax.set_xscale("log")
        dname = str(dtype).removeprefix("torch.")
        ax.set_title(f"{dname}: all {len(x)} singular pairs")
        ax.set_xlabel("$x_i = \\sigma_i / (s\\,\\|G\\|_F)$")
        # the gap to the prediction after the last step: rounding, nothing else
        gap = np.abs(vals[-1] - sched.scalar_map(x, last))
        axes[2].plot(x, np.maximum(gap, 1e-18), ".", ms=2.5, label=dname)
    axes[0].set_ylabel("$u_i^T X_k v_i$ (dots), $f_k(x_i)$ (lines)")
    axes[2].set_xscale("log")
    axes[2].set_yscale("log")
    axes[2].set_title(f"$|u_i^T X_{{{last}}} v_i - f_{{{last}}}(x_i)|$")
    axes[2].set_xlabel(axes[0].get_xlabel())
    axes[2].legend()
    fig.tight_layout()
    _legend_below(fig, axes[0], ncol=len(steps))
    return _save(fig, out)


ERRORS = {"max_sigma_err": "max $|\\sigma_i(X_k) - 1|$",
          "dist_svd": "$\\|X_k - UV^T\\|_F / \\|UV^T\\|_F$",
          "dist_rank": "$\\|X_k - U_rV_r^T\\|_F / \\|U_rV_r^T\\|_F$"}


def _flops_per_step(method: str, shape: tuple[int, int], steps: int) -> list[float]:
    """Cumulative FLOPs after each of ``steps`` steps of ``method`` on an m x n matrix (the cost
    model of ``msign.msign(..., return_info=True)``: schedules' products, the operation counts
    of Newton's inverses and QDWH's QR/Cholesky steps)."""
    m, n = sorted(shape)
    G = torch.randn(m, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return [msign.msign(G, method, steps=k, return_info=True)[1]["flops"]
            for k in range(1, steps + 1)]


def fig_error_vs_flops(res: dict, out: Path, family: str = "gaussian",
                       dtypes: tuple[str, ...] = ("fp64", "fp32", "bf16"),
                       error: str = "max_sigma_err", shape: tuple[int, int] | None = None
                       ) -> Path:
    """(5) An error (see ERRORS) after each step against FLOPs, one panel per precision.

    FLOPs, not matrix products: a product of the m x m Gram side costs less than one of the
    n side, and Newton's inverses and QDWH's factorizations are not products at all.
    """
    shape = tuple(shape or res["size"])
    dtypes = tuple(d for d in dtypes if any(r["dtype"] == d for r in res["runs"]))
    fig, axes = plt.subplots(1, len(dtypes), figsize=(2.2 * len(dtypes), 2.3), sharey=True,
                             squeeze=False)
    cache: dict[tuple, list[float]] = {}
    for ax, dt in zip(axes[0], dtypes, strict=True):
        for r in res["runs"]:
            if r["dtype"] != dt or r["family"] != family or not r["steps"]:
                continue
            rows = r["steps"]
            key = (r["method"], len(rows))
            if key not in cache:
                cache[key] = _flops_per_step(r["method"], shape, len(rows))
            err = [max(row[error], 1e-17) for row in rows]
            classical = rows[0]["matmuls"] is None
            ax.plot(cache[key], err, color=COLORS[r["method"]], lw=1,
                    ls=":" if classical else "-", marker="s" if classical else ".",
                    ms=2.5, label=r["method"])
        ax.set_yscale("log")
        ax.set_xscale("log")
        # decades only: the minor labels (2x10^8, 3x10^8, ...) overlap at this width
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, numticks=4))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(dt)
        ax.set_xlabel(f"FLOPs ({shape[0]}$\\times${shape[1]})")
    axes[0][0].set_ylabel(ERRORS[error])
    fig.tight_layout()
    # the fp64 panel holds every method, the classical ones included
    _legend_below(fig, axes[0][0], ncol=5)
    return _save(fig, out)


def fig_timing(results: list[dict], out: Path) -> Path:
    """(6) Time per call relative to torch.optim.Muon's Newton-Schulz at equal steps, per shape
    and schedule, one panel per device (its name, torch version and date in the title)."""
    fig, axes = plt.subplots(1, len(results), figsize=(3.3 * len(results), 2.7), sharey=True,
                             squeeze=False)
    for ax, res in zip(axes[0], results, strict=True):
        rows = [r for r in res["rows"] if r.get("ratio_torch_ns") is not None]
        shapes = list(dict.fromkeys(tuple(r["shape"]) for r in rows))
        methods = [m for m in COLORS if any(r["method"] == m for r in rows)]
        width = 0.8 / max(1, len(methods))
        for j, m in enumerate(methods):
            ratio = {tuple(r["shape"]): r["ratio_torch_ns"] for r in rows if r["method"] == m}
            ax.bar([i + j * width for i in range(len(shapes))],
                   [ratio.get(sh, np.nan) for sh in shapes], width, color=COLORS[m], label=m)
        ax.axhline(1, color="0.4", lw=0.7, ls="--")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(shapes))])
        ax.set_xticklabels(["x".join(map(str, sh)) for sh in shapes], rotation=30, fontsize=6)
        device = res["device"].split(" [")[0].replace(" cpu, 2 threads", "")
        ax.set_title(f"{device}, {res['dtype']}\ntorch {res['torch']}, {res['date']}",
                     fontsize=6.5)
    axes[0][0].set_ylabel("time / torch.optim.Muon NS (equal steps)")
    fig.tight_layout()
    _legend_below(fig, axes[0][0], ncol=5)
    return _save(fig, out)


def fig_rounding(res: dict, out: Path, family: str = GRAD,
                 schedule: str = "polar-express") -> Path:
    """(8) bf16 rounding per step: (left) the distribution of the measured error constants
    over every step of every run; (right) one run's smallest and largest singular value
    against the absolute model's enclosure (c the largest measured) and the relative
    model's prediction for the smallest one."""
    from msign.scalar import noise_trajectory, rounding_band

    fig, axes = plt.subplots(1, 2, figsize=(6.6, 2.5))
    for key, color, label in (("c_sigma", "C0", "$c_\\sigma$: any $\\sigma_i$"),
                              ("c_top", "C2", "$c_{top}$: $\\sigma_1$"),
                              ("c_weyl", "C3", "$c_W$: $\\|X' - p(X)\\|_2$")):
        v = np.sort([s[key] for r in res["runs"] for s in r["steps"] if key in s])
        axes[0].plot(v, np.arange(1, len(v) + 1) / len(v), color=color, lw=1, label=label)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("error / ($u\\,\\|p(X)\\|_2$)")
    axes[0].set_ylabel("fraction of steps")
    axes[0].legend()
    axes[0].set_title(f"{res['size'][0]}$\\times${res['size'][1]}, {len(res['runs'])} runs")
    run = next(r for r in res["runs"] if (r["family"], r["schedule"], r["repeat"], r["gemm"])
               == (family, schedule, 0, "native"))
    sched = get_schedule(schedule)
    c = res["c_sigma"]["max"]
    lo, hi = max(run["x_min"], 1e-12), min(run["x_max"], 1.0)
    t = noise_trajectory(sched, lo, hi, c * res["u"], points=(lo,))
    k = np.arange(len(run["steps"]) + 1)
    band_lo = [lo] + [b[0] for b in t["band"]]
    band_hi = [hi] + [b[1] for b in t["band"]]
    track_lo = [lo] + [p[0] for p in t["points"][0]]
    track_hi = [lo] + [p[1] for p in t["points"][0]]
    rel = [lo] + [rounding_band(sched, lo, res["u"], steps=j, upper=lo)[1]
                  for j in range(1, len(k))]
    ax = axes[1]
    floor = 1e-8
    ax.fill_between(k, np.maximum(band_lo, floor), band_hi, color="C0", alpha=0.15, lw=0,
                    label=f"absolute model, all $\\sigma$ (c = {c:.2f})")
    ax.fill_between(k, np.maximum(track_lo, floor), track_hi, color="C1", alpha=0.3, lw=0,
                    label="absolute model, $\\sigma_{\\min}$")
    ax.plot(k, rel, "k--", lw=0.8, label="relative model, $\\sigma_{\\min}$")
    ax.plot(k, [lo] + [s["sigma_min"] for s in run["steps"]], "o-", color="C1", ms=2.5,
            lw=0.8, label="measured $\\sigma_{\\min}$")
    ax.plot(k, [hi] + [s["sigma_max"] for s in run["steps"]], "s-", color="C0", ms=2.5,
            lw=0.8, label="measured $\\sigma_{\\max}$")
    ax.set_yscale("log")
    ax.set_ylim(floor, 2)
    ax.set_xlabel("step")
    ax.set_title(f"{schedule}, bf16, {family.split(':')[0]} (step 300)")
    ax.legend(fontsize=5.5, loc="lower right")
    fig.tight_layout()
    return _save(fig, out)


def fig_entropy(res: dict, out: Path) -> Path:
    """(9) Mean singular-value entropy per matrix group against training step, per arm: the
    mean over seeds (line) and the range of the per-seed means (band)."""
    groups = res["groups"]
    fig, axes = plt.subplots(1, len(groups), figsize=(6.8, 2.2), sharey=True)
    arms = list(dict.fromkeys(t["arm"] for t in res["table"]))
    per_seed: dict[tuple, list[float]] = {}
    for m in res["matrices"]:
        per_seed.setdefault((m["arm"], m["group"], m["step"], m["seed"]), []).append(m["entropy"])
    for ax, g in zip(axes, groups, strict=True):
        for i, arm in enumerate(arms):
            pts = [(t["step"], t["mean_entropy"]) for t in res["table"]
                   if t["arm"] == arm and t["group"] == g]
            color, ls = ARM_STYLE.get(arm, (f"C{i % 10}", "-"))
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", ms=2.5, color=color, ls=ls,
                        lw=1, label=arm)
                seeds = [[np.mean(v) for (a, gg, s, _), v in per_seed.items()
                          if (a, gg, s) == (arm, g, step)] for step, _ in pts]
                if all(seeds):
                    ax.fill_between([s for s, _ in pts], [min(v) for v in seeds],
                                    [max(v) for v in seeds], color=color, alpha=0.2, lw=0)
        ax.set_title(g)
        ax.set_xlabel("step")
    axes[0].set_ylabel("mean $H(\\sigma)$")
    fig.tight_layout()
    _legend_below(fig, axes[0], ncol=3)
    return _save(fig, out)


def fig_budget(res: dict, out: Path) -> Path:
    """(10) Final validation loss (mean, min-max over seeds) against matrix products per
    orthogonalization, and the measured orthogonalization time relative to Jordan's."""
    fig, axes = plt.subplots(1, 2, figsize=(6.6, 2.4))
    for r in res["rows"]:
        v = np.array(r["final_val_loss"])
        color = "C3" if r["name"] == "muon-jordan" else "C0"
        axes[0].errorbar(r["matmuls"], v.mean(), yerr=[[v.mean() - v.min()], [v.max() - v.mean()]],
                         fmt="o", ms=3, color=color, capsize=2)
        axes[0].annotate(r["name"].removeprefix("muon-"), (r["matmuls"], v.mean()),
                         fontsize=5.5, xytext=(3, 2), textcoords="offset points")
        axes[1].plot(r["matmuls"], r["orthogonalization_vs_jordan"],
                     "o", ms=3, color=color)
    lo, hi = res["headline"]["jordan_range"]
    axes[0].axhspan(lo, hi, color="C3", alpha=0.12, lw=0, label="Jordan's seed range")
    axes[0].axhline(res["adamw_final_val_mean"], color="k", ls="--", lw=0.8, label="AdamW mean")
    axes[0].set_xlabel("matrix products per orthogonalization")
    axes[0].set_ylabel("final validation loss")
    axes[0].legend()
    axes[1].set_xlabel("matrix products per orthogonalization")
    axes[1].set_ylabel("orthogonalization time / Jordan's")
    axes[1].axhline(1, color="0.5", lw=0.6, ls=":")
    fig.tight_layout()
    return _save(fig, out)


ARM_STYLE = {"adamw": ("k", "--"), "muon-jordan": ("C3", "-"),
             "muon-polar-express": ("C2", "-"), "normuon-polar-express": ("C1", "-"),
             "muon-jordan-cwd": ("C4", "-."), "muonclip-jordan": ("C9", ":")}


def fig_lm(summary: dict, out: Path, arms: list[str] | None = None) -> Path:
    """(7) Validation loss: each arm at its best learning rate, the mean over seeds with a
    min-max band; against step (whole run, and its second half enlarged) and against the
    measured wall clock."""
    table = {arm_of(t): t for t in summary["table"]}
    arms = [a for a in (arms or list(table)) if a in table]
    fig, axes = plt.subplots(1, 3, figsize=(6.8, 2.5))
    tail_lo, tail_hi = np.inf, -np.inf
    for i, arm in enumerate(arms):
        t = table[arm]
        runs = [r for r in summary.get("best_runs", summary["runs"])
                if arm_of(r) == arm and r["lr"] == t["best_lr"]]
        vals = np.array([[v for _, v in r["val"]] for r in runs])
        steps = np.array([st for st, _ in runs[0]["val"]], dtype=float)
        walls = (np.mean([[w for _, w in r["wall"]] for r in runs], axis=0)
                 if all("wall" in r for r in runs) else None)
        color, ls = ARM_STYLE.get(arm, (f"C{i % 10}", "-"))
        label = f"{arm} (lr {t['best_lr']:g}, {len(runs)} seeds)"
        half = steps >= steps[-1] / 2
        for ax, xs, sel in ((axes[0], steps, slice(None)), (axes[1], steps, half),
                            (axes[2], walls, slice(None))):
            if xs is None:
                continue
            ax.plot(xs[sel], vals.mean(0)[sel], color=color, ls=ls, lw=1, label=label)
            ax.fill_between(xs[sel], vals.min(0)[sel], vals.max(0)[sel], color=color,
                            alpha=0.15, lw=0)
        tail_lo, tail_hi = min(tail_lo, vals[:, half].min()), max(tail_hi, vals[:, half].max())
    axes[1].set_ylim(tail_lo - 0.01, tail_hi + 0.01)
    for ax, xlabel in zip(axes, ("step", "step (second half)", "measured wall time [s]"),
                          strict=True):
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel("validation loss [nats/byte]")
    fig.tight_layout()
    _legend_below(fig, axes[0], ncol=2)
    return _save(fig, out)


def fig_cnn(summary: dict, out: Path) -> Path:
    """Conv-net study: test accuracy per arm, held-out seeds and their mean with its 95%
    interval."""
    rows = summary["rows"]
    fig, ax = plt.subplots(figsize=(4.6, 0.45 * len(rows) + 0.9))
    seed_intervals(ax, [r["arm"] for r in rows], [r["finals"] for r in rows],
                   [(r["test_acc_mean"], *r["test_acc_ci95"]) for r in rows], scale=100)
    ax.set_xlabel(f"test accuracy [%] ({len(rows[0]['finals'])} held-out seeds; mean, 95% "
                  "interval)")
    fig.tight_layout()
    return _save(fig, out)


def fig_moe(summary: dict, out: Path) -> Path:
    """MoE study: the study's own two panels (:func:`experiments.lm.moe.draw`)."""
    fig, axes = plt.subplots(1, 2, figsize=(6.6, 2.5))
    moe.draw(axes, summary)
    fig.tight_layout()
    return _save(fig, out)


def main(argv: list[str] | None = None) -> list[Path]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "figures"))
    ap.add_argument("--results", default=str(RESULTS))
    args = ap.parse_args(argv)
    out, res = Path(args.out), Path(args.results)
    grads = load("gradients", res)
    conv = load("convergence", res)
    made = [fig_jordan(out / "jordan.pdf"), fig_composites(out / "composites.pdf"),
            fig_pe_steps(out / "pe_steps.pdf"),
            fig_iterates(grads[GRAD_KEY], out / "iterates.pdf"),
            fig_error_vs_flops(conv, out / "error_gaussian.pdf"),
            fig_error_vs_flops(conv, out / "error_gradient.pdf", family=GRAD, error="dist_rank",
                               shape=grads[GRAD_KEY].shape),
            fig_timing([load("timing_cpu", res), load("timing_cuda", res)], out / "timing.pdf"),
            fig_rounding(load("rounding", res), out / "rounding.pdf")]
    todo = pending(res)
    for study, key, draw, pdf in (("LM", "lm_selection", fig_lm, "lm.pdf"),
                                  ("Entropy", "entropy", fig_entropy, "entropy.pdf"),
                                  ("Budget", "budget", fig_budget, "budget.pdf"),
                                  ("CNN", "cnn", fig_cnn, "cnn.pdf"),
                                  ("MoE", "moe", fig_moe, "moe.pdf")):
        if study in todo:
            print(f"pending: {study} (missing {', '.join(todo[study])}; "
                  f"{study_command(study)})", file=sys.stderr)
        else:
            made.append(draw(load(key, res), out / pdf))
    for p in made:
        print(p)
    return made


if __name__ == "__main__":
    main()
