"""How much the pooled correlations of D_T depend on two choices: Eq. 1's interpolation (budget
linear in bytes, the paper's, or in log bytes) and whether bound cells (clamped D_E) count.

Four variants: the analysis's interpolation with bounds included (the baseline) and excluded, and
the other interpolation with bounds included and excluded. A variant *changes* a correlation when
ρ changes sign or p crosses 0.05 relative to the baseline. The variables of each cell (distances,
contamination) are those of the baseline; only D_T is recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from xfer.analysis.correlations import SIGNIFICANT, correlation_cells, rho_p
from xfer.analysis.report import markdown_table
from xfer.analysis.stats import DEFAULT_RESAMPLES, correlation_table
from xfer.analysis.transfer import (
    DEFAULT_INTERP,
    EXACT,
    INTERPOLATIONS,
    compute_transfer,
    summarise_cells,
)

KEYS = ["init", "target", "budget"]
COLUMNS = ["variant", "variable", "n", "n_pairs", "rho", "p", "sign_changed",
           "significance_changed"]


def variants(results: pd.DataFrame, corr: pd.DataFrame, against: Mapping[str, str], *,
             interp: str, largest: int | None) -> dict[str, pd.DataFrame]:
    """The four cell sets (variant name -> cells with ``d_t`` and the variables), baseline
    first. ``corr`` holds the baseline's correlation cells (computed with ``interp``)."""
    other = next(i for i in INTERPOLATIONS if i != interp)
    columns = [c for c in against.values() if c in corr.columns]
    alt_cells = summarise_cells(compute_transfer(results, other).rows)
    alt = correlation_cells(alt_cells, largest)[[*KEYS, "d_t", "bound"]].merge(
        corr[[*KEYS, *columns]], on=KEYS, how="inner")
    return {f"{interp}, bounds in": corr, f"{interp}, bounds out": corr[corr["bound"] == EXACT],
            f"{other}, bounds in": alt, f"{other}, bounds out": alt[alt["bound"] == EXACT]}


def sensitivity(results: pd.DataFrame, corr: pd.DataFrame, against: Mapping[str, str], *,
                interp: str = DEFAULT_INTERP, largest: int | None = None,
                n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Pooled Spearman ρ (pairs permuted) of D_T against each variable in each variant, with
    ``sign_changed`` and ``significance_changed`` (p < 0.05 or not) against the baseline."""
    tables = []
    for name, frame in variants(results, corr, against, interp=interp, largest=largest).items():
        table = correlation_table(frame, against, "d_t", n_resamples=n_resamples, seed=seed)
        tables.append(table.assign(variant=name))
    out = pd.concat(tables, ignore_index=True)
    base = out[out["variant"] == tables[0]["variant"].iloc[0]].set_index("variable")
    ref_rho, ref_p = out["variable"].map(base["rho"]), out["variable"].map(base["p"])
    out["sign_changed"] = (np.sign(out["rho"]) != np.sign(ref_rho)) & out["rho"].notna() \
        & ref_rho.notna()
    out["significance_changed"] = ((out["p"] < SIGNIFICANT) != (ref_p < SIGNIFICANT)) \
        & out["p"].notna() & ref_p.notna()
    return out[COLUMNS]


def sensitivity_markdown(table: pd.DataFrame) -> str:
    """One row per variable: ρ (p) in each variant, and which variants change sign or
    significance."""
    if table.empty:
        return "No correlation to compare."
    names = list(dict.fromkeys(table["variant"]))
    rows = []
    for variable, group in table.groupby("variable", sort=False):
        by = {r["variant"]: r for _, r in group.iterrows()}
        changes = [f"sign ({v})" for v in names if v in by and by[v]["sign_changed"]]
        changes += [f"significance ({v})" for v in names
                    if v in by and by[v]["significance_changed"]]
        rows.append([variable, *[rho_p(by.get(v)) for v in names], "; ".join(changes) or "none"])
    return markdown_table(["variable", *[f"{v}: ρ (p)" for v in names], "changes"], rows)
