"""Spearman rank correlation with permutation-test p-values (``scipy.stats.permutation_test``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

DEFAULT_RESAMPLES = 9999


@dataclass(frozen=True)
class Correlation:
    """Spearman ρ between two variables over ``n`` paired points; ``p`` two-sided."""

    n: int
    rho: float
    p: float


def _pearson(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson r along ``axis``; applied to ranks it is Spearman's ρ (vectorised for scipy)."""
    a = a - a.mean(axis=axis, keepdims=True)
    b = b - b.mean(axis=axis, keepdims=True)
    return (a * b).sum(axis=axis) / np.sqrt((a * a).sum(axis=axis) * (b * b).sum(axis=axis))


def spearman(x: np.ndarray, y: np.ndarray, *, n_resamples: int = DEFAULT_RESAMPLES,
             seed: int = 0) -> Correlation:
    """Spearman ρ of ``x`` and ``y`` (pairs with a NaN dropped) and its permutation p-value.

    ρ is Pearson's r of the ranks (ties get average ranks), equal to ``scipy.stats.spearmanr``.
    The p-value comes from ``scipy.stats.permutation_test`` with ``permutation_type="pairings"``
    (shuffling y against x), two-sided, seeded with ``seed`` so reruns give the same p; scipy
    enumerates all permutations exactly when there are fewer than ``n_resamples``. Fewer than
    three points, or a constant variable, give ρ = p = NaN.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(len(x))
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(n, float("nan"), float("nan"))
    # Ranks are fixed under re-pairing, so rank once and permute Pearson's r of the ranks.
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    result = stats.permutation_test(
        (rx, ry), _pearson, permutation_type="pairings", vectorized=True,
        n_resamples=n_resamples, alternative="two-sided", rng=np.random.default_rng(seed))
    return Correlation(n, float(result.statistic), float(result.pvalue))


def correlation_table(frame: pd.DataFrame, against: Mapping[str, str], value: str = "d_t", *,
                      n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Spearman ρ of ``frame[value]`` against each column in ``against`` (name -> column).

    Returns one row per variable: ``variable``, ``n``, ``rho``, ``p``. Missing columns give n = 0.
    """
    rows = []
    for name, column in against.items():
        if column not in frame.columns:
            rows.append({"variable": name, "n": 0, "rho": float("nan"), "p": float("nan")})
            continue
        c = spearman(frame[value].to_numpy(float), frame[column].to_numpy(float),
                     n_resamples=n_resamples, seed=seed)
        rows.append({"variable": name, "n": c.n, "rho": c.rho, "p": c.p})
    return pd.DataFrame(rows, columns=["variable", "n", "rho", "p"])
