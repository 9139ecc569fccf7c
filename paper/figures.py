"""The paper's figures, one function each; every one reads results files or the library.

    python -m paper.figures [--out paper/figures]

Each ``fig_*`` function takes its data (a loaded results dict, or a matrix) and an output
path, draws one PDF and returns the path, so the tests can run each on tiny inputs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from experiments.compare_optimizers import best_single_run  # noqa: E402
from msign import get_schedule  # noqa: E402
from msign.iterate import iterate, normalize  # noqa: E402
from msign.scalar import band  # noqa: E402
from msign.schedules import odd_poly  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results"
plt.rcParams.update({"font.size": 8, "axes.titlesize": 8, "legend.fontsize": 7,
                     "figure.dpi": 150, "savefig.bbox": "tight"})
# One colour per method in every figure.
COLORS = {"cubic": "C0", "quintic": "C1", "jordan": "C3", "you": "C4", "polar-express": "C2",
          "polar-express-bf16": "C9", "newton": "C5", "qdwh": "C7", "svd": "k", "adamw": "k"}
MAPS = ["cubic", "quintic", "jordan", "you", "polar-express", "polar-express-bf16"]


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
    """(3) Each Polar Express polynomial and the certified interval it maps."""
    s = get_schedule(name)
    coeffs = s.step_coeffs()
    k = len(coeffs)
    cols = 4
    fig, axes = plt.subplots((k + cols - 1) // cols, cols, figsize=(6.6, 2.0 * ((k + 3) // 4)),
                             squeeze=False)
    lo, hi = lower, 1.0
    for i, (c, ax) in enumerate(zip(coeffs, axes.flat, strict=False)):
        nlo, nhi = band(s, lower=lower, steps=i + 1)
        x = np.linspace(0, 1.05 * hi, points)
        ax.axvspan(lo, hi, color="C0", alpha=0.15, lw=0)
        ax.axhspan(nlo, nhi, color="C2", alpha=0.25, lw=0)
        ax.plot(x, odd_poly(c, x), color="k", lw=1)
        ax.set_title(f"step {i + 1}\n{_interval(lo, hi)} $\\to$ {_interval(nlo, nhi)}",
                     fontsize=6.5)
        ax.set_xlim(0, 1.05 * hi)
        ax.tick_params(labelsize=6)
        lo, hi = nlo, nhi
    for ax in axes.flat[k:]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, out)


def iterate_values(G: np.ndarray, name: str, dtype: torch.dtype,
                   steps: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run schedule ``name`` on G in ``dtype``; return x and each iterate along G's pairs.

    Iterate k's value along singular pair i is ``u_i^T X_k v_i`` (G = U S V^T in float64),
    to be compared with the scalar composite f_k at ``x_i = s_i / (safety ||G||_F)``; in
    exact arithmetic they coincide, so the difference is rounding.
    """
    sched = get_schedule(name)
    G64 = torch.as_tensor(np.asarray(G, dtype=np.float64))
    if G64.shape[0] > G64.shape[1]:
        G64 = G64.mT
    U, S, Vh = torch.linalg.svd(G64, full_matrices=False)
    x = (S / (sched.safety * torch.linalg.matrix_norm(G64))).numpy()
    X = normalize(G64.to(dtype), sched.safety)
    vals = []
    for c in sched.step_coeffs(steps):
        X = iterate(X, [c])
        vals.append(torch.einsum("ij,jk,ki->i", U.mT, X.double(), Vh.mT).numpy())
    return x, vals


