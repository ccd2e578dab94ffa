"""The functions that decide the paper's claims: each returns a
:class:`~xfer.analysis.claim_tests.Decision` (and what the row prints beside it) from per-seed
transfer rows or correlation cells. :mod:`xfer.analysis.claims` writes the rows around them;
``bench/claims.py`` simulates their error rates; mutation testing (``mutmut``, configured in
pyproject.toml) covers this module, :mod:`~xfer.analysis.claim_tests` and
:mod:`~xfer.analysis.claim_stats`. The declared margins are the constants below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from xfer.analysis import claim_stats as cs
from xfer.analysis.claim_tests import (
    ALPHA,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    Decision,
    bonferroni,
    exceeds,
    finite,
    t_bounds,
    twoway_rho_bounds,
    undecided,
    welch_bounds,
    within,
)
from xfer.analysis.powerlaw import HERNANDEZ_ALPHA
from xfer.analysis.premium import premium_of

WEAK_RHO = 0.3  # |ρ| below this is "weak" (the paper's 0.191 and 0.265 are)
COMMUTE_MARGIN = 0.25  # a pair's difference under 25% of its mean D_T counts as commutative
BEND_MARGIN = math.log(1.25)  # a power law within 25% at the budget range's midpoint
ALPHA_FACTOR = 2.0  # "near 0.18": within a factor 2
MIN_BUDGETS, MIN_SPAN = 3, 8.0  # the power law's tests need >= 3 budgets spanning >= 8x
MAX_LEFT_OUT = 0.1  # power law: more than 10% of points left out (D_T <= 0) biases alpha
# The over-target claims decide at 0.03 per side: their cross-fitted per-seed values are not
# quite independent (each seed's odd source is chosen on the others), and at 0.05 per side
# bench/claims.py measured 7.5% false supported at the region's edge.
OVER_TARGETS_ALPHA = 0.03
PAPER_SOURCES = ("en", "ru", "zh")
SPANISH_CONTROL = ("pt", "es")
CONTAMINATION = {"contamination on source": "contamination_on_source",
                 "contamination on target": "contamination_on_target"}
# Paper Table 2 (D_T in MiB at 6M): target -> source -> D_T.
PAPER_DT = {
    "ar": {"en": 101.02, "ru": 99.00, "zh": 90.63}, "de": {"en": 95.25, "ru": 47.87, "zh": 31.76},
    "en": {"ru": 174.63, "zh": 66.96}, "es": {"en": 121.14, "ru": 67.88, "zh": 50.27},
    "fi": {"en": 76.57, "ru": 50.96, "zh": 49.65}, "id": {"en": 102.62, "ru": 51.32, "zh": 50.21},
    "ja": {"en": 47.50, "ru": 47.81, "zh": 69.48}, "ko": {"en": 48.74, "ru": 48.69, "zh": 49.88},
    "ru": {"en": 75.64, "zh": 48.47}, "zh": {"en": 29.21, "ru": 26.18},
}


@dataclass(frozen=True)
class Over:
    """A decision over targets: how many entered and which were left out."""

    decision: Decision
    targets: int
    seeds: int
    left_out: list[str]


def _over_targets(small: pd.DataFrame, terms: callable, margin: float) -> Over:
    table, left = cs.per_target(small, PAPER_SOURCES, terms)
    if table.empty:
        return Over(undecided("no target with all sources"), 0, 0, left)
    values = cs.seed_means(table)
    return Over(exceeds(*t_bounds(values, OVER_TARGETS_ALPHA), margin=margin), table.shape[1],
                len(values), left)


def comparable(small: pd.DataFrame) -> Over:
    """Mean over targets of (min − max/3)/level per seed, > 0 supports, < COMPARABLE_REFUTE
    refutes."""
    return _over_targets(small, cs.comparable_terms, cs.COMPARABLE_REFUTE)


def stands_out(small: pd.DataFrame) -> Over:
    """Mean over targets of (c − 3·|e|)/level per seed (cross-fitted odd source), > 0 supports,
    < STAND_OUT_REFUTE refutes."""
    return _over_targets(small, cs.stand_out_terms, cs.STAND_OUT_REFUTE)


def spanish(small: pd.DataFrame, others: list[str]) -> tuple[Decision, str]:
    """pt→es above every other source into es: intersection-union of one-sided α tests of the
    paired differences (supported), or some difference's one-sided α/len(others) upper bound
    below 0 (not supported). Returns the decision (estimate: the difference to the closest
    source) and that source."""
    src, tgt = SPANISH_CONTROL
    diffs = {x: cs.paired_differences(small, src, x, tgt) for x in others}
    low = {x: t_bounds(d)[1] for x, d in diffs.items()}
    high = {x: t_bounds(d, bonferroni(ALPHA, len(others)))[2] for x, d in diffs.items()}
    if not all(math.isfinite(v) for v in (*low.values(), *high.values())):
        return undecided("fewer than two exact seeds for a source"), ""
    means = {x: float(np.mean(d)) for x, d in diffs.items()}
    closest = min(means, key=means.get)
    lowest, highest = min(low.values()), min(high.values())
    verdict = SUPPORTED if lowest > 0 else NOT_SUPPORTED if highest < 0 else INCONCLUSIVE
    return Decision(means[closest], lowest, highest, verdict), closest


def paper_en(source: str, target: str) -> float:
    """The paper's D_T of source→target (Table 2/6, MiB of the target's bytes) in MiB of English
    bytes (divided by the target's byte premium)."""
    return PAPER_DT[target][source] / premium_of(target)


def paper_order(a: str, b: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """The two directions of a↔b, the paper's larger one in English bytes first."""
    first = max((a, b), (b, a), key=lambda pair: paper_en(*pair))
    return first, first[::-1]


def commutativity(x: np.ndarray, y: np.ndarray) -> Decision:
    """The paper's larger direction's per-seed D_T in English bytes (``x``) minus the other's
    (``y``), over the pair's mean |D_T|, with its Welch interval: above COMMUTE_MARGIN supports
    non-commutativity in the paper's direction, below refutes it."""
    level = float(np.mean(np.abs(np.r_[x, y]))) if len(x) and len(y) else math.nan
    if not (math.isfinite(level) and level > 0):
        return undecided("a direction is missing")
    diff, low, high = (v / level for v in welch_bounds(x, y))
    return exceeds(diff, low, high, floor=COMMUTE_MARGIN, margin=COMMUTE_MARGIN)


def distance_columns(corr: pd.DataFrame | None) -> list[str]:
    """The lang2vec distance columns of the correlation cells with a value."""
    return sorted(c for c in (corr.columns if corr is not None else []) if
                  c.startswith("distance_") and corr[c].notna().any())


def family(corr: pd.DataFrame | None) -> int:
    """The correlation claims' family: both contamination columns and every distance."""
    return len(CONTAMINATION) + len(distance_columns(corr))


def correlation(corr: pd.DataFrame | None, column: str, lo: float, hi: float) -> Decision:
    """Spearman ρ of D_T on ``column`` over the cells, two-way bootstrap interval at the
    Bonferroni level of :func:`family`, against (lo, hi)."""
    if corr is None or corr.empty or column not in corr.columns or "d_t" not in corr.columns:
        return undecided("no such column")
    present = finite(corr[column])
    if len(set(present)) == 1:
        return undecided(f"{column} is {present[0]:g} in every cell: no ρ")
    rho, low, high = twoway_rho_bounds(corr["d_t"].to_numpy(), corr[column].to_numpy(),
                                       corr["init"].to_numpy(), corr["target"].to_numpy(),
                                       alpha=bonferroni(ALPHA, family(corr)))
    return within(rho, low, high, lo=lo, hi=hi)


def weak_contamination(corr: pd.DataFrame | None, variable: str) -> Decision:
    """ρ inside (0, WEAK_RHO) supports "only weakly", outside refutes."""
    return correlation(corr, CONTAMINATION[variable], 0.0, WEAK_RHO)


def no_typology(corr: pd.DataFrame | None) -> tuple[Decision, dict[str, Decision]]:
    """Every distance's ρ inside ±WEAK_RHO supports (intersection-union), any outside refutes;
    returns the combined decision (the ρ farthest from 0, the intervals' hull, the first
    distance's note on reach) and each distance's."""
    found = {c.removeprefix("distance_"): correlation(corr, c, -WEAK_RHO, WEAK_RHO)
             for c in distance_columns(corr)}
    if not found:
        return undecided("no distance column"), found
    verdicts = [d.verdict for d in found.values()]
    verdict = NOT_SUPPORTED if NOT_SUPPORTED in verdicts else \
        SUPPORTED if set(verdicts) == {SUPPORTED} else INCONCLUSIVE
    rhos = [d.estimate for d in found.values() if math.isfinite(d.estimate)]
    extreme = max(rhos, key=abs) if rhos else math.nan
    reach = next((d.reach for d in found.values() if d.reach), "")
    return Decision(extreme, min(d.low for d in found.values()),
                    max(d.high for d in found.values()), verdict, reach), found


def power_law_design(rows: pd.DataFrame, used: int, left: int) -> str:
    """Why the power law's tests cannot run ("" when they can): too few budgets or too narrow a
    span, or more than MAX_LEFT_OUT of the points left out of the log fit."""
    n, span = cs.budget_span(rows)
    if n < MIN_BUDGETS or not span >= MIN_SPAN:
        return (f"the design cannot test it: {n} finetune budgets spanning {span:.3g}× (needs "
                f"≥ {MIN_BUDGETS} spanning ≥ {MIN_SPAN:g}×)")
    if used + left and left / (used + left) > MAX_LEFT_OUT:
        return (f"{left} of {used + left} points are bounds or D_T ≤ 0, which a log fit leaves "
                "out (biasing α up where they lie at a pair's larger budgets, down at smaller)")
    return ""


POWER_LAW_REGIONS = {"bend": (-BEND_MARGIN, BEND_MARGIN),
                     "alpha": (HERNANDEZ_ALPHA / ALPHA_FACTOR, HERNANDEZ_ALPHA * ALPHA_FACTOR)}


def power_law(rows: pd.DataFrame) -> tuple[dict[str, Decision], int, int]:
    """The per-seed bend and α (:func:`xfer.analysis.claim_stats.power_law_terms`), each with its
    t interval over seeds against :data:`POWER_LAW_REGIONS`; inconclusive with the reason where
    :func:`power_law_design` says the design cannot test them. Also the points used and left
    out."""
    table, used, left = cs.power_law_terms(rows)
    why = power_law_design(rows, used, left)
    out = {}
    for column, (lo, hi) in POWER_LAW_REGIONS.items():
        raw = t_bounds(table[column].to_numpy())
        out[column] = Decision(*raw, INCONCLUSIVE, why) if why else within(*raw, lo=lo, hi=hi)
    return out, used, left
