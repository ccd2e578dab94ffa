"""Where a study's numbers rest on how long its runs were, not on their data.

Two flags for the report:

- a scratch run or finetune that ended at its length (step cap or epoch count) rather than by
  early stopping (patience): its perplexity measures the cap, so a curve of such runs can flatten
  where more data would still help (``stopped_early`` False in the results table);
- a finetune whose D_E falls on a stretch of its seed's scratch curve that does not fall (the
  perplexity drops by less than ``FLAT`` of itself between the two budgets around D_E): there a
  small change of perplexity moves D_E across the whole stretch, so D_E says little.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xfer.analysis.transfer import SCRATCH, seed_curves
from xfer.units import format_budget

FLAT = 0.01  # a scratch-curve stretch falling by less than 1% of its perplexity is flat


def capped_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """Scratch and finetune rows (one per trial) that ran to their length: ``stopped_early`` is
    False. Empty when the table has no ``stopped_early`` column (older run folders)."""
    if "stopped_early" not in rows.columns or rows.empty:
        return rows.iloc[0:0]
    trained = rows[rows.get("kind", pd.Series("", index=rows.index)) != "pretrain"]
    stopped = trained["stopped_early"].astype("boolean")
    return trained[stopped.eq(False).fillna(False).to_numpy()]


def flat_segments(rows: pd.DataFrame) -> pd.DataFrame:
    """Finetune rows whose D_E (bytes) lies between two budgets of their seed's scratch curve
    whose perplexities differ by less than FLAT of the smaller budget's, with that stretch
    (``flat_from``, ``flat_to`` bytes)."""
    need = {"init", "target", "budget", "perplexity", "d_e", "seed"}
    if rows.empty or not need <= set(rows.columns):
        return rows.iloc[0:0].assign(flat_from=[], flat_to=[])
    usable = rows[np.isfinite(rows["perplexity"].astype(float))]
    out = []
    for (target, seed), points in seed_curves(usable)[0].items():  # seeds with >= 2 budgets
        b, p = points.budgets, points.perplexities  # every measured point, budgets increasing
        flat = (p[:-1] - p[1:]) < FLAT * p[:-1]
        finetunes = rows[(rows["init"] != SCRATCH) & (rows["target"] == target)
                         & (rows["seed"] == seed) & np.isfinite(rows["d_e"].astype(float))]
        for i in np.flatnonzero(flat):
            hit = finetunes[(finetunes["d_e"] > b[i]) & (finetunes["d_e"] <= b[i + 1])]
            out.append(hit.assign(flat_from=b[i], flat_to=b[i + 1]))
    return pd.concat(out) if out else rows.iloc[0:0].assign(flat_from=[], flat_to=[])


def run_length_markdown(rows: pd.DataFrame) -> str:
    """The report's lines on runs that ended at their length and D_E on flat stretches."""
    capped, flat = capped_runs(rows), flat_segments(rows)
    lines = []
    if "stopped_early" not in rows.columns:
        lines.append("The results table does not say how runs ended (no `stopped_early`).")
    elif capped.empty:
        lines.append("Every scratch run and finetune ended by early stopping (patience), none "
                     "at its step cap or epoch count.")
    else:
        lines.append(f"{len(capped)} runs ended at their length (step cap or epochs), not by "
                     "patience: their perplexity measures the cap.")
        for (kind, budget), group in capped.groupby(["init", "budget"]):
            who = "scratch" if kind == SCRATCH else f"finetunes from {kind}"
            lines.append(f"- {who} at {format_budget(int(budget))}: {len(group)} "
                         f"({', '.join(sorted(set(group['target'])))})")
    if flat.empty:
        lines.append("No D_E falls on a flat stretch of its scratch curve (a drop < "
                     f"{FLAT:.0%}).")
    else:
        lines.append(f"{len(flat)} D_E values fall on a flat stretch of their seed's scratch "
                     f"curve (perplexity falls < {FLAT:.0%} there), where D_E is ill-determined:")
        for (target, lo, hi), group in flat.groupby(["target", "flat_from", "flat_to"]):
            lines.append(f"- {target} {format_budget(int(lo))}–{format_budget(int(hi))}: "
                         f"{len(group)} ({', '.join(sorted(set(group['init'])))})")
    return "\n".join(lines)
