"""The one-sided tests behind the ground-truth verdicts, declared before any data is seen.

- :func:`trend_p`: does D_T fall as divergence grows? Seeds are blocks (seed s of every level
  shares seed s's scratch curve). Three or more levels: Page's L trend test
  (``scipy.stats.page_trend_test``, exact), the levels' predicted order being their declared
  divergence. Two levels: the exact one-sided Wilcoxon signed-rank test of the seeds'
  differences (``scipy.stats.wilcoxon``).
- :func:`below_p`: is one source's D_T below another's? The exact one-sided Mann-Whitney U test
  (``scipy.stats.mannwhitneyu``) over their seeds' values. Seed s of both shares a scratch curve,
  which makes the two samples positively dependent; the test stays valid (conservative), as
  ``bench/calibration.py`` measures.
- :func:`holm`: Holm's step-down adjustment across the family (every axis and budget).
- :func:`trend_floor`, :func:`below_floor`: the smallest p each test can reach with the seeds
  and levels a study has: a design whose floor is above the level can never be significant.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

ALPHA = 0.05


def trend_p(blocks: np.ndarray) -> float:
    """One-sided p that values rise from the first column to the last (``blocks``: one row per
    seed, one column per level in the predicted order; rows with a NaN are dropped). NaN with
    fewer than two complete rows or one column."""
    x = np.asarray(blocks, dtype=float)
    x = x[np.isfinite(x).all(axis=1)] if x.ndim == 2 else x
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        return math.nan
    if x.shape[1] == 2:
        diff = x[:, 1] - x[:, 0]
        if not np.any(diff):
            return 1.0
        return float(stats.wilcoxon(diff, alternative="greater", method="exact").pvalue)
    return float(stats.page_trend_test(x, method="exact").pvalue)


def trend_floor(n_seeds: int, n_levels: int) -> float:
    """The smallest p of :func:`trend_p` with ``n_seeds`` blocks of ``n_levels`` levels: every
    seed in the predicted order, (1/k!)^n (Page) or 2^-n (Wilcoxon, two levels)."""
    if n_seeds < 2 or n_levels < 2:
        return math.nan
    return float(math.factorial(n_levels) ** -n_seeds) if n_levels > 2 else 2.0 ** -n_seeds


def below_p(low: np.ndarray, high: np.ndarray) -> float:
    """One-sided p that ``low``'s values lie below ``high``'s (exact Mann-Whitney U); NaN when
    either has no finite value."""
    a = np.asarray(low, dtype=float)
    b = np.asarray(high, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        return math.nan
    return float(stats.mannwhitneyu(a, b, alternative="less", method="exact").pvalue)


def below_floor(n_low: int, n_high: int) -> float:
    """The smallest p of :func:`below_p`: every value of one below every value of the other,
    1 / C(n_low + n_high, n_low)."""
    if n_low < 1 or n_high < 1:
        return math.nan
    return 1.0 / math.comb(n_low + n_high, n_low)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted in the family)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


def format_p(p: float) -> str:
    """A p-value as printed in every table: ``< 0.001`` below that, else three decimals (two
    significant digits under 0.01), with as many more digits as it takes for a p below
    :data:`ALPHA` never to read as ALPHA or above (0.0496 prints ``0.0496``, not ``0.050``);
    ``–`` for NaN. Never ``0.000`` or ``0``."""
    if not math.isfinite(p):
        return "–"
    if p < 0.001:
        return "< 0.001"
    text = f"{p:.2g}" if p < 0.01 else f"{p:.3f}"
    digits = 3
    while p < ALPHA and float(text) >= ALPHA:
        digits += 1
        text = f"{p:.{digits}f}".rstrip("0")
    return text
