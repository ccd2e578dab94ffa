"""Order, not only trend: each adjacent step of an axis's declared order, tested on its own.

A trend test (Page's L) can call an axis *recovered* while one step runs the wrong way (lex50
above lex25). Beside it, every adjacent step (``lex25/lex50``: the less divergent level first,
predicted to transfer more) gets a one-sided paired t test over the seeds (seed s of both levels
shares seed s's scratch curve, as in the trend test), in each direction. The family is every
step of every axis and budget: a step whose *rise* (the reverse of the declared order) is
significant after Holm's adjustment across that family (p < :data:`xfer.analysis.trend.ALPHA`)
breaks the order, and a *recovered* axis becomes "trend recovered, order broken at
lex25/lex50". A t test, not the exact Wilcoxon of the trend test: with 5 seeds the Wilcoxon's
smallest p (1/32) can never survive Holm over a few steps. Its level and power are simulated in
``bench/calibration.py`` (``tests/test_order.py``). D_T in MiB.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from xfer.analysis import trend

STEP_COLUMNS = ["axis", "budget", "step", "seeds", "falls", "mean_fall_mib", "p_falls",
                "p_rises", "p_rises_holm", "reversed"]
BROKEN = "trend recovered, order broken at"


def paired_p(upper: np.ndarray, lower: np.ndarray) -> tuple[float, float]:
    """One-sided paired t p-values over the seeds with both values: (p that ``upper`` lies
    above ``lower``, p that it lies below). NaN with fewer than two pairs; differences all
    equal give 0 for their side and 1 for the other (1 and 1 when they are all zero)."""
    a, b = np.asarray(upper, dtype=float), np.asarray(lower, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    diff = a[ok] - b[ok]
    if len(diff) < 2:
        return math.nan, math.nan
    if np.ptp(diff) <= 1e-9 * np.max(np.abs(diff)):  # equal up to rounding: t is undefined
        mean = float(diff[0])
        return (0.0 if mean > 0 else 1.0), (0.0 if mean < 0 else 1.0)
    return (float(stats.ttest_1samp(diff, 0.0, alternative="greater").pvalue),
            float(stats.ttest_1samp(diff, 0.0, alternative="less").pvalue))


def axis_steps(per_seed: pd.DataFrame, levels: list[str]) -> list[dict]:
    """One row per adjacent pair of ``levels`` (least divergent first) from the per-seed D_T
    (MiB; one row per seed, one column per source): seeds, how many seeds fall, the mean fall
    (MiB, positive when the declared order holds) and both one-sided p-values."""
    out = []
    for a, b in zip(levels, levels[1:], strict=False):
        pair = per_seed[[a, b]].dropna()
        diff = (pair[a] - pair[b]).to_numpy(float)
        p_falls, p_rises = paired_p(pair[a].to_numpy(float), pair[b].to_numpy(float))
        out.append({"step": f"{a}/{b}", "seeds": len(diff), "falls": int((diff > 0).sum()),
                    "mean_fall_mib": float(diff.mean()) if len(diff) else math.nan,
                    "p_falls": p_falls, "p_rises": p_rises})
    return out


def judge_steps(steps: pd.DataFrame) -> pd.DataFrame:
    """``steps`` (rows of :func:`axis_steps` with ``axis`` and ``budget``) with
    ``p_rises_holm`` (Holm across every row) and ``reversed`` (that p below ALPHA)."""
    steps = steps.reindex(columns=STEP_COLUMNS[:-2]).copy()
    steps["p_rises_holm"] = trend.holm(steps["p_rises"].to_numpy(float))
    steps["reversed"] = steps["p_rises_holm"] < trend.ALPHA
    return steps[STEP_COLUMNS]


def step_text(step: object) -> str:
    """``lex25/lex50 falls (5/5 seeds, p 0.003)``, or for a rise ``… rises (1/5 seeds fall, p
    0.02; Holm 0.14)``: the direction of the mean and the one-sided p in that direction."""
    if not step.seeds:
        return f"{step.step}: no seeds"
    if step.mean_fall_mib >= 0:
        return (f"{step.step} falls ({step.falls}/{step.seeds} seeds, p "
                f"{trend.format_p(step.p_falls)})")
    mark = " **reversed**" if step.reversed else ""
    return (f"{step.step} rises{mark} ({step.falls}/{step.seeds} seeds fall, p "
            f"{trend.format_p(step.p_rises)}; Holm {trend.format_p(step.p_rises_holm)})")


def order_columns(steps: pd.DataFrame, axis: str, budget: int) -> tuple[str, str]:
    """(the axis's steps as text, the reversed steps joined by ", ": "" when none)."""
    mine = steps[(steps["axis"] == axis) & (steps["budget"] == budget)]
    text = "; ".join(step_text(s) for s in mine.itertuples())
    return text, ", ".join(mine.loc[mine["reversed"], "step"])
