"""The statistics the studies report: one definition of the 95% interval of a mean."""

from __future__ import annotations

import math
import statistics


def t_interval(xs: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lower, upper): Student's t interval of the mean; a single value is its own."""
    from scipy import stats

    m = statistics.mean(xs)
    if len(xs) < 2:
        return m, m, m
    h = stats.t.ppf(0.5 + level / 2, len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    return m, m - h, m + h
