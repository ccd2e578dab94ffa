"""Does D_T recover a known ground truth? Declared divergences against measured transfer.

Generated languages declare how far each one is from a reference language on each axis
(``xfer.data.synthetic.divergence``: content, lexicon, script, grammar; 0 = the same, 1 = nothing
shared). A language that departs from the reference on exactly one axis is a *level* of that axis;
a language with other content (another world, or none) is an unrelated *control*. For every axis
and finetuning budget, with the reference as target, over the per-seed D_T (seed s of every
source mapped through seed s's scratch curve), the tests declared in :mod:`xfer.analysis.trend`:

- trend: D_T falls as divergence grows (Page's L over the levels, seeds as blocks; a paired
  Wilcoxon test for two levels), one-sided;
- control: every control lies below the axis's least divergent level (Mann-Whitney), one-sided;
- p: the larger of the two (both must hold: an intersection-union test), Holm-adjusted across
  every axis and budget;
- verdict: *recovered* when the adjusted p < 0.05; *contradicted* when the opposite (D_T rises
  with divergence, or a control lies above the least divergent level) is significant the same
  way; else *inconclusive*. The smallest Holm-adjusted p the design can reach (every row at
  its floor) is printed beside it, with "cannot reach 0.05" where it cannot;
- order: each adjacent step of the axis tested on its own (:mod:`xfer.analysis.order`); a
  *recovered* axis with a significantly reversed step is "trend recovered, order broken at
  lex25/lex50";
- the most divergent level is tested against the controls as well: where it is not above them,
  the report says that level transfers no more than the control.

ρ (Spearman over the levels' seeds) is printed as a description only. D_T in MiB (2^20 bytes);
intervals are the cells' 95% t intervals over seeds (:mod:`xfer.analysis.intervals`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from xfer.analysis import order, trend
from xfer.analysis.transfer import EXACT, LOWER, UPPER
from xfer.units import format_budget

CONTENT = "content"  # the axis whose divergence makes a language a control
TRUTH_COLUMNS = ["source", "target", "axis", "divergence", "budget", "d_t_mib", "ci_low",
                 "ci_high", "seeds", "bound"]
VERDICT_COLUMNS = ["axis", "budget", "levels", "seeds", "rho", "p_trend", "p_control", "p",
                   "p_floor", "p_floor_holm", "p_holm", "p_reverse_holm", "top_above_control",
                   "order", "order_broken", "verdict"]
RECOVERED, INCONCLUSIVE, CONTRADICTED = "recovered", "inconclusive", "contradicted"


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
    ``source, target, axis, divergence, budget, d_t_mib, ci_low, ci_high, seeds, bound`` (a
    control's divergence is its content divergence, 1; ``bound`` as in
    :func:`xfer.analysis.transfer.summarise_cells`: a bound cell's interval is one-sided)."""
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
                     "ci_high": cell.d_t_mib_ci_high, "seeds": int(cell.n_seeds),
                     "bound": cell.bound})
    table = pd.DataFrame(rows, columns=TRUTH_COLUMNS)
    return table.sort_values(["budget", "axis", "divergence", "source"], ignore_index=True)


def seed_table(rows: pd.DataFrame, truth: Truth, budget: int,
               sources: list[str]) -> pd.DataFrame:
    """Per-seed D_T (MiB) into the reference at ``budget``: one row per seed, one column per
    source of ``sources`` (NaN where a seed lacks it)."""
    mine = rows[(rows["target"] == truth.reference) & (rows["budget"] == budget)
                & rows["init"].isin(sources) & (rows["bound"] != "")]
    seeds = mine["seed"] if "seed" in mine.columns else pd.Series(0, index=mine.index)
    table = mine.assign(seed=seeds).pivot_table(index="seed", columns="init", values="d_t_mib")
    return table.reindex(columns=sources)


