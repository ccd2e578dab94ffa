"""The transfer power law D_T = k·(D_F)^α fitted per seed, pooled with fixed effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xfer.analysis.calibration import alpha_coverage
from xfer.analysis.powerlaw import (
    FIT_COLUMNS,
    K_UNIT,
    fit_power_law,
    log_fit,
    powerlaw_markdown,
    within_slope,
)

TRUE = {"en": (50.0, 0.4), "ru": (2000.0, 0.18)}  # source -> (k, alpha)
BUDGETS = [6e6, 19e6, 60e6, 189e6, 600e6]


def _rows(noise: float = 0.05, seeds: int = 3) -> pd.DataFrame:
    """Per-seed transfer rows of two sources into three targets, plus a bound, a D_T <= 0 and a
    scratch row."""
    rng = np.random.default_rng(0)
    rows = []
    for source, (k, alpha) in TRUE.items():
        for t, target in enumerate(("de", "fi", "ja")):
            for b in BUDGETS:
                for s in range(seeds):
                    rows.append({"init": source, "target": target, "budget": int(b), "seed": s,
                                 "d_t": (t + 1) * k * b**alpha * np.exp(rng.normal(0, noise)),
                                 "bound": "exact"})
    rows += [{"init": "en", "target": "de", "budget": 6_000_000_000, "seed": 0, "d_t": 1e15,
              "bound": "lower"},  # a bound: left out
             {"init": "en", "target": "fi", "budget": 6_000_000_000, "seed": 0, "d_t": -5.0,
              "bound": "exact"},  # D_T <= 0: no log, left out
             {"init": "scratch", "target": "de", "budget": 6_000_000, "seed": 0, "d_t": 10.0,
              "bound": "exact"}]
    return pd.DataFrame(rows)


def test_log_fit_is_exact_on_a_noiseless_power_law():
    d_f = np.array(BUDGETS)
    k, alpha = log_fit(d_f, 3.0 * d_f**0.25)
    assert alpha == pytest.approx(0.25) and k == pytest.approx(3.0)


def test_fixed_effects_keep_targets_with_other_budgets_from_bending_alpha():
    """One target at four budgets, another at two and ten times higher, both α = 0.3: one
    shared intercept bends the slope (the issue's -0.35), one intercept per target does not."""
    d_f = np.array([1e6, 2e6, 4e6, 8e6, 1e6, 2e6]) * np.array([1, 1, 1, 1, 10, 10])
    d_t = np.array([1, 1, 1, 1, 0.01, 0.01]) * d_f**0.3
    groups = np.array(["a"] * 4 + ["b"] * 2)
    assert log_fit(d_f, d_t)[1] < 0
    assert within_slope(d_f, d_t, groups) == pytest.approx(0.3)


def test_fit_recovers_alpha_per_pair_and_pooled_with_counts():
    fit = fit_power_law(_rows())
    assert list(fit.columns) == FIT_COLUMNS and (fit["k_unit"] == K_UNIT).all()
    fit = fit.set_index(["source", "target"])
    for source, (k, alpha) in TRUE.items():
        pooled = fit.loc[(source, "all")]
        assert pooled.fixed_effects == "target" and np.isnan(pooled.k)
        assert pooled.alpha == pytest.approx(alpha, abs=0.03) and pooled.seeds == 3
        assert pooled.alpha_ci_low < pooled.alpha < pooled.alpha_ci_high
        assert 0 < pooled.alpha_ci_high - pooled.alpha_ci_low < 0.1
        pair = fit.loc[(source, "de")]
        assert pair.points == 15 and np.log(pair.k) == pytest.approx(np.log(k), abs=0.6)
    assert fit.loc[("en", "de"), "left_out_bound"] == 1
    assert fit.loc[("en", "fi"), "left_out_nonpositive"] == 1
    assert fit.loc[("en", "all"), "left_out_bound"] == 1
    assert fit.loc[("all", "all"), "fixed_effects"] == "pair"
    assert "scratch" not in fit.index.get_level_values("source")
    text = powerlaw_markdown(fit.reset_index(), _rows())
    assert "Hernandez" in text and K_UNIT in text and "| en | all | target |" in text


def test_one_budget_gives_a_one_line_section():
    one = _rows()[lambda f: f["budget"] == int(BUDGETS[0])]
    fit = fit_power_law(one)
    assert fit.empty
    assert powerlaw_markdown(fit, one).startswith("Not fitted: the study finetunes at 1 budget")


def test_alpha_interval_covers_in_simulation():
    """Fast version of bench/calibration.py part 4: 600 simulated pairs per seed count."""
    for seeds in (3, 5):
        assert 0.93 <= alpha_coverage(seeds, 600, seed=seeds) <= 0.97
        assert 0.93 <= alpha_coverage(seeds, 600, seed=seeds, pooled=True) <= 0.97
