"""The transfer power law of Hernandez et al. (2021): D_T = k·(D_F)^α.

Fitted by least squares in log space, log D_T = log k + α·log D_F, with D_F (the finetuning
budget) and D_T in bytes, so k is in bytes^(1−α). Each seed is one replicate: α is fitted on each
seed's own points (exact D_T > 0; bounds and D_T ≤ 0 are left out and counted), and the reported
α is the mean of the seeds' α with its 95% t interval over seeds (:mod:`xfer.analysis.intervals`;
coverage measured in ``bench/calibration.py``). Rows:

- per (source, target) pair: a line per pair; k = exp(mean log D_T − α·mean log D_F) over the
  pair's points;
- per source pooled over its targets (``target`` = "all") with target fixed effects: each target
  its own intercept, one α (the within-target slope), so targets with other budgets or other
  levels do not bend it; k is per target (pair rows) and left empty here;
- all pairs pooled (``source`` = ``target`` = "all") with pair fixed effects.

A seed needs two distinct budgets among its usable points to give an α. Hernandez et al. found
α ≈ 0.18 for text → Python code.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xfer.analysis.intervals import t_interval
from xfer.analysis.transfer import EXACT, cross_lingual

HERNANDEZ_ALPHA = 0.18  # Hernandez et al. (2021), text -> code, their Eq. 3 fit
POOLED = "all"
K_UNIT = "bytes^(1-alpha)"
FIT_COLUMNS = ["source", "target", "fixed_effects", "alpha", "alpha_ci_low", "alpha_ci_high",
               "seeds", "k", "k_unit", "points", "left_out_bound", "left_out_nonpositive"]


def fit_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells (or per-seed rows) a fit may use: finetuned (source ≠ target), exact,
    D_T > 0 bytes."""
    keep = cross_lingual(cells) & (cells["bound"] == EXACT) & (cells["d_t"] > 0)
    return cells[keep].reset_index(drop=True)


def log_fit(d_f: np.ndarray, d_t: np.ndarray) -> tuple[float, float]:
    """Least-squares (k, α) of log D_T on log D_F (bytes); NaN when D_F has no spread."""
    alpha = within_slope(d_f, d_t, np.zeros(len(d_f)))
    x, y = np.log(np.asarray(d_f, float)), np.log(np.asarray(d_t, float))
    return float(np.exp(y.mean() - alpha * x.mean())), alpha


def within_slope(d_f: np.ndarray, d_t: np.ndarray, groups: np.ndarray) -> float:
    """α of log D_T = a_g + α·log D_F with one intercept per group (fixed effects): the slope of
    the within-group deviations. NaN when no group has two distinct budgets."""
    x, y = np.log(np.asarray(d_f, float)), np.log(np.asarray(d_t, float))
    _, g = np.unique(np.asarray(groups), return_inverse=True)
    counts = np.bincount(g)
    dx = x - (np.bincount(g, x) / counts)[g]
    dy = y - (np.bincount(g, y) / counts)[g]
    var = float((dx * dx).sum())
    if var <= 1e-12:
        return math.nan
    return float((dx * dy).sum() / var)


def _fit_row(source: str, target: str, effects: str, rows: pd.DataFrame) -> dict | None:
    """One fit over ``rows`` (per-seed transfer rows of the fit's pairs)."""
    usable = fit_cells(rows)
    if usable["budget"].nunique() < 2:
        return None
    seeds = usable["seed"] if "seed" in usable.columns else pd.Series(0, index=usable.index)
    groups = usable["init"] + "→" + usable["target"]
    alphas = [within_slope(g["budget"].to_numpy(), g["d_t"].to_numpy(), groups[g.index])
              for _, g in usable.groupby(seeds)]
    alphas = np.array([a for a in alphas if math.isfinite(a)])
    if len(alphas) == 0:
        return None
    alpha = float(alphas.mean())
    low, high = t_interval(alphas)
    x, y = np.log(usable["budget"].to_numpy(float)), np.log(usable["d_t"].to_numpy(float))
    k = float(np.exp(y.mean() - alpha * x.mean())) if effects == "none" else math.nan
    finetuned = rows[cross_lingual(rows) & (rows["bound"] != "")]
    return {"source": source, "target": target, "fixed_effects": effects, "alpha": alpha,
            "alpha_ci_low": low, "alpha_ci_high": high, "seeds": len(alphas), "k": k,
            "k_unit": K_UNIT, "points": len(usable),
            "left_out_bound": int((finetuned["bound"] != EXACT).sum()),
            "left_out_nonpositive": int(((finetuned["bound"] == EXACT)
                                         & ~(finetuned["d_t"] > 0)).sum())}


