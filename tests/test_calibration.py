"""Fast versions of bench/calibration.py: the report's intervals cover the generating process's
true D_T wherever the studies put cells, and its tests hold their level, on simulated studies
that go through compute_transfer (seeded: the same numbers every run)."""

from __future__ import annotations

import numpy as np
import pytest

from xfer.analysis import calibration as cal
from xfer.analysis.transfer import LOWER, UPPER, compute_transfer, summarise_cells


def test_true_d_t_inverts_the_true_curve() -> None:
    """By hand: the curve at 5K is 1.5 + 12.9·5^−0.68; a finetune at exactly that perplexity
    transferred nothing, one at the 20K point's perplexity 15K bytes."""
    at_5k = 1.5 + 12.9 * 5 ** -0.68
    assert cal.true_curve(np.array([5e3]))[0] == pytest.approx(at_5k)
    assert cal.true_d_t(at_5k) == pytest.approx(0, abs=1e-6)
    assert cal.true_d_t(1.5 + 12.9 * 20 ** -0.68) == pytest.approx(15e3)
    assert cal.true_d_t(1.4) == np.inf


def test_a_simulated_study_is_a_results_table_with_a_curve_per_seed() -> None:
    table = cal.simulate_results(np.random.default_rng(0), {"a": 4.5, "b": 6.0}, 3)
    assert len(table) == 3 * (len(cal.BUDGETS) + 2)
    result = compute_transfer(table)
    assert not result.errors
    assert (result.rows.groupby(["init", "seed"]).size() > 0).all()


def test_t_interval_covers_the_true_d_t_in_every_band_the_studies_use() -> None:
    """5 seeds, 200 studies, 400 cells per band: from D_T 15K down to below 0 (the controls'
    D_T ≈ 0 included), coverage of the true D_T within 95% ± 2.5 and the bias small beside the
    spread (Eq. 1 in log bytes against log perplexity). The paper's linear Eq. 1 fails it
    (bench: about 19% where D_T < 0)."""
    table = cal.interval_coverage(5, 200, bands=cal.STUDY_BANDS, seed=5).set_index("band")
    assert (table["exact"] > 300).all(), table
    assert table["coverage"].between(0.925, 0.975).all(), table.to_string()
    assert (table["bias"].abs() < 200).all(), table.to_string()


def test_own_scratch_curve_matters_when_the_scratch_side_is_noisy() -> None:
    """Scratch noise 0.06, finetune noise 0.01 (log perplexity): each seed's finetune must meet
    its own seed's curve, or the interval misses the scratch side's noise (mapping every seed
    through the mean curve covers about 40% here)."""
    table = cal.interval_coverage(5, 120, bands=cal.STUDY_BANDS[1:3], seed=7,
                                  sigma_scratch=0.06, sigma_finetune=0.01)
    assert table["coverage"].between(0.92, 0.98).all(), table.to_string()


def test_bound_cells_are_marked_and_their_bound_holds() -> None:
    """Finetunes beyond the curve's ends (better than its 20K point, worse than its 2K point):
    every cell is a bound of the right side, and the true D_T lies on the side it says."""
    table = cal.interval_coverage(3, 60, bands=(cal.BANDS[0], cal.BANDS[-1]),
                                  seed=2).set_index("band")
    assert (table["bound_cells"] >= 0.95 * table["cells"]).all(), table.to_string()
    assert (table["bound_coverage"] >= 0.95).all(), table.to_string()
    rows = compute_transfer(cal.simulate_results(np.random.default_rng(1), {"hi": 2.9, "lo": 10.5},
                                                 3)).rows
    cells = summarise_cells(rows).set_index("init")
    assert (cells.loc["hi", "bound"], cells.loc["lo", "bound"]) == (LOWER, UPPER)


def test_the_old_bootstrap_interval_over_3_seeds_undercovers() -> None:
    """The percentile bootstrap over 3 seeds is about their min-max: far below 95%."""

    def min_max(values: np.ndarray) -> tuple[float, float]:
        return float(np.min(values)), float(np.max(values))

    table = cal.interval_coverage(3, 100, bands=cal.STUDY_BANDS[1:3], seed=3, method=min_max)
    assert (table["coverage"] < 0.85).all(), table.to_string()


def test_verdict_tests_hold_their_level_under_the_null() -> None:
    """Every level (and the control) transfers the same; seed s of each meets seed s's scratch
    curve. Exact tests: at most 5% rejections, up to simulation error (150 studies; a test
    that treated the seeds' values as independent of their shared curve would reject more)."""
    rate_trend, rate_control = cal.verdict_level(5, 3, 150, seed=1)
    assert rate_trend <= 0.09 and rate_control <= 0.09, (rate_trend, rate_control)


def test_language_label_permutation_holds_its_level_in_the_papers_design() -> None:
    """Null data with source and target effects, 3 sources x 10 targets: permuting language
    labels rejects at 5% within [3%, 7%] of 1000 studies; permuting whole pairs does not."""
    rate = cal.correlation_level(1000, n_resamples=399, seed=0)
    assert 0.03 <= rate <= 0.07, rate
    assert cal.correlation_level(300, n_resamples=199, seed=1, permute="pairs") > 0.1