def _axis_tests(per_seed: pd.DataFrame, levels: list[str], controls: list[str]) -> dict:
    """The declared tests of one axis (``levels`` least divergent first)."""
    falling = per_seed[levels[::-1]].to_numpy(float)  # most divergent first: predicted to rise
    complete = int(np.isfinite(falling).all(axis=1).sum())
    first, last = per_seed[levels[0]].to_numpy(float), per_seed[levels[-1]].to_numpy(float)
    p_control = max((trend.below_p(per_seed[c], first) for c in controls), default=np.nan)
    p_control_rev = max((trend.below_p(first, per_seed[c]) for c in controls), default=np.nan)
    p_top = max((trend.below_p(per_seed[c], last) for c in controls), default=np.nan)
    floors = [trend.trend_floor(complete, len(levels))]
    floors += [trend.below_floor(int(per_seed[c].notna().sum()), int(np.isfinite(first).sum()))
               for c in controls]
    p_trend = trend.trend_p(falling)
    return {"p_trend": p_trend, "p_control": p_control,
            "p": max(p_trend, p_control) if controls else p_trend,
            "p_reverse": min(trend.trend_p(falling[:, ::-1]), p_control_rev)
            if controls else trend.trend_p(falling[:, ::-1]),
            "p_floor": max(floors), "seeds": complete,
            "top_above_control": bool(controls) and p_top < trend.ALPHA}


def verdicts(table: pd.DataFrame, rows: pd.DataFrame, truth: Truth) -> pd.DataFrame:
    """Per axis and budget: the declared tests over the per-seed D_T (``rows``: the transfer
    rows, one per seed), Holm-adjusted across every axis and budget, the adjacent steps
    (:mod:`xfer.analysis.order`) and the verdict."""
    out, steps = [], []
    for budget in sorted(table["budget"].unique()):
        at = table[table["budget"] == budget]
        controls = sorted(at.loc[at["axis"] == "control", "source"])
        for axis in truth.axes:
            levels = at[at["axis"] == axis].sort_values("divergence")["source"].tolist()
            if not levels:
                continue
            per_seed = seed_table(rows, truth, int(budget), levels + controls)
            long = per_seed[levels].melt(value_name="d_t").dropna()
            div = long["init"].map(lambda s: truth.divergence[s][axis])  # noqa: B023
            rho = (float(stats.spearmanr(div, long["d_t"]).statistic)
                   if len(long) > 2 and div.nunique() > 1 else np.nan)
            out.append({"axis": axis, "budget": int(budget), "levels": " > ".join(levels),
                        "rho": rho, **_axis_tests(per_seed, levels, controls)})
            steps += [{"axis": axis, "budget": int(budget), **step}
                      for step in order.axis_steps(per_seed, levels)]
    frame = pd.DataFrame(out)
    if frame.empty:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    frame["p_holm"] = trend.holm(frame["p"].to_numpy(float))
    frame["p_floor_holm"] = trend.holm(frame["p_floor"].to_numpy(float))
    frame["p_reverse_holm"] = trend.holm(frame.pop("p_reverse").to_numpy(float))
    judged = order.judge_steps(pd.DataFrame(steps))
    frame[["order", "order_broken"]] = [order.order_columns(judged, v.axis, v.budget)
                                        for v in frame.itertuples()]
    frame["verdict"] = np.where(frame["p_holm"] < trend.ALPHA, RECOVERED, np.where(
        frame["p_reverse_holm"] < trend.ALPHA, CONTRADICTED, INCONCLUSIVE))
    broken = (frame["verdict"] == RECOVERED) & (frame["order_broken"] != "")
    frame.loc[broken, "verdict"] = order.BROKEN + " " + frame.loc[broken, "order_broken"]
    return frame[VERDICT_COLUMNS]


def _mib(value: float) -> str:
    return f"{value:.3g}" if np.isfinite(value) else "–"


MARKS = {LOWER: "≥ ", UPPER: "≤ ", "mixed": "~ "}


def _bound_texts(r: object) -> tuple[str, str]:
    """(D_T, interval) as printed: a lower bound ``≥ mean`` with the one-sided ``≥ low``, an
    upper bound ``≤ mean`` with ``≤ high``, seeds that disagree ``~ mean`` without one."""
    bound = getattr(r, "bound", EXACT)
    mean = MARKS.get(bound, "") + _mib(r.d_t_mib)
    if bound == LOWER:
        return mean, f"≥ {_mib(r.ci_low)}"
    if bound == UPPER:
        return mean, f"≤ {_mib(r.ci_high)}"
    if bound == "mixed":
        return mean, "– (bounds both ways)"
    return mean, f"[{_mib(r.ci_low)}, {_mib(r.ci_high)}]"


