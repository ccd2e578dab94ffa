"""Spearman ρ and its permutation p-value against scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xfer.analysis.stats import correlation_table, spearman


def _scipy_permutation(x, y, n_resamples, seed):
    return stats.permutation_test(
        (x, y), lambda a, b: stats.spearmanr(a, b).statistic, permutation_type="pairings",
        n_resamples=n_resamples, alternative="two-sided", rng=np.random.default_rng(seed)).pvalue


def test_rho_and_exact_p_match_scipy():
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])  # with a tie
    y = np.array([2.0, 7.0, 1.0, 8.0, 2.0, 8.0, 1.0])
    c = spearman(x, y)
    assert c.n == 7
    assert c.rho == pytest.approx(stats.spearmanr(x, y).statistic)
    # 7! = 5040 < 9999 pairings: both enumerate all of them exactly
    assert c.p == pytest.approx(_scipy_permutation(x, y, 9999, 0))


def test_resampled_p_is_seeded_and_close_to_scipy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    y = 0.4 * x + rng.normal(size=40)
    a, b = spearman(x, y, n_resamples=2000, seed=3), spearman(x, y, n_resamples=2000, seed=3)
    assert a == b
    assert a.rho == pytest.approx(stats.spearmanr(x, y).statistic)
    assert a.p == pytest.approx(_scipy_permutation(x, y, 2000, 3), abs=0.02)
    assert a.p == pytest.approx(stats.spearmanr(x, y).pvalue, abs=0.03)


def test_degenerate_inputs_give_nan():
    assert np.isnan(spearman([1, 2], [2, 1]).rho)
    assert np.isnan(spearman([1, 1, 1, 1], [1, 2, 3, 4]).p)
    c = spearman([1, 2, np.nan, 4, 5], [1, 2, 3, np.nan, 6])
    assert c.n == 3 and c.rho == pytest.approx(1.0)


def test_correlation_table():
    frame = pd.DataFrame({"d_t": [1, 2, 3, 4, 5], "a": [5, 4, 3, 2, 1.5]})
    table = correlation_table(frame, {"A": "a", "missing": "b"})
    assert table["variable"].tolist() == ["A", "missing"]
    assert table.loc[0, "rho"] == pytest.approx(-1.0) and table.loc[0, "n"] == 5
    assert table.loc[1, "n"] == 0