def fig_iterates(G: np.ndarray, out: Path, name: str = "polar-express",
                 steps: tuple[int, ...] = (1, 2, 3, 5, 8)) -> Path:
    """(4) Singular values of real iterates vs the scalar-map prediction, fp64 and bf16.

    ``G`` is one matrix (a captured gradient); see :func:`iterate_values`.
    """
    sched = get_schedule(name)
    fig, axes = plt.subplots(1, 3, figsize=(6.6, 2.3))
    last = max(steps)
    for ax, dtype in zip(axes, (torch.float64, torch.bfloat16), strict=False):
        x, vals = iterate_values(G, name, dtype, last)
        keep = x > 1e-6 * x.max()
        xs = np.logspace(np.log10(x[keep].min()), 0, 400)
        for k in steps:
            proj = vals[k - 1]
            color = plt.cm.viridis(steps.index(k) / max(1, len(steps) - 1))
            ax.plot(xs, sched.scalar_map(xs, k), color=color, lw=0.5, label=f"step {k}")
            ax.plot(x[keep], proj[keep], ".", color=color, ms=2.5)
        ax.set_xscale("log")
        dname = str(dtype).removeprefix("torch.")
        ax.set_title(dname)
        ax.set_xlabel("$x_i = \\sigma_i / (s\\,\\|G\\|_F)$")
        # the gap to the prediction after the last step: rounding, nothing else
        gap = np.abs(vals[-1] - sched.scalar_map(x, last))
        axes[2].plot(x[keep], np.maximum(gap[keep], 1e-18), ".", ms=2.5, label=dname)
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
          "dist_svd": "$\\|X_k - UV^T\\|_F / \\|UV^T\\|_F$"}


def fig_error_vs_matmuls(res: dict, out: Path, family: str = "gaussian",
                         dtypes: tuple[str, ...] = ("fp64", "fp32", "bf16"),
                         error: str = "max_sigma_err") -> Path:
    """(5) An error (see ERRORS) after each step vs matmul count, one panel per precision."""
    dtypes = tuple(d for d in dtypes if any(r["dtype"] == d for r in res["runs"]))
    fig, axes = plt.subplots(1, len(dtypes), figsize=(2.2 * len(dtypes), 2.3), sharey=True,
                             squeeze=False)
    for ax, dt in zip(axes[0], dtypes, strict=True):
        for r in res["runs"]:
            if r["dtype"] != dt or r["family"] != family:
                continue
            rows = r["steps"]
            err = [max(row[error], 1e-17) for row in rows]
            if rows[0]["matmuls"] is None:  # classical: not a matmul count; final error only
                ax.axhline(err[-1], color=COLORS[r["method"]], lw=0.8, ls=":",
                           label=f"{r['method']} (final, {len(rows)} it.)")
                continue
            ax.plot([row["matmuls"] for row in rows], err, color=COLORS[r["method"]], lw=1,
                    marker=".", ms=3, label=r["method"])
        ax.set_yscale("log")
        ax.set_title(dt)
        ax.set_xlabel("matrix products")
    axes[0][0].set_ylabel(ERRORS[error])
    fig.tight_layout()
    # the fp64 panel holds every method, the classical ones included
    _legend_below(fig, axes[0][0], ncol=5)
    return _save(fig, out)


def fig_timing(results: list[dict], out: Path) -> Path:
    """(6) Achieved fraction of the matmul rate per shape and method, one panel per device."""
    fig, axes = plt.subplots(1, len(results), figsize=(3.3 * len(results), 2.6), sharey=True,
                             squeeze=False)
    for ax, res in zip(axes[0], results, strict=True):
        shapes = list(dict.fromkeys(tuple(r["shape"]) for r in res["rows"]))
        methods = [m for m in COLORS if any(r["method"] == m for r in res["rows"])]
        width = 0.8 / len(methods)
        for j, m in enumerate(methods):
            frac = {tuple(r["shape"]): r.get("floor_fraction", np.nan) for r in res["rows"]
                    if r["method"] == m}
            ax.bar([i + j * width for i in range(len(shapes))],
                   [frac.get(s, np.nan) for s in shapes], width, color=COLORS[m], label=m)
        ax.axhline(1, color="0.5", lw=0.6, ls=":")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(shapes))])
        ax.set_xticklabels(["x".join(map(str, s)) for s in shapes], rotation=30, fontsize=6)
        ax.set_title(f"{res['device']} ({res['dtype']})", fontsize=7)
        ax.set_yscale("log")
    axes[0][0].set_ylabel("FLOP rate / matmul rate")
    fig.tight_layout()
    _legend_below(fig, axes[0][-1], ncol=5)
    return _save(fig, out)


