"""Spearman rank correlation with permutation-test p-values (``scipy.stats.permutation_test``).

The cells of one (source, target) pair share their distance, and nearly their contamination, at
every budget: they are not exchangeable, so the permutation test moves whole pairs (blocks), not
single cells. With every point its own block this is the ordinary test that shuffles points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

DEFAULT_RESAMPLES = 9999
PAIR_COLUMNS = ("init", "target")


@dataclass(frozen=True)
class Correlation:
    """Spearman ρ between two variables over ``n`` paired points in ``n_pairs`` blocks;
    ``p`` two-sided."""

    n: int
    n_pairs: int
    rho: float
    p: float


def _masked_rho(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ along the last axis over the points where both are finite (vectorised)."""
    ok = np.isfinite(x) & np.isfinite(y)
    rx = stats.rankdata(np.where(ok, x, np.nan), axis=-1, nan_policy="omit")
    ry = stats.rankdata(np.where(ok, y, np.nan), axis=-1, nan_policy="omit")
    rx = rx - np.nanmean(rx, axis=-1, keepdims=True)
    ry = ry - np.nanmean(ry, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(rx * ry, axis=-1) / np.sqrt(
            np.nansum(rx * rx, axis=-1) * np.nansum(ry * ry, axis=-1))


def spearman(x: np.ndarray, y: np.ndarray, *, blocks: Sequence | None = None,
             slots: Sequence | None = None, n_resamples: int = DEFAULT_RESAMPLES,
             seed: int = 0) -> Correlation:
    """Spearman ρ of ``x`` and ``y`` (pairs with a NaN dropped) and its permutation p-value.

    ρ equals ``scipy.stats.spearmanr`` (ties get average ranks). ``blocks`` labels each point
    with its exchangeable unit (e.g. the (source, target) pair) and ``slots`` its place within
    the block (e.g. the budget): the test permutes whole blocks of ``x`` against ``y``, the value
    of block j at slot s moving to block π(j) at slot s (a slot the new block lacks drops out).
    Without ``blocks`` every point is its own block (the plain pairings test). The null
    distribution comes from ``scipy.stats.permutation_test`` (one-sample ``"pairings"`` over the
    block labels), two-sided, seeded with ``seed``; scipy enumerates all ``n_pairs!`` orderings
    exactly when that is at most ``n_resamples``. Fewer than three points, fewer than two
    blocks, or a constant variable give ρ = p = NaN.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    blocks = np.arange(len(x)) if blocks is None else np.asarray(blocks)
    slots = np.zeros(len(x)) if slots is None else np.asarray(slots)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, blocks, slots = x[ok], y[ok], blocks[ok], slots[ok]
    block_ids, b = np.unique(blocks, return_inverse=True)
    slot_ids, s = np.unique(slots, return_inverse=True)
    n, n_pairs = int(len(x)), int(len(block_ids))
    if n < 3 or n_pairs < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(n, n_pairs, float("nan"), float("nan"))
    if len(set(zip(b.tolist(), s.tolist(), strict=True))) != n:
        raise ValueError("two points share a block and a slot")
    grid_x = np.full((n_pairs, len(slot_ids)), np.nan)
    grid_y = np.full_like(grid_x, np.nan)
    grid_x[b, s], grid_y[b, s] = x, y
    flat_y = grid_y.ravel()

    def statistic(order: np.ndarray, axis: int = -1) -> np.ndarray:
        moved = grid_x[np.asarray(order, dtype=np.intp)]
        return _masked_rho(moved.reshape(*moved.shape[:-2], -1), flat_y)

    result = stats.permutation_test(
        (np.arange(n_pairs),), statistic, permutation_type="pairings", vectorized=True,
        n_resamples=n_resamples, alternative="two-sided", rng=np.random.default_rng(seed))
    return Correlation(n, n_pairs, float(result.statistic), float(result.pvalue))


def correlation_table(frame: pd.DataFrame, against: Mapping[str, str], value: str = "d_t", *,
                      pairs: Sequence[str] | None = PAIR_COLUMNS, slot: str = "budget",
                      n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Spearman ρ of ``frame[value]`` against each column in ``against`` (name -> column).

    The permutation test moves whole blocks of rows sharing the ``pairs`` columns (default:
    init and target), aligned by the ``slot`` column (budget); ``pairs=None`` (or a frame
    without those columns) shuffles single rows. Returns one row per variable: ``variable``,
    ``n`` (points), ``n_pairs`` (blocks), ``rho``, ``p``. Missing columns give n = 0.
    """
    blocks = slots = None
    if pairs and all(c in frame.columns for c in pairs):
        blocks = frame[list(pairs)].astype(str).agg("→".join, axis=1).to_numpy()
        slots = frame[slot].to_numpy() if slot in frame.columns else None
    columns = ["variable", "n", "n_pairs", "rho", "p"]
    rows = []
    for name, column in against.items():
        if column not in frame.columns or value not in frame.columns:
            rows.append({"variable": name, "n": 0, "n_pairs": 0, "rho": float("nan"),
                         "p": float("nan")})
            continue
        c = spearman(frame[value].to_numpy(float), frame[column].to_numpy(float),
                     blocks=blocks, slots=slots, n_resamples=n_resamples, seed=seed)
        rows.append({"variable": name, "n": c.n, "n_pairs": c.n_pairs, "rho": c.rho, "p": c.p})
    return pd.DataFrame(rows, columns=columns)
