"""The transfer power law of Hernandez et al. (2021): D_T = k·(D_F)^α.

Fitted by least squares in log space, log D_T = log k + α·log D_F, with D_F (the finetuning
budget) and D_T in bytes, so k is in bytes^(1−α). Only exact cells (not bounds) with D_T > 0
enter, one point per (source, target, budget) cell (mean over seeds). Fits per (source, target)
pair and per source pooled over its targets (``target`` = "all"); 95% intervals for α and k by
bootstrap over the cells (resampled with replacement, seeded; resamples with a single budget are
dropped; no interval under four cells). Hernandez et al. found α ≈ 0.18 for text → Python code.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xfer.analysis.transfer import EXACT, SCRATCH

HERNANDEZ_ALPHA = 0.18  # Hernandez et al. (2021), text -> code, their Eq. 3 fit
POOLED = "all"
FIT_COLUMNS = ["source", "target", "k", "alpha", "alpha_ci_low", "alpha_ci_high", "n",
               "k_ci_low", "k_ci_high"]
RESAMPLES = 2000
LEVEL = 0.95
MIN_CELLS_FOR_INTERVAL = 4  # three cells have only ten distinct resamples


def fit_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells a fit may use: finetuned (source ≠ target), exact, D_T > 0 bytes."""
    keep = ((cells["init"] != SCRATCH) & (cells["init"] != cells["target"])
            & (cells["bound"] == EXACT) & (cells["d_t"] > 0))
    return cells[keep].reset_index(drop=True)


def log_fit(d_f: np.ndarray, d_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares (k, α) of log D_T on log D_F along the last axis (bytes; vectorised over
    leading axes). A row whose D_F has no spread gives NaN."""
    x, y = np.log(d_f), np.log(d_t)
    dx = x - x.mean(axis=-1, keepdims=True)
    var = (dx * dx).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(var > 0, (dx * (y - y.mean(axis=-1, keepdims=True))).sum(axis=-1) / var,
                         np.nan)
    return np.exp(y.mean(axis=-1) - alpha * x.mean(axis=-1)), alpha


def bootstrap_intervals(d_f: np.ndarray, d_t: np.ndarray, *, n_resamples: int = RESAMPLES,
                        seed: int = 0, level: float = LEVEL) -> tuple[float, float, float, float]:
    """Percentile bootstrap intervals ``(alpha_low, alpha_high, k_low, k_high)`` over cells;
    NaN with fewer than :data:`MIN_CELLS_FOR_INTERVAL` cells."""
    n = len(d_f)
    if n < MIN_CELLS_FOR_INTERVAL:
        return (math.nan,) * 4
    idx = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    k, alpha = log_fit(d_f[idx], d_t[idx])
    ok = np.isfinite(alpha)
    if not ok.any():
        return (math.nan,) * 4
    tails = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    a_lo, a_hi = np.percentile(alpha[ok], tails)
    k_lo, k_hi = np.percentile(k[ok], tails)
    return float(a_lo), float(a_hi), float(k_lo), float(k_hi)


def _fit_row(source: str, target: str, group: pd.DataFrame, n_resamples: int,
             seed: int) -> dict | None:
    d_f, d_t = group["budget"].to_numpy(float), group["d_t"].to_numpy(float)
    if len(np.unique(d_f)) < 2:
        return None
    k, alpha = log_fit(d_f, d_t)
    a_lo, a_hi, k_lo, k_hi = bootstrap_intervals(d_f, d_t, n_resamples=n_resamples, seed=seed)
    return {"source": source, "target": target, "k": float(k), "alpha": float(alpha),
            "alpha_ci_low": a_lo, "alpha_ci_high": a_hi, "n": len(d_f),
            "k_ci_low": k_lo, "k_ci_high": k_hi}


def fit_power_law(cells: pd.DataFrame, *, n_resamples: int = RESAMPLES,
                  seed: int = 0) -> pd.DataFrame:
    """One row per (source, target) pair and per source pooled (``target`` = "all") with at
    least two budgets among its usable cells: ``k`` (bytes^(1−α)), ``alpha``, the 95% bootstrap
    interval of α and of k, and ``n`` cells."""
    usable = fit_cells(cells)
    rows = []
    for source, mine in usable.groupby("init", sort=True):
        for target, group in mine.groupby("target", sort=True):
            rows.append(_fit_row(source, target, group, n_resamples, seed))
        rows.append(_fit_row(source, POOLED, mine, n_resamples, seed))
    return pd.DataFrame([r for r in rows if r], columns=FIT_COLUMNS)


def powerlaw_markdown(fit: pd.DataFrame) -> str:
    """The report's paragraph: α per source (pooled) against Hernandez et al.'s 0.18."""
    intro = ("Fit of D_T = k·(D_F)^α (Hernandez et al., 2021) by least squares in log space, on "
             "exact cells with D_T > 0 (bounds left out), D_F and D_T in bytes; 95% intervals by "
             f"bootstrap over cells ({RESAMPLES} resamples). Per pair and per source in "
             "`fit.csv`.")
    pooled = fit[fit["target"] == POOLED] if len(fit) else fit
    if pooled.empty:
        return intro + " No source has usable cells at two or more budgets: nothing to fit."
    parts = []
    for r in pooled.itertuples():
        ci = (f" [{r.alpha_ci_low:.2f}, {r.alpha_ci_high:.2f}]" if math.isfinite(r.alpha_ci_low)
              else f" (no interval: under {MIN_CELLS_FOR_INTERVAL} cells)")
        parts.append(f"{r.source}: α = {r.alpha:.2f}{ci}, k = {r.k:.3g}, {r.n} cells")
    below = [r.source for r in pooled.itertuples() if r.alpha_ci_high < HERNANDEZ_ALPHA]
    above = [r.source for r in pooled.itertuples() if r.alpha_ci_low > HERNANDEZ_ALPHA]
    compare = (f" Hernandez et al. fit α ≈ {HERNANDEZ_ALPHA} for text → Python code (with a "
               "model-size term k·N^β we do not vary: here k absorbs it). α < 1 means each extra "
               "finetuning byte is worth less transferred data; α ≤ 0 means D_T does not grow "
               "with D_F at all (transfer fades as the finetune grows). ")
    compare += (f"Interval above {HERNANDEZ_ALPHA}: {', '.join(above) or 'none'}; below: "
                f"{', '.join(below) or 'none'}; the rest include it or have no interval.")
    return intro + "\n\nPooled per source: " + "; ".join(parts) + "." + compare
