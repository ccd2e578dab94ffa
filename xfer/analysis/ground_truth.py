"""Does D_T recover a known ground truth? Declared divergences against measured transfer.

Generated languages declare how far each one is from a reference language on each axis
(``xfer.data.synthetic.divergence``: content, lexicon, script, grammar; 0 = the same, 1 = nothing
shared). A language that departs from the reference on exactly one axis is a *level* of that axis;
a language with other content (another world, or none) is an unrelated *control*. For every axis
and finetuning budget, with the reference as target:

- ρ: Spearman's rank correlation between divergence and D_T over the levels' seeds, with its
  permutation p-value (:func:`xfer.analysis.stats.spearman`);
- falls: the mean D_T falls strictly from each level to the next more divergent one;
- resolved: of those steps, how many fall beyond the seeds' spread (the more divergent level's
  interval lies wholly below the other's): a fall inside overlapping intervals is a mean's;
- control lowest: every control's mean D_T is below every level's;
- verdict: "recovered" when D_T falls and the control is lowest, else "not recovered".

D_T in MiB (2^20 bytes); intervals are the cells' 95% bootstrap intervals over seeds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xfer.analysis.stats import spearman
from xfer.data.units import format_budget

CONTENT = "content"  # the axis whose divergence makes a language a control
TRUTH_COLUMNS = ["source", "target", "axis", "divergence", "budget", "d_t_mib", "ci_low",
                 "ci_high", "seeds"]
VERDICT_COLUMNS = ["axis", "budget", "levels", "rho", "p", "falls", "resolved_steps",
                   "control_lowest", "verdict"]
RECOVERED, NOT_RECOVERED = "recovered", "not recovered"


@dataclass(frozen=True)
class Truth:
    """Declared divergences from ``reference`` (language -> axis -> 0..1)."""

    reference: str
    divergence: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def axis_of(self, lang: str) -> str | None:
        """The one axis on which ``lang`` departs from the reference, "control" for other
        content, None for the reference itself or a language that departs on several axes."""
        div = self.divergence.get(lang)
        if not div or lang == self.reference:
            return None
        if div.get(CONTENT, 0) > 0:
            return "control"
        moved = [axis for axis, value in div.items() if value > 0]
        return moved[0] if len(moved) == 1 else None

    @property
    def axes(self) -> list[str]:
        """Axes with at least one level, in declaration order."""
        found = [self.axis_of(lang) for lang in self.divergence]
        return [a for a in dict.fromkeys(found) if a not in (None, "control")]


def truth_table(cells: pd.DataFrame, truth: Truth) -> pd.DataFrame:
    """One row per finetuned cell into the reference whose source is a level or a control:
    ``source, target, axis, divergence, budget, d_t_mib, ci_low, ci_high, seeds`` (a control's
    divergence is its content divergence, 1)."""
    rows = []
    into = cells[(cells["target"] == truth.reference) & (cells["init"] != "scratch")]
    for cell in into.itertuples():
        axis = truth.axis_of(cell.init)
        if axis is None:
            continue
        div = truth.divergence[cell.init][CONTENT if axis == "control" else axis]
        rows.append({"source": cell.init, "target": cell.target, "axis": axis,
                     "divergence": float(div), "budget": int(cell.budget),
                     "d_t_mib": cell.d_t_mib, "ci_low": cell.d_t_mib_ci_low,
                     "ci_high": cell.d_t_mib_ci_high, "seeds": int(cell.n_seeds)})
    table = pd.DataFrame(rows, columns=TRUTH_COLUMNS)
    return table.sort_values(["budget", "axis", "divergence", "source"], ignore_index=True)


def verdicts(table: pd.DataFrame, rows: pd.DataFrame, truth: Truth) -> pd.DataFrame:
    """Per axis and budget: levels, ρ and p over the levels' per-seed D_T (``rows``: the
    transfer rows, one per seed), whether mean D_T falls, whether the control is lowest, and
    the verdict."""
    out = []
    for budget in sorted(table["budget"].unique()):
        at = table[table["budget"] == budget]
        controls = at[at["axis"] == "control"]["d_t_mib"]
        for axis in truth.axes:
            levels = at[at["axis"] == axis].sort_values("divergence")
            if levels.empty:
                continue
            seeds = rows[(rows["target"] == truth.reference) & (rows["budget"] == budget)
                         & rows["init"].isin(levels["source"])]
            div = seeds["init"].map(lambda s: truth.divergence[s][axis])  # noqa: B023
            c = spearman(div.to_numpy(float), seeds["d_t_mib"].to_numpy(float))
            means = levels["d_t_mib"].to_numpy(float)
            falls = bool(len(means) > 0 and np.all(np.diff(means) < 0))
            resolved = resolved_steps(levels["ci_low"].to_numpy(float),
                                      levels["ci_high"].to_numpy(float))
            lowest = bool(len(controls) and controls.max() < means.min())
            out.append({"axis": axis, "budget": int(budget), "levels": len(levels),
                        "rho": c.rho, "p": c.p, "falls": falls, "resolved_steps": resolved,
                        "control_lowest": lowest,
                        "verdict": RECOVERED if falls and lowest else NOT_RECOVERED})
    return pd.DataFrame(out, columns=VERDICT_COLUMNS)


def resolved_steps(ci_low: np.ndarray, ci_high: np.ndarray) -> int:
    """Steps from a level to the next more divergent one whose interval lies wholly below."""
    return int(np.sum(ci_high[1:] < ci_low[:-1]))


def _falls(v: object) -> str:
    """``yes (1 of 2 steps beyond the seeds' intervals)`` or ``no``."""
    if not v.falls:
        return "no"
    return f"yes ({v.resolved_steps} of {v.levels - 1} steps beyond the seeds' intervals)"


def _mib(value: float) -> str:
    return f"{value:.3g}" if np.isfinite(value) else "–"


def markdown(table: pd.DataFrame, verdict: pd.DataFrame, truth: Truth) -> str:
    """The report's "Ground truth" section: the verdicts, then D_T per level with intervals."""
    if table.empty:
        return (f"No finetuned cell into {truth.reference} from a language with a declared "
                "divergence: nothing to check.")
    lines = [
        f"Sources that depart from `{truth.reference}` on one declared axis (their divergence, "
        "0-1) and unrelated controls (other content), finetuned on it. Recovered: mean D_T "
        "falls strictly as divergence grows and every control is below every level; the steps "
        "of the fall whose intervals do not overlap are counted beside it. ρ: Spearman over "
        "the levels' seeds (permutation p).", "",
        "| axis | budget | levels | ρ | p | D_T falls | control lowest | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for v in verdict.itertuples():
        lines.append(f"| {v.axis} | {format_budget(v.budget)} | {v.levels} | {v.rho:.2f} | "
                     f"{v.p:.3f} | {_falls(v)} | "
                     f"{'yes' if v.control_lowest else 'no'} | **{v.verdict}** |")
    lines += ["", "| budget | axis | source | divergence | D_T (MiB) | 95% interval | seeds |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in table.itertuples():
        lines.append(f"| {format_budget(r.budget)} | {r.axis} | {r.source} | "
                     f"{r.divergence:.2f} | {_mib(r.d_t_mib)} | "
                     f"[{_mib(r.ci_low)}, {_mib(r.ci_high)}] | {r.seeds} |")
    return "\n".join(lines)


def verdict_lines(verdict: pd.DataFrame) -> list[str]:
    """One console line per axis and budget, e.g. ``lexicon at 5K: recovered (ρ = -0.93)``."""
    return [f"{v.axis} at {format_budget(v.budget)}: {v.verdict} (ρ = {v.rho:.2f}, p = "
            f"{v.p:.3f}; D_T falls: {_falls(v)}, control lowest: "
            f"{'yes' if v.control_lowest else 'no'})" for v in verdict.itertuples()]


def generated_truth(sources: Iterable[str], targets: Iterable[str],
                    extra_pairs: Iterable[Sequence[str]] = (),
                    reference: str = "base") -> Truth | None:
    """The generated sources' declared divergences from ``reference``
    (``xfer.data.synthetic.divergence``) when the study finetunes into it, else None."""
    from xfer.data import synthetic

    pairs = [tuple(p) for p in extra_pairs]
    if reference not in {*targets, *(t for _, t in pairs)}:
        return None
    langs = {*sources, *(s for s, _ in pairs)}
    return Truth(reference, {lang: synthetic.divergence(lang) for lang in sorted(langs)})
