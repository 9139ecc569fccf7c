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


def welch(a: list[float], b: list[float], level: float = 0.95) -> dict:
    """mean(a) - mean(b) with Welch's ``level`` interval and two-sided p-value."""
    from scipy import stats

    t = stats.ttest_ind(a, b, equal_var=False)
    ci = t.confidence_interval(level)
    return {"diff": statistics.mean(a) - statistics.mean(b), "ci": [float(ci.low),
            float(ci.high)], "p": float(t.pvalue), "level": level}


def tost_paired(a: list[float], b: list[float], margin: float) -> dict:
    """Equivalence of a and b within +-``margin`` by two one-sided paired t-tests.

    Pairs are by position (the same seed: initialization and data order).  ``p`` is the
    larger one-sided p-value; equivalence at 5% is ``p < 0.05``, the same as the 90% interval
    of the mean paired difference lying inside (-margin, margin).
    """
    from scipy import stats

    d = [x - y for x, y in zip(a, b, strict=True)]
    n, m = len(d), statistics.mean(d)
    se = statistics.stdev(d) / math.sqrt(n)
    lo_p = 1 - stats.t.cdf((m + margin) / se, n - 1)
    hi_p = stats.t.cdf((m - margin) / se, n - 1)
    h = stats.t.ppf(0.95, n - 1) * se
    p = float(max(lo_p, hi_p))
    return {"mean_diff": m, "ci90": [float(m - h), float(m + h)], "margin": margin, "p": p,
            "equivalent": p < 0.05, "pairs": n}
