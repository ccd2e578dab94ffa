"""The report's correlations: D_T against each variable (distances, contamination), over the cells
with source ≠ target below the largest *finetune* budget, pooled and at each budget, for D_T in
target bytes and in reference (English) bytes (D_T / byte premium of the target). p-values by
permutation of source and target labels (:mod:`xfer.analysis.stats`), then adjusted for the
whole table's many tests (variables x budgets x units) by Benjamini-Hochberg
(``scipy.stats.false_discovery_control``): ``p_adjusted`` beside the raw ``p``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from xfer.analysis.report import _number, markdown_table
from xfer.analysis.stats import DEFAULT_RESAMPLES, correlation_table
from xfer.analysis.transfer import SCRATCH, cross_lingual
from xfer.analysis.trend import format_p
from xfer.units import format_budget

VALUES = {"d_t": "D_T", "d_t_en": "D_T in en bytes"}
POOLED = "all"
COLUMNS = ["value", "budget", "variable", "n", "n_pairs", "rho", "p", "p_adjusted"]
SIGNIFICANT = 0.05


def largest_finetune_budget(cells: pd.DataFrame) -> int | None:
    """The largest finetune budget (bytes) of the finetuned cells, left out of the correlations
    as the paper does (ossification); None when there is only one finetune budget (leaving it
    out would leave nothing). Scratch budgets play no part."""
    budgets = sorted(set(cells.loc[cells["init"] != SCRATCH, "budget"].astype(int)))
    return budgets[-1] if len(budgets) >= 2 else None


def correlation_cells(cells: pd.DataFrame, largest: int | None) -> pd.DataFrame:
    """Cells with source ≠ target (not scratch), budget below ``largest`` (all budgets when
    None), and a D_T value."""
    keep = cross_lingual(cells) & cells["d_t"].notna()
    if largest is not None:
        keep &= cells["budget"] < largest
    return cells[keep].reset_index(drop=True)


def correlations(corr: pd.DataFrame, against: Mapping[str, str],
                 values: Sequence[str] = tuple(VALUES), *, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = 0) -> pd.DataFrame:
    """Long table (``value``, ``budget``, ``variable``, ``n``, ``n_pairs``, ``rho``, ``p``): each
    value column against each variable, pooled over budgets (``budget`` = "all"; whole pairs
    permuted) and at each budget (one cell per pair, so pairs and cells coincide)."""
    parts = []
    for value in values:
        groups = [(POOLED, corr)] + [(str(int(b)), g) for b, g in corr.groupby("budget")]
        for budget, frame in groups:
            table = correlation_table(frame, against, value, n_resamples=n_resamples, seed=seed)
            parts.append(table.assign(value=value, budget=budget))
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    table = pd.concat(parts, ignore_index=True)
    table["p_adjusted"] = benjamini_hochberg(table["p"].to_numpy(float))
    return table[COLUMNS]


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values over the finite ones (NaN stays NaN)."""
    out = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok])
    return out


def rho_p(row: pd.Series | None) -> str:
    """``ρ (p)``, or ``ρ (p; adjusted p)`` where the row has one; p as :func:`format_p`."""
    if row is None or not np.isfinite(row["rho"]):
        return "–"
    adjusted = row.get("p_adjusted", np.nan)
    tail = f"; {format_p(adjusted)}" if np.isfinite(adjusted) else ""
    return f"{_number(row['rho'], digits=3)} ({format_p(row['p'])}{tail})"


def correlations_markdown(table: pd.DataFrame) -> str:
    """One row per variable: n cells (pairs), pooled ρ (p) of D_T and of D_T in en bytes, then
    ρ (p) of D_T at each budget."""
    if table.empty:
        return "No correlation: no cell with source ≠ target and a D_T value."
    if not table["rho"].notna().any():
        return ("No correlation to show: every variable is missing or constant over the cells "
                "(e.g. no typological distance or contamination for generated languages).")
    index = {(r["value"], r["budget"], r["variable"]): r for _, r in table.iterrows()}
    budgets = [b for b in dict.fromkeys(table["budget"]) if b != POOLED]
    values = [v for v in VALUES if table.loc[table["value"] == v, "rho"].notna().any()]
    header = ["variable", "n (pairs)", *[f"{VALUES[v]} ρ (p; BH p)" for v in values],
              *[f"D_T at {format_budget(int(b))} ρ (p; BH p)" for b in budgets]]
    rows = []
    has = table.groupby("variable", sort=False)["rho"].apply(lambda r: r.notna().any())
    for variable in has[has].index:
        pooled = index.get(("d_t", POOLED, variable))
        count = f"{pooled['n']} ({pooled['n_pairs']})" if pooled is not None else "–"
        rows.append([variable, count, *[rho_p(index.get((v, POOLED, variable))) for v in values],
                     *[rho_p(index.get(("d_t", b, variable))) for b in budgets]])
    missing = ", ".join(has[~has].index)
    return markdown_table(header, rows) + (f"\n\nNo value (missing or constant): {missing}."
                                           if missing else "")
