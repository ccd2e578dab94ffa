"""Spearman ρ and its permutation p-value against scipy."""

from __future__ import annotations

import itertools

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
    # 7! = 5040 <= 9999 orderings: enumerated exactly (scipy's two-sample "pairings" counts
    # (7!)^2 and resamples instead), so p equals the exact share by itertools
    orders = np.array(list(itertools.permutations(range(7))))
    null = np.array([np.corrcoef(r, stats.rankdata(y))[0, 1] for r in stats.rankdata(x)[orders]])
    tol = 1e-12
    exact = 2 * min((null >= c.rho - tol).mean(), (null <= c.rho + tol).mean())
    assert c.p == pytest.approx(exact)


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


def _three_pairs() -> pd.DataFrame:
    """3 (source, target) pairs x 3 budgets: at every budget D_T falls with the distance."""
    return pd.DataFrame({
        "init": ["en", "en", "ru"] * 3, "target": ["de", "fi", "de"] * 3,
        "budget": np.repeat([1000, 2000, 4000], 3), "distance": [0.1, 0.2, 0.3] * 3,
        "d_t": [300, 200, 100, 330, 230, 130, 360, 260, 160.0]})


def test_block_permutation_moves_whole_pairs():
    frame = _three_pairs()
    blocks = (frame["init"] + frame["target"]).to_numpy()
    pairs = spearman(frame["distance"], frame["d_t"], labels=[blocks], slots=frame["budget"])
    cells = spearman(frame["distance"], frame["d_t"])
    assert pairs.n == cells.n == 9 and pairs.n_pairs == 3 and cells.n_pairs == 9
    assert pairs.rho == pytest.approx(cells.rho) == pytest.approx(
        stats.spearmanr(frame["distance"], frame["d_t"]).statistic)
    # only 3! = 6 orderings of the pairs exist: the two-sided p cannot go below 2/6
    assert pairs.p >= 1 / 6 and pairs.p == pytest.approx(1 / 3)
    assert cells.p < 0.01  # shuffling single cells pretends there are 9! orderings
    table = correlation_table(frame, {"distance": "distance"}, labels=None)
    assert table.loc[0, "n_pairs"] == 9 and table.loc[0, "p"] == pytest.approx(cells.p)


def test_language_labels_are_permuted_independently():
    """2 sources x 2 targets: only 2! x 2! = 4 relabellings exist, so p >= 1/4 however
    strong ρ looks over the 12 cells; the table permutes (init, target) by default."""
    frame = _three_pairs()
    extra = frame[frame["init"] == "ru"].assign(target="fi", distance=0.4,
                                                d_t=lambda f: f["d_t"] - 50)
    frame = pd.concat([frame, extra], ignore_index=True)
    c = spearman(frame["distance"], frame["d_t"], labels=[frame["init"], frame["target"]],
                 slots=frame["budget"])
    assert c.n == 12 and c.n_pairs == 4 and c.p >= 0.25
    table = correlation_table(frame, {"distance": "distance"})
    assert table.loc[0, "n_pairs"] == 4 and table.loc[0, "p"] == pytest.approx(c.p)


def test_block_permutation_with_a_missing_cell_and_many_pairs_is_seeded():
    rng = np.random.default_rng(0)
    n_pairs, budgets = 9, [1, 2, 3]  # 9! > 9999: resampled, not enumerated
    frame = pd.DataFrame({"pair": np.repeat(np.arange(n_pairs), 3),
                          "budget": budgets * n_pairs,
                          "x": np.repeat(rng.normal(size=n_pairs), 3)})
    frame["y"] = frame["x"] + rng.normal(scale=0.5, size=len(frame))
    frame = frame.drop(index=4)  # pair 1 lacks budget 2
    a, b = (spearman(frame["x"], frame["y"], labels=[frame["pair"]], slots=frame["budget"],
                     n_resamples=2000, seed=5) for _ in range(2))
    assert a == b and a.n == 26 and a.n_pairs == 9 and 0 < a.p <= 1
    assert a.rho == pytest.approx(stats.spearmanr(frame["x"], frame["y"]).statistic)
