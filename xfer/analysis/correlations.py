"""The report's correlations: D_T against each variable (distances, contamination), over the cells
with source ≠ target below the largest *finetune* budget, pooled (p-values by permutation of
whole (source, target) pairs) and at each budget, for D_T in target bytes and in reference
(English) bytes (D_T / byte premium of the target).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from xfer.analysis.report import _number, markdown_table
from xfer.analysis.stats import DEFAULT_RESAMPLES, correlation_table
from xfer.analysis.transfer import SCRATCH
from xfer.data.units import format_budget

VALUES = {"d_t": "D_T", "d_t_en": "D_T in en bytes"}
POOLED = "all"
COLUMNS = ["value", "budget", "variable", "n", "n_pairs", "rho", "p"]
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
    keep = ((cells["init"] != SCRATCH) & (cells["init"] != cells["target"])
            & cells["d_t"].notna())
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
    return pd.concat(parts, ignore_index=True)[COLUMNS]


def rho_p(row: pd.Series | None) -> str:
    if row is None:
        return "–"
    return f"{_number(row['rho'], digits=3)} ({_number(row['p'], digits=4)})"


def correlations_markdown(table: pd.DataFrame) -> str:
    """One row per variable: n cells (pairs), pooled ρ (p) of D_T and of D_T in en bytes, then
    ρ (p) of D_T at each budget."""
    if table.empty:
        return "No correlation: no cell with source ≠ target and a D_T value."
    index = {(r["value"], r["budget"], r["variable"]): r for _, r in table.iterrows()}
    budgets = [b for b in dict.fromkeys(table["budget"]) if b != POOLED]
    values = [v for v in VALUES if v in set(table["value"])]
    header = ["variable", "n (pairs)", *[f"{VALUES[v]} ρ (p)" for v in values],
              *[f"D_T at {format_budget(int(b))} ρ (p)" for b in budgets]]
    rows = []
    for variable in dict.fromkeys(table["variable"]):
        pooled = index.get(("d_t", POOLED, variable))
        count = f"{pooled['n']} ({pooled['n_pairs']})" if pooled is not None else "–"
        rows.append([variable, count, *[rho_p(index.get((v, POOLED, variable))) for v in values],
                     *[rho_p(index.get(("d_t", b, variable))) for b in budgets]])
    return markdown_table(header, rows)
