"""The three-state tests and per-seed statistics behind "The paper's claims": every expected value
is computed here independently (scipy directly, explicit resampling, or by hand)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from xfer.analysis import claim_stats as cs
from xfer.analysis import claim_tests as ct
from xfer.analysis.claim_tests import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED


def test_level_is_five_percent_per_side() -> None:
    assert ct.ALPHA == 0.05
    assert ct.bonferroni(0.05, 5) == pytest.approx(0.01)
    assert ct.bonferroni(0.05, 0) == 0.05


@pytest.mark.parametrize("values", [[1.0, 2.0, 4.0], [0.3, -0.1, 0.2, 0.9], [5.0, 5.5]])
def test_t_bounds_is_scipys_90_percent_interval(values: list[float]) -> None:
    x = np.array(values)
    low, high = stats.t.interval(0.90, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert ct.t_bounds(x) == pytest.approx((x.mean(), low, high))
    low, high = stats.t.interval(0.98, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert ct.t_bounds(x, 0.01)[1:] == pytest.approx((low, high))


def test_t_bounds_needs_two_values() -> None:
    assert all(math.isnan(v) for v in ct.t_bounds(np.array([1.0, np.nan])))
    assert ct.t_bounds([1.0, None, 2.0, np.inf, 4.0]) == ct.t_bounds(np.array([1.0, 2.0, 4.0]))
    assert ct.welch_bounds([1.0, None, 3.0, 4.0], [0.0, np.nan, 1.0]) == ct.welch_bounds(
        np.array([1.0, 3.0, 4.0]), np.array([0.0, 1.0]))


def test_welch_bounds_is_scipys_welch_interval() -> None:
    a, b = np.array([3.0, 4.5, 5.0]), np.array([1.0, 1.2, 2.9, 2.0])
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.90)
    assert ct.welch_bounds(a, b) == pytest.approx((a.mean() - b.mean(), ci.low, ci.high))
    assert all(math.isnan(v) for v in ct.welch_bounds(a, b[:1]))
    assert ct.welch_bounds(np.ones(3), np.zeros(2)) == (1.0, 1.0, 1.0)
    a, b = np.array([1.0, 3.0]), np.array([0.0, 2.0])  # two values each, equal variances
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.90)
    assert ct.welch_bounds(a, b) == pytest.approx((1.0, ci.low, ci.high))


@pytest.mark.parametrize("low, high, verdict", [
    (0.01, 2.0, SUPPORTED), (0.0, 2.0, INCONCLUSIVE), (-1.0, 0.5, INCONCLUSIVE),
    (-1.0, 0.49, NOT_SUPPORTED), (-1.0, -0.5, NOT_SUPPORTED), (math.nan, 1.0, INCONCLUSIVE)])
def test_exceeds(low: float, high: float, verdict: str) -> None:
    assert ct.exceeds(0.3, low, high, floor=0.0, margin=0.5).verdict == verdict


@pytest.mark.parametrize("low, high, verdict", [
    (0.05, 0.25, SUPPORTED), (0.0, 0.25, INCONCLUSIVE), (0.05, 0.3, INCONCLUSIVE),
    (-0.4, 0.0, NOT_SUPPORTED), (0.3, 0.9, NOT_SUPPORTED), (-0.1, 0.5, INCONCLUSIVE)])
def test_within(low: float, high: float, verdict: str) -> None:
    d = ct.within(0.1, low, high, lo=0.0, hi=0.3)
    assert d.verdict == verdict
    assert ("out of reach" in d.reach) == (high - low >= 0.3)


def _expanded_rho(x: np.ndarray, y: np.ndarray, copies: np.ndarray) -> float:
    return float(stats.spearmanr(np.repeat(x, copies), np.repeat(y, copies))[0])


def _explicit_twoway(y: np.ndarray, x: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                     alpha: float, resamples: int, seed: int) -> tuple[float, float]:
    """The two-way bootstrap interval by explicit resampling (np.repeat + scipy.spearmanr)."""
    r_index = np.unique(rows, return_inverse=True)[1]
    c_index = np.unique(cols, return_inverse=True)[1]
    n_r, n_c = r_index.max() + 1, c_index.max() + 1
    draw = np.random.default_rng(seed)
    r_draws = draw.integers(0, n_r, (resamples, n_r))
    c_draws = draw.integers(0, n_c, (resamples, n_c))
    boot = []
    for dr, dc in zip(r_draws, c_draws, strict=True):
        copies = np.bincount(dr, minlength=n_r)[r_index] * np.bincount(dc, minlength=n_c)[c_index]
        if copies.sum() >= 2 and np.ptp(np.repeat(x, copies)) and np.ptp(np.repeat(y, copies)):
            boot.append(_expanded_rho(x, y, copies))
    z = np.arctanh(np.clip(boot, -0.9999, 0.9999))
    half = stats.norm.ppf(1 - alpha) * np.std(z, ddof=1)
    centre = np.arctanh(np.clip(stats.spearmanr(x, y)[0], -0.9999, 0.9999))
    return float(np.tanh(centre - half)), float(np.tanh(centre + half))


def test_twoway_bootstrap_against_explicit_resampling() -> None:
    rng = np.random.default_rng(3)
    rows, cols = np.repeat(["zh", "en", "ru"], 6), np.tile(list("fbdcae"), 3)  # unsorted
    x = np.round(rng.normal(size=18), 1)  # ties, as distances have
    y = 0.5 * x + rng.normal(size=18)
    rho, low, high = ct.twoway_rho_bounds(y, x, rows, cols, alpha=0.01, resamples=300, seed=7)
    assert rho == pytest.approx(stats.spearmanr(x, y)[0])
    assert (low, high) == pytest.approx(_explicit_twoway(y, x, rows, cols, 0.01, 300, 7))
    # the defaults: 1000 resamples, seed 0, α 0.05 per side
    assert ct.twoway_rho_bounds(y, x, rows, cols)[1:] == pytest.approx(
        _explicit_twoway(y, x, rows, cols, 0.05, 1000, 0))
    # a cell missing one value is left out (not the other cells)
    y2 = y.copy()
    y2[4] = np.nan
    x2 = x.astype(object)
    x2[5] = None
    x2[6] = "n/a"  # text read from a table: not a number
    keep = np.arange(18) > 6
    keep[:4] = True
    assert ct.twoway_rho_bounds(y2, x2, rows, cols) == pytest.approx(
        ct.twoway_rho_bounds(y[keep], x[keep], rows[keep], cols[keep]))


def test_twoway_bootstrap_edges() -> None:
    rows, cols = np.array(["en", "en", "ru", "ru"]), np.array(["a", "b", "a", "b"])
    rho, low, high = ct.twoway_rho_bounds(np.array([1.0, 3, 2, 4]), np.array([1.0, 2, 3, 4]),
                                       rows, cols)  # 4 cells, 2 sources, 2 targets: enough
    assert rho == pytest.approx(0.8) and np.isfinite(low) and np.isfinite(high)
    x = np.arange(12.0)  # a perfect inverse ranking: ρ -1, every resample -1
    rho, low, high = ct.twoway_rho_bounds(-x, x, np.repeat(["a", "b", "c"], 4),
                                       np.tile(list("wxyz"), 3))
    assert (rho, low, high) == pytest.approx((-1.0, -0.9999, -0.9999))


def test_twoway_bootstrap_degenerate() -> None:
    assert math.isnan(ct.twoway_rho_bounds(np.ones(3), np.ones(3), np.arange(3), np.arange(3))[0])
    rho, low, _ = ct.twoway_rho_bounds(np.arange(5.0), np.arange(5.0), np.zeros(5), np.arange(5))
    assert rho == pytest.approx(1.0) and math.isnan(low)  # one source: no two-way interval


def test_stand_out_terms_by_hand() -> None:
    # seeds x (en, ru, zh); seed 0's own values are not used to choose its odd source
    m = np.array([[10.0, 2.0, 1.0], [9.0, 3.0, 2.0], [11.0, 1.0, 3.0]])
    out = cs.stand_out_terms(m, k=3.0)
    # seed 0: others mean (10, 2, 2.5): odd en (gap 7.5 vs 0.5); c = 10 - 1.5, e oriented by
    # zh > ru on the others: e = 1 - 2 = -1
    assert out[0] == pytest.approx(8.5 - 3 * -1.0)
    # seed 1: others (10.5, 1.5, 2): odd en; c = 9 - 2.5; zh > ru there: e = 2 - 3
    assert out[1] == pytest.approx(6.5 - 3 * -1.0)
    # seed 2: others (9.5, 2.5, 1.5): odd en; c = 11 - 2; ru > zh there: e = 1 - 3
    assert out[2] == pytest.approx(9.0 - 3 * -2.0)
    assert np.isfinite(cs.stand_out_terms(m[:2])).all()  # two seeds: one chooses for the other
    # ties on the other seeds: the odd source is the last, c and e oriented positive
    tied = np.array([[5.0, 1.0, 2.0], [1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    assert cs.stand_out_terms(tied)[0] == pytest.approx((2.0 - 3.0) - 3 * (5.0 - 1.0))
    # the odd source low, between a third and a half of the other two's sum on the other seeds
    low = np.array([[1.0, 8.0, 10.0], [6.0, 9.0, 10.0], [7.0, 9.0, 10.0]])  # others 6.5, 9, 10
    assert cs.stand_out_terms(low)[0] == pytest.approx(-(1.0 - 9.0) - 3 * -(8.0 - 10.0))
    # the odd source below the others: the same values (orientations flip with the data)
    assert cs.stand_out_terms(-m, k=3.0) == pytest.approx(out)
    assert cs.stand_out_terms(m[:1]).tolist() != cs.stand_out_terms(m[:1]).tolist()  # NaN


def test_comparable_terms_by_hand() -> None:
    m = np.array([[9.0, 4.0, 3.5], [6.0, 2.0, 2.5]])
    assert cs.comparable_terms(m, ratio=3.0) == pytest.approx([3.5 - 3.0, 2.0 - 2.0])


def test_weighted_ranks_are_scipys_on_the_expanded_sample() -> None:
    from xfer.analysis.claim_tests import _weighted_ranks, _weighted_rho

    values = np.array([3.0, 1.0, 3.0, 2.0, 5.0])
    weights = np.array([[1, 2, 0, 3, 1], [2, 1, 1, 1, 0]], dtype=float)
    ranks = _weighted_ranks(values, weights)
    for row, w in zip(ranks, weights.astype(int), strict=True):
        expanded = stats.rankdata(np.repeat(values, w))
        assert np.repeat(row, w) == pytest.approx(expanded)
    # a resample where one variable is constant, or no cell is drawn, has no ρ
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # degenerate resamples are expected: no warning
        rho = _weighted_rho(values, np.arange(5.0), np.array([[0, 0, 2, 0, 0], [0.0] * 5,
                                                             [1, 1, 1, 1, 1]]))
    assert np.isnan(rho[0]) and np.isnan(rho[1])
    assert rho[2] == pytest.approx(stats.spearmanr(values, np.arange(5.0))[0])


def test_undecided_keeps_its_reason() -> None:
    from xfer.analysis.claim_tests import undecided

    d = undecided("no pairs")
    assert (d.verdict, d.reach) == (INCONCLUSIVE, "no pairs") and math.isnan(d.estimate)
    assert d.interval_text() == "nan [nan, nan]"


def test_decisions_without_an_interval_and_their_notes() -> None:
    for d in (ct.exceeds(0.0, math.nan, -1.0), ct.exceeds(0.0, 1.0, math.nan),
              ct.within(0.0, math.nan, 0.1, lo=0.0, hi=0.3)):
        assert (d.verdict, d.reach) == (INCONCLUSIVE, "no interval (too few values)")
    assert ct.exceeds(0.5, -1.0, 0.5).verdict == INCONCLUSIVE  # default margin 0: not refuted
    assert ct.within(0.2, 0.15, 0.25, lo=0.0, hi=0.3).reach == ""  # narrow: all reachable
    d = ct.within(0.2, 0.05, 0.35, lo=0.1, hi=0.3)  # width 0.3 against a region of 0.2
    assert "width 0.3 is not below the region's 0.2" in d.reach
    assert "width 0.314 is not" in ct.within(0.2, 0.0, 0.314159, lo=0.1, hi=0.3).reach
    assert ct.Decision(1.23456, -0.5, 2.0, SUPPORTED).interval_text() == "1.23 [-0.5, 2]"
    assert ct.Decision(1.23456, -0.5432, 2.345, SUPPORTED).interval_text(2) == "1.2 [-0.54, 2.3]"
    assert "out of reach" in ct.within(0.15, 0.0, 0.3, lo=0.0, hi=0.3).reach  # width = region


def test_power_law_terms_ignore_scratch_rows_self_pairs_and_non_positive_values() -> None:
    import pandas as pd

    rows = [(s, t, b, seed, 1000.0 * (b / 1500) ** 0.5 * (1 + 0.1 * seed), "exact")
            for s, t in (("en", "de"), ("ru", "de")) for b in (1500, 4000, 12000)
            for seed in (0, 1)]
    table = pd.DataFrame(rows, columns=["init", "target", "budget", "seed", "d_t", "bound"])
    extra = pd.DataFrame([("scratch", "de", 96000, 0, 5.0, "exact"),
                          ("de", "de", 500, 0, 7.0, "exact"),
                          ("en", "de", 4000, 1, 0.0, "exact"),  # D_T 0: no log
                          ("en", "de", 4000, 1, 0.5, "exact")],  # half a byte: kept
                         columns=table.columns)
    terms, used, left = cs.power_law_terms(pd.concat([table, extra], ignore_index=True))
    assert (used, left) == (13, 1)
    assert cs.budget_span(pd.concat([table, extra])) == (3, 8.0)
    clean, _, _ = cs.power_law_terms(table)
    assert clean.loc[0, "alpha"] == pytest.approx(0.5) and clean.loc[0, "bend"] == pytest.approx(0)
    no_seed, _, _ = cs.power_law_terms(table[table.seed == 0].drop(columns="seed"))
    assert no_seed["seed"].tolist() == [0] and no_seed.loc[0, "alpha"] == pytest.approx(0.5)
    assert cs.budget_span(table.assign(budget=table.budget.replace(1500, 0)))[1] != \
        cs.budget_span(table.assign(budget=table.budget.replace(1500, 0)))[1]  # NaN: no span
    assert cs.budget_span(table.replace({"budget": {1500: 1, 4000: 2, 12000: 8}})) == (3, 8.0)
