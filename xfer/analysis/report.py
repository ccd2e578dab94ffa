"""Markdown tables for ``report.md``: the paper's Table 2 layout, every budget, correlations,
commutativity, language notes and what was skipped. Values are shown in MiB (2^20 bytes);
bounds are written ``≥ x`` (lower) or ``≤ x`` (upper) and explained in numbered footnotes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from xfer.analysis.transfer import LOWER, SCRATCH, UPPER, Problem, ScratchCurve
from xfer.units import format_budget

MISSING = "–"


class Footnotes:
    """Numbered markdown footnotes, one per flagged cell (the same cell keeps its number)."""

    def __init__(self) -> None:
        self.notes: dict[object, tuple[int, str]] = {}

    def ref(self, key: object, text: str) -> str:
        if key not in self.notes:
            self.notes[key] = (len(self.notes) + 1, text)
        return f"[^{self.notes[key][0]}]"

    def render(self) -> str:
        return "\n".join(f"[^{n}]: {text}" for n, text in sorted(self.notes.values()))


def _format(value: float, digits: int) -> str:
    """``digits`` decimals, or 3 significant digits for small values (tiny test budgets)."""
    return f"{value:.3g}" if 0 < abs(value) < 10 ** (1 - digits) else f"{value:.{digits}f}"


def _number(value: float, std: float = float("nan"), digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    text = _format(value, digits)
    return text + (f" ± {_format(std, digits)}" if std is not None and math.isfinite(std) else "")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _bound_text(cell, curves: Mapping[str, ScratchCurve]) -> str:
    curve = curves[cell.target]
    where = f"{cell.init}→{cell.target} at {format_budget(int(cell.budget))}"
    if cell.bound == LOWER:
        return (f"{where}: finetuned perplexity {cell.perplexity:.3f} is better than the best "
                f"scratch point ({curve.env_perplexities.min():.3f}); D_E clamped to the largest "
                f"scratch budget ({format_budget(int(curve.env_budgets.max()))}): D_T is a "
                "lower bound.")
    if cell.bound == UPPER:
        return (f"{where}: finetuned perplexity {cell.perplexity:.3f} is worse than the "
                f"smallest budget's scratch point ({curve.env_perplexities.max():.3f}); D_E "
                f"clamped to {format_budget(int(curve.env_budgets.min()))}: D_T is an upper "
                "bound (possibly negative transfer).")
    return f"{where}: seeds disagree (some lower, some upper bounds): the mean D_T is no bound."


def dt_text(cell, curves: Mapping[str, ScratchCurve], notes: Footnotes) -> str:
    """D_T of one cell in MiB (mean over seeds, its 95% t interval in brackets, or ±
    the standard deviation where there is no interval) with its bound mark and footnotes."""
    low = getattr(cell, "d_t_mib_ci_low", math.nan)
    high = getattr(cell, "d_t_mib_ci_high", math.nan)
    if math.isfinite(low) and math.isfinite(high):
        text = _number(cell.d_t_mib) + f" [{_format(low, 2)}, {_format(high, 2)}]"
    else:
        text = _number(cell.d_t_mib, cell.d_t_mib_std)
    if text == MISSING:
        return text
    if cell.bound in (LOWER, UPPER, "mixed"):
        mark = {LOWER: "≥ ", UPPER: "≤ ", "mixed": "~ "}[cell.bound]
        text = mark + text + notes.ref(("bound", cell.init, cell.target, cell.budget),
                                       _bound_text(cell, curves))
    curve = curves.get(cell.target)
    if curve is not None and not curve.monotone:
        text += notes.ref(("curve", cell.target), _curve_text(cell.target, curve))
    return text


def _curve_text(target: str, curve: ScratchCurve) -> str:
    dropped = ", ".join(format_budget(b) for b in curve.dropped_budgets)
    return (f"scratch curve of {target} is not monotone: budget(s) {dropped} scored no better than "
            "a smaller budget and were left out of the interpolation (monotone envelope).")


def table2(cells: pd.DataFrame, budget: int, targets: Sequence[str], sources: Sequence[str],
           curves: Mapping[str, ScratchCurve], notes: Footnotes) -> str:
    """The paper's Table 2 layout at one budget: rows init × {perplexity, D_T}, columns targets."""
    at = {(c.init, c.target): c for c in cells[cells["budget"] == budget].itertuples()}
    rows = []
    scratch_row = ["scratch ppl"]
    for t in targets:
        cell = at.get((SCRATCH, t))
        text = _number(cell.perplexity, cell.perplexity_std) if cell is not None else MISSING
        if t in curves and not curves[t].monotone:
            text += notes.ref(("curve", t), _curve_text(t, curves[t]))
        scratch_row.append(text)
    rows.append(scratch_row)
    for source in sources:
        ppl, dts = [f"{source} ppl"], [f"{source} D_T (MiB)"]
        for t in targets:
            cell = at.get((source, t))
            ppl.append(_number(cell.perplexity, cell.perplexity_std) if cell else MISSING)
            dts.append(dt_text(cell, curves, notes) if cell else MISSING)
        rows += [ppl, dts]
    return markdown_table(["init", *targets], rows)


