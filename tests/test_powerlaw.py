"""The transfer power law D_T = k·(D_F)^α fitted on crafted cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xfer.analysis.powerlaw import bootstrap_intervals, fit_power_law, log_fit, powerlaw_markdown

TRUE = {"en": (50.0, 0.4), "ru": (2000.0, 0.18)}  # source -> (k, alpha)
BUDGETS = [6e6, 19e6, 60e6, 189e6, 600e6]


def _cells(noise: float = 0.05, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for source, (k, alpha) in TRUE.items():
        for target in ("de", "fi", "ja"):
            for b in BUDGETS:
                rows.append({"init": source, "target": target, "budget": int(b),
                             "d_t": k * b**alpha * np.exp(rng.normal(scale=noise)),
                             "bound": "exact"})
    rows += [{"init": "en", "target": "de", "budget": 6_000_000_000, "d_t": 1e15,
              "bound": "lower"},  # a bound: left out
             {"init": "en", "target": "fi", "budget": 6_000_000_000, "d_t": -5.0,
              "bound": "exact"},  # D_T <= 0: no log, left out
             {"init": "scratch", "target": "de", "budget": 6_000_000, "d_t": 10.0,
              "bound": "exact"}]
    return pd.DataFrame(rows)


def test_log_fit_is_exact_on_a_noiseless_power_law():
    d_f = np.array(BUDGETS)
    k, alpha = log_fit(d_f, 3.0 * d_f**0.25)
    assert alpha == pytest.approx(0.25) and k == pytest.approx(3.0)


def test_fit_recovers_k_and_alpha_with_intervals():
    fit = fit_power_law(_cells()).set_index(["source", "target"])
    assert list(fit.columns[:6]) == ["k", "alpha", "alpha_ci_low", "alpha_ci_high", "n",
                                     "k_ci_low"]
    for source, (k, alpha) in TRUE.items():
        pooled = fit.loc[(source, "all")]
        assert pooled.n == 15
        assert pooled.alpha == pytest.approx(alpha, abs=0.03)
        assert np.log(pooled.k) == pytest.approx(np.log(k), abs=0.6)
        assert pooled.alpha_ci_low < pooled.alpha < pooled.alpha_ci_high
        assert pooled.k_ci_low < pooled.k < pooled.k_ci_high
        width = pooled.alpha_ci_high - pooled.alpha_ci_low  # 5% noise: a narrow interval
        assert 0 < width < 0.1 and abs(pooled.alpha - alpha) < 1.5 * width
        assert fit.loc[(source, "de")].n == 5  # the bound and D_T <= 0 cells are not used
    assert "scratch" not in fit.index.get_level_values("source")
    text = powerlaw_markdown(fit.reset_index())
    assert "Hernandez" in text and f"en: α = {fit.loc[('en', 'all')].alpha:.2f} [" in text
    assert "Interval above 0.18: en;" in text


def test_too_few_cells_give_no_interval_and_one_budget_no_fit():
    d_f = np.array([1e6, 2e6])
    assert all(np.isnan(bootstrap_intervals(d_f, d_f**0.5)))
    one = _cells()[lambda f: f["budget"] == int(BUDGETS[0])]
    assert fit_power_law(one).empty
