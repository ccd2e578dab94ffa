"""Fast versions of bench/calibration.py: the report's intervals cover what they say and its
tests hold their level, on simulated data (seeded: the same numbers every run)."""

from __future__ import annotations

from xfer.analysis import calibration as cal


def test_t_interval_of_mean_d_t_covers_95_percent_at_3_and_5_seeds() -> None:
    """Pooled over where the default study's finetunes fall on the scratch curve (1400 cells
    per seed count; the bench prints each position: worst about 93%, next to a curve point)."""
    for seeds in (3, 5):
        coverage, per = cal.interval_coverage(seeds, 1400, truth_draws=5000, seed=seeds)
        assert 0.93 <= coverage <= 0.97, (seeds, coverage, per)


def test_the_old_bootstrap_interval_over_3_seeds_undercovers() -> None:
    """The percentile bootstrap over 3 seeds is about their min-max: far below 95%."""
    import numpy as np

    def min_max(values: np.ndarray) -> tuple[float, float]:
        return float(np.min(values)), float(np.max(values))

    coverage, _ = cal.interval_coverage(3, 700, truth_draws=5000, seed=3, method=min_max)
    assert coverage < 0.85


def test_verdict_tests_hold_their_level_under_the_null() -> None:
    """Every level (and the control) transfers the same; seed s of each shares seed s's scratch
    curve. Exact tests: at most 5% rejections, up to simulation error (1000 studies)."""
    rate_trend, rate_control = cal.verdict_level(5, 3, 1000, seed=1)
    assert rate_trend <= 0.065 and rate_control <= 0.065, (rate_trend, rate_control)


def test_language_label_permutation_holds_its_level_in_the_papers_design() -> None:
    """Null data with source and target effects, 3 sources x 10 targets: permuting language
    labels rejects at 5% within [3%, 7%] of 1000 studies; permuting whole pairs does not."""
    rate = cal.correlation_level(1000, n_resamples=399, seed=0)
    assert 0.03 <= rate <= 0.07, rate
    assert cal.correlation_level(300, n_resamples=199, seed=1, permute="pairs") > 0.1
