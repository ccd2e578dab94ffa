"""``ground_truth.png``: the finding first. D_T against declared divergence, one panel per axis
(at each finetuning budget): every seed's point, each level's mean with its 95% t interval, the
control as a band (its mean and interval), and the verdict with its Holm-adjusted p in the
panel's title. Bounds are marked: a seed whose D_E was clamped is a triangle (▲ a lower bound,
▼ an upper one), a level or control with such a seed is labelled ``≥``/``≤`` (``~`` both ways).
D_T in bytes (SI prefixes on the axis)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import EngFormatter

from xfer.analysis import trend
from xfer.analysis.figures import _save, plt
from xfer.analysis.ground_truth import Truth
from xfer.analysis.intervals import t_interval
from xfer.analysis.transfer import LOWER, UPPER
from xfer.units import MIB, format_budget

MARKERS = {LOWER: "^", UPPER: "v"}


def _seed_values(rows: pd.DataFrame, source: str, target: str,
                 budget: int) -> tuple[np.ndarray, np.ndarray]:
    """The seeds' D_T (bytes) of one cell and their bounds (exact, lower, upper)."""
    mine = rows[(rows["init"] == source) & (rows["target"] == target)
                & (rows["budget"] == budget) & (rows["bound"] != "")]
    return mine["d_t"].to_numpy(float), mine["bound"].to_numpy(str)


def _mark(bounds: np.ndarray) -> str:
    """``≥ ``, ``≤ ``, ``~ `` (both) or nothing: what a cell with these seeds' bounds is."""
    kinds = set(bounds.tolist()) & {LOWER, UPPER}
    return "~ " if len(kinds) == 2 else "≥ " if LOWER in kinds else "≤ " if kinds else ""


def _panel(ax: object, rows: pd.DataFrame, table: pd.DataFrame, verdict: object,
           truth: Truth) -> None:
    budget = int(verdict.budget)
    at = table[(table["budget"] == budget)]
    for control in at.loc[at["axis"] == "control", "source"]:
        values, bounds = _seed_values(rows, control, truth.reference, budget)
        low, high = t_interval(values)
        if np.isfinite(low):
            ax.axhspan(low, high, color="grey", alpha=0.25, linewidth=0)
        ax.axhline(values.mean(), color="grey", linewidth=1, linestyle="--",
                   label=f"control {control} {_mark(bounds)}".rstrip())
    levels = at[at["axis"] == verdict.axis].sort_values("divergence")
    for i, level in enumerate(levels.itertuples()):
        values, bounds = _seed_values(rows, level.source, truth.reference, budget)
        jitter = (np.arange(len(values)) - (len(values) - 1) / 2) * 0.008
        for kind in set(bounds.tolist()):
            on = bounds == kind
            ax.scatter(level.divergence + jitter[on], values[on], s=18 if kind in MARKERS else 10,
                       marker=MARKERS.get(kind, "o"), color=f"C{i % 10}", alpha=0.6)
        low, high = t_interval(values)
        mean = values.mean() if len(values) else np.nan
        err = [[max(mean - low, 0)], [max(high - mean, 0)]] if np.isfinite(low) else None
        ax.errorbar([level.divergence], [mean], yerr=err, fmt="o", color="black", capsize=3,
                    markersize=4)
        ax.annotate(_mark(bounds) + level.source, (level.divergence, mean),
                    textcoords="offset points",
                    xytext=(4, 4), fontsize=7)
    ax.axhline(0, color="black", linewidth=0.4)
    ax.yaxis.set_major_formatter(EngFormatter(unit="B"))
    ax.set_xlabel(f"declared {verdict.axis} divergence from {truth.reference}")
    ax.set_ylabel(f"D_T at {format_budget(budget)}")
    ax.set_title(f"{verdict.axis}: {verdict.verdict} (p {trend.format_p(verdict.p_holm)}, "
                 "Holm)", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")


def ground_truth_figure(rows: pd.DataFrame, table: pd.DataFrame, verdicts: pd.DataFrame,
                        truth: Truth, path: Path) -> Path | None:
    """One panel per row of ``verdicts`` (axis and budget) from the per-seed transfer ``rows``
    and the ground-truth ``table``; None when there is no verdict."""
    if verdicts.empty:
        return None
    rows = rows.assign(d_t=rows["d_t_mib"] * MIB) if "d_t" not in rows.columns else rows
    n = len(verdicts)
    fig, axes = plt.subplots(1, n, figsize=(3.8 * n, 3.4), squeeze=False)
    for ax, verdict in zip(axes.flat, verdicts.itertuples(), strict=True):
        _panel(ax, rows, table, verdict, truth)
    fig.suptitle("Does D_T fall as declared divergence grows? (points: seeds, ▲/▼ a lower/upper "
                 "bound; bars: 95% t interval; band: control)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