def _floor_text(v: object) -> str:
    """The design's smallest Holm-adjusted p, and whether it can reach ALPHA."""
    text = trend.format_p(v.p_floor_holm)
    return text + (" (cannot reach 0.05)" if v.p_floor_holm >= trend.ALPHA else "")


def _top_text(v: object) -> str:
    if v.top_above_control:
        return "yes"
    return f"no: {v.levels.split(' > ')[-1]} transfers no more than the control"


TESTS_TEXT = (
    "Tests declared in the code before any data (`xfer.analysis.trend`), over the per-seed D_T "
    "(seed s of every source mapped through seed s's scratch curve): *trend*, one-sided Page's "
    "L test that D_T falls as divergence grows, seeds as blocks (a paired Wilcoxon test for two "
    "levels); *control*, one-sided Mann-Whitney test that the control lies below the least "
    "divergent level. *p* is the larger of the two (both must hold), Holm-adjusted across the "
    "rows. **recovered**: adjusted p < 0.05; **contradicted**: the opposite direction "
    "significant the same way; else **inconclusive**. *floor (Holm)*: the smallest Holm-adjusted "
    "p this design (its seeds, levels and rows) can reach. *adjacent steps*: each step of the "
    "declared order on its own, one-sided paired t over the seeds in the direction of the mean; "
    "a rise significant after Holm across every step of the table turns **recovered** into "
    "**trend recovered, order broken at** that step. *top above control*: the most divergent "
    "level's D_T lies above the control's (one-sided Mann-Whitney, p < 0.05). ρ: Spearman over "
    "the levels' seeds, descriptive.")


def markdown(table: pd.DataFrame, verdict: pd.DataFrame, truth: Truth) -> str:
    """The report's "Ground truth" section: the verdicts, then D_T per level with intervals."""
    if table.empty:
        return (f"No finetuned cell into {truth.reference} from a language with a declared "
                "divergence: nothing to check.")
    lines = [TESTS_TEXT, "",
             "| axis | budget | levels (least divergent first) | seeds | ρ | p trend | p control "
             "| p (Holm) | floor (Holm) | adjacent steps | top above control | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for v in verdict.itertuples():
        lines.append(f"| {v.axis} | {format_budget(v.budget)} | {v.levels} | {v.seeds} | "
                     f"{v.rho:.2f} | {trend.format_p(v.p_trend)} | "
                     f"{trend.format_p(v.p_control)} | {trend.format_p(v.p_holm)} | "
                     f"{_floor_text(v)} | {v.order} | {_top_text(v)} | **{v.verdict}** |")
    lines += ["", "| budget | axis | source | divergence | D_T (MiB) | 95% t interval | seeds |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in table.itertuples():
        mean, interval = _bound_texts(r)
        lines.append(f"| {format_budget(r.budget)} | {r.axis} | {r.source} | "
                     f"{r.divergence:.2f} | {mean} | {interval} | {r.seeds} |")
    if table.get("bound", pd.Series(dtype=str)).isin([LOWER, UPPER, "mixed"]).any():
        lines += ["", "≥: a lower bound (a seed's finetune beat the scratch curve's largest "
                  "budget: its D_E is at least that budget), its interval one-sided; ≤: an "
                  "upper bound (worse than the smallest budget); ~: seeds bound both ways."]
    return "\n".join(lines)


def verdict_lines(verdict: pd.DataFrame) -> list[str]:
    """One console line per axis and budget, e.g. ``lexicon at 5K: recovered (p = 0.012 Holm;
    trend p < 0.001, control p 0.004; floor 0.012 Holm; …; steps: lex25/lex50 falls …)``."""
    return [f"{v.axis} at {format_budget(v.budget)}: {v.verdict} (p = {trend.format_p(v.p_holm)}"
            f" Holm; trend p {trend.format_p(v.p_trend)}, control p "
            f"{trend.format_p(v.p_control)}; floor {_floor_text(v)} Holm; {v.seeds} seeds; "
            f"most divergent above control: {_top_text(v)}; steps: {v.order})"
            for v in verdict.itertuples()]


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