def fig_lm(summary: dict, out: Path) -> Path:
    """(7) Validation loss vs step and vs wall time, best learning rate of each, mean of seeds."""
    best = {(t["optimizer"], t["msign"]): t["best_lr"] for t in summary["table"]}
    fig, axes = plt.subplots(1, 2, figsize=(6.6, 2.6), sharey=True)
    for (opt, method), lr in best.items():
        runs = [r for r in summary["runs"]
                if (r["optimizer"], r["msign"], r["lr"]) == (opt, method, lr)]
        steps = np.array([s for s, _ in runs[0]["val"]], dtype=float)
        val = np.mean([[v for _, v in r["val"]] for r in runs], axis=0)
        wall = np.mean([r["wall_s"] for r in runs])
        name = "adamw" if opt == "adamw" else method
        label = f"AdamW lr {lr:g}" if opt == "adamw" else f"Muon {method} lr {lr:g}"
        for ax, xs in zip(axes, (steps, steps / steps[-1] * wall), strict=True):
            ax.plot(xs, val, color=COLORS.get(name, "C8"), lw=1.2 if opt == "adamw" else 0.9,
                    ls="--" if opt == "adamw" else "-", label=label)
    # AdamW's learning rate is chosen on one seed; also show the best single AdamW run,
    # unless it is already the whole AdamW curve (one seed).
    top = best_single_run(summary["runs"])
    adamw_lr = next(lr for (opt, _), lr in best.items() if opt == "adamw")
    adamw_runs = [r for r in summary["runs"] if r["optimizer"] == "adamw" and r["lr"] == adamw_lr]
    if adamw_runs != [top]:
        steps = np.array([st for st, _ in top["val"]], dtype=float)
        for ax, xs in zip(axes, (steps, steps / steps[-1] * top["wall_s"]), strict=True):
            ax.plot(xs, [v for _, v in top["val"]], color="k", ls=":", lw=1.2,
                    label=f"AdamW best single run (lr {top['lr']:g}, seed {top['seed']})")
    lo = min(t["final_val_mean"] for t in summary["table"])
    for ax, xlabel in zip(axes, ("step", "wall time [s] (linear in step)"), strict=True):
        ax.set_xlabel(xlabel)
        ax.set_ylim(lo - 0.05, lo + 0.8)
    axes[0].set_ylabel("validation loss [nats/byte]")
    fig.tight_layout()
    _legend_below(fig, axes[0], ncol=3)
    return _save(fig, out)


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> list[Path]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "figures"))
    ap.add_argument("--results", default=str(RESULTS))
    args = ap.parse_args(argv)
    out, res = Path(args.out), Path(args.results)
    grads = np.load(res / "gradients" / "cpu.npz")
    timing = [_load(p) for p in sorted((res / "timing").glob("*_bf16.json"))]
    made = [fig_jordan(out / "jordan.pdf"), fig_composites(out / "composites.pdf"),
            fig_pe_steps(out / "pe_steps.pdf"),
            fig_iterates(grads["blocks.3.fc.weight/step300/grad"], out / "iterates.pdf"),
            fig_error_vs_matmuls(_load(res / "convergence" / "cpu_fp64-fp32-bf16.json"),
                                 out / "error_gaussian.pdf"),
            fig_error_vs_matmuls(_load(res / "convergence" / "cpu_fp64-fp32-bf16.json"),
                                 out / "error_gradient.pdf",
                                 family="blocks.3.fc.weight:step300:grad", error="dist_svd"),
            fig_timing(timing, out / "timing.pdf"),
            fig_lm(_load(res / "lm" / "summary.json"), out / "lm.pdf"),
            fig_lm(_load(res / "lm_long" / "summary.json"), out / "lm_long.pdf")]
    for p in made:
        print(p)
    return made


if __name__ == "__main__":
    main()
