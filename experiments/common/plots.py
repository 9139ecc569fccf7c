"""One drawing the studies and the paper share: per row, every seed's value and the mean with
its 95% interval."""

from __future__ import annotations

from collections.abc import Sequence


def seed_intervals(ax, labels: Sequence[str], values: Sequence[Sequence[float]],
                   cis: Sequence[Sequence[float]], scale: float = 1.0) -> None:
    """Row i: the seeds ``values[i]`` (grey dots) and ``cis[i]`` = (mean, lower, upper) as a
    black point with its interval; values multiplied by ``scale`` (100 for percent)."""
    for i, (vals, (m, lo, hi)) in enumerate(zip(values, cis, strict=True)):
        m, lo, hi = scale * m, scale * lo, scale * hi
        ax.errorbar([m], [i], xerr=[[m - lo], [hi - m]], fmt="o", color="k", capsize=3, ms=4)
        ax.plot([scale * v for v in vals], [i] * len(vals), ".", color="0.6", ms=3)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