def fit_power_law(rows: pd.DataFrame) -> pd.DataFrame:
    """The fits of :data:`FIT_COLUMNS` from the per-seed transfer rows (one row per trial with
    ``init``, ``target``, ``budget``, ``seed``, ``d_t`` bytes, ``bound``): per pair, per source
    pooled with target fixed effects, and all pairs pooled with pair fixed effects. A fit needs
    two distinct budgets among its usable points."""
    finetuned = rows[cross_lingual(rows) & (rows["bound"] != "")]
    out = []
    for source, mine in finetuned.groupby("init", sort=True):
        for target, pair in mine.groupby("target", sort=True):
            out.append(_fit_row(source, target, "none", pair))
        if mine["target"].nunique() > 1:
            out.append(_fit_row(source, POOLED, "target", mine))
    if finetuned[["init", "target"]].drop_duplicates().shape[0] > 1:
        out.append(_fit_row(POOLED, POOLED, "pair", finetuned))
    return pd.DataFrame([r for r in out if r], columns=FIT_COLUMNS)


def _alpha_text(r: object) -> str:
    ci = (f" [{r.alpha_ci_low:.2f}, {r.alpha_ci_high:.2f}]" if math.isfinite(r.alpha_ci_low)
          else " (no interval: one seed)")
    return f"α = {r.alpha:.2f}{ci}"


def powerlaw_markdown(fit: pd.DataFrame, rows: pd.DataFrame) -> str:
    """The report's section: one line when nothing can be fitted, else a table of every fit
    with its interval, seeds, points and the points left out, against Hernandez et al."""
    finetuned = rows[cross_lingual(rows)]
    if fit.empty:
        budgets = finetuned["budget"].nunique()
        return (f"Not fitted: the study finetunes at {budgets} budget(s); a power law needs "
                "usable D_T > 0 at two or more budgets of a pair.")
    lines = [
        "D_T = k·(D_F)^α (Hernandez et al., 2021), least squares in log space per seed (D_F, "
        f"D_T in bytes; k in {K_UNIT}); α is the mean of the seeds' fits with its 95% t "
        "interval over seeds. Pooled fits give each target (or pair) its own intercept. "
        "Points left out: bounds, and D_T ≤ 0 (no logarithm); counted per fit. "
        f"Hernandez et al. fit α ≈ {HERNANDEZ_ALPHA} for text → Python code (their k also "
        "has a model-size term we do not vary).", "",
        "| source | target | fixed effects | α [95% t interval] | seeds | k | points | "
        "left out: bound, D_T ≤ 0 | vs 0.18 |", "| --- | --- | --- | --- | --- | --- | --- | --- "
        "| --- |"]
    for r in fit.itertuples():
        side = ("above" if r.alpha_ci_low > HERNANDEZ_ALPHA else "below"
                if r.alpha_ci_high < HERNANDEZ_ALPHA else "includes it"
                if math.isfinite(r.alpha_ci_low) else "–")
        k = f"{r.k:.3g}" if math.isfinite(r.k) else "per target"
        lines.append(f"| {r.source} | {r.target} | {r.fixed_effects} | {_alpha_text(r)} | "
                     f"{r.seeds} | {k} | {r.points} | {r.left_out_bound}, "
                     f"{r.left_out_nonpositive} | {side} |")
    return "\n".join(lines)