def all_budgets_table(cells: pd.DataFrame, curves: Mapping[str, ScratchCurve],
                      notes: Footnotes) -> str:
    """D_T (MiB) of every source → target pair (rows) at every budget (columns)."""
    ft = cells[cells["init"] != SCRATCH]
    budgets = sorted(ft["budget"].unique())
    rows = []
    for (init, target), group in ft.groupby(["init", "target"], sort=True):
        by_budget = {c.budget: c for c in group.itertuples()}
        rows.append([f"{init}→{target}"] + [
            dt_text(by_budget[b], curves, notes) if b in by_budget else MISSING for b in budgets])
    return markdown_table(["pair", *[format_budget(int(b)) for b in budgets]], rows)


def commutativity_markdown(table: pd.DataFrame) -> str:
    """D_T both ways for each pair and the difference (MiB); a difference computed from a bound
    is itself marked ≥/≤, or ``?`` when its bounds pull both ways."""
    if table.empty:
        return "No pair of languages was finetuned in both directions at this budget."
    mark = {LOWER: "≥ ", UPPER: "≤ ", "unknown": "? ", "mixed": "~ "}
    rows = [[f"{r.lang1}↔{r.lang2}", mark.get(r.bound_12, "") + _number(r.d_t_mib_12),
             mark.get(r.bound_21, "") + _number(r.d_t_mib_21),
             mark.get(r.bound_difference, "") + _number(r.difference_mib)]
            for r in table.itertuples()]
    return markdown_table(["pair (L1↔L2)", "D_T L1→L2 (MiB)", "D_T L2→L1 (MiB)",
                           "difference (MiB)"], rows)


def language_notes_markdown(notes: Mapping[str, str], cells: pd.DataFrame, budget: int) -> str:
    """One row per language with a note: its D_T as a target by source at ``budget``, the note."""
    at = cells[(cells["budget"] == budget) & (cells["init"] != SCRATCH)]
    rows = []
    for lang, note in notes.items():
        mine = at[at["target"] == lang]
        dts = ", ".join(f"{c.init}: {_number(c.d_t_mib)}" for c in mine.itertuples()) or MISSING
        rows.append([lang, dts, " ".join(str(note).split())])
    return markdown_table(["language", f"D_T as target at {format_budget(budget)} (MiB)",
                           "note"], rows)


def problems_markdown(problems: Sequence[Problem]) -> str:
    """Bullet list of what was skipped or flagged, and why."""
    if not problems:
        return "Nothing was skipped."
    return "\n".join(f"- **{p.kind}** — {p.line()}" for p in problems)
