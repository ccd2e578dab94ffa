"""The correlation claims (contamination only weak, typology uncorrelated): each verdict follows
its two-way bootstrap interval at the Bonferroni level, strong correlations refute, constant or
missing columns and too few values are inconclusive with their reason."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.claims_util import claims_by_name as _table
from tests.claims_util import drawn_corr as _corr
from tests.claims_util import paper_like as _paper_like
from tests.claims_util import per_seed_rows as _rows
from xfer.analysis import claims
from xfer.analysis.claim_tests import twoway_rho_bounds
from xfer.analysis.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED


def test_correlation_claims_follow_the_bonferroni_interval() -> None:
    corr = _corr(0.2)
    table = _table(_rows(_paper_like()), corr)
    family = 2 + 3
    for variable, column in claims.CONTAMINATION.items():
        rho, low, high = twoway_rho_bounds(corr["d_t"], corr[column], corr["init"],
                                           corr["target"], alpha=0.05 / family)
        row = table.loc[f"D_T correlates only weakly with {variable}"]
        assert row["interval"] == f"{rho:.3g} [{low:.3g}, {high:.3g}]"
        expected = SUPPORTED if 0 < low and high < 0.3 else \
            NOT_SUPPORTED if high <= 0 or low >= 0.3 else INCONCLUSIVE
        assert row["verdict"] == expected
    # 28 pairs of 4 sources cannot put ρ inside a 0.3-wide region: the row says so
    assert "out of reach" in table.loc["D_T correlates only weakly with contamination on source",
                                       "note"]


def test_strong_correlations_refute() -> None:
    corr = _corr(0.2)
    y = corr["d_t"].to_numpy()
    for column in [*claims.CONTAMINATION.values(), "distance_syntactic"]:
        corr[column] = y  # a perfect rank correlation
    table = _table(_rows(_paper_like()), corr)
    assert table.loc["D_T correlates only weakly with contamination on source",
                     "verdict"] == NOT_SUPPORTED
    assert table.loc["typological distances do not correlate with D_T",
                     "verdict"] == NOT_SUPPORTED


def test_correlation_guards_and_distance_names() -> None:
    from xfer.analysis import claim_verdicts as cv

    corr = _corr(0.1)
    for frame in (corr.drop(columns="d_t"), corr.iloc[0:0], None):
        assert cv.correlation(frame, "contamination_on_source", 0.0, 0.3).reach == \
            "no such column"
    constant = corr.assign(contamination_on_target=0.0)  # no target text read as a source
    constant.loc[0, "contamination_on_target"] = np.nan
    decision = cv.correlation(constant, "contamination_on_target", 0.0, 0.3)
    assert decision.verdict == INCONCLUSIVE and math.isnan(decision.estimate)
    assert decision.reach == "contamination_on_target is 0 in every cell: no ρ"
    two = constant.assign(contamination_on_target=np.arange(len(corr)) % 2 * 0.5)
    assert "every cell" not in cv.correlation(two, "contamination_on_target", 0.0, 0.3).reach
    row = claims.typology_claim(corr)
    assert "syntactic" in row["ours"] and "distance_" not in row["ours"]
    corr["distance_genetic"] = -corr["d_t"] + 0.01 * np.arange(len(corr))  # ρ near -1
    decision, found = cv.no_typology(corr)
    rhos = {k: stats.spearmanr(corr["d_t"], corr[f"distance_{k}"])[0] for k in found}
    assert decision.estimate == pytest.approx(rhos["genetic"]) and rhos["genetic"] < -0.9
    assert decision.low == pytest.approx(min(d.low for d in found.values()))
    assert "out of reach" in decision.reach  # the other distances' intervals are wide


def test_no_typology_is_supported_with_many_languages() -> None:
    from xfer.analysis import claim_verdicts as cv

    rng = np.random.default_rng(5)
    sources, targets = [f"s{i}" for i in range(20)], [f"t{j}" for j in range(50)]
    cells = pd.DataFrame([(s, t) for s in sources for t in targets], columns=["init", "target"])
    cells["d_t"] = rng.normal(size=len(cells))
    for kind in ("syntactic", "genetic"):
        cells[f"distance_{kind}"] = rng.normal(size=len(cells))  # independent of D_T
    decision, found = cv.no_typology(cells)
    assert set(found) == {"syntactic", "genetic"}
    assert decision.verdict == SUPPORTED and decision.reach == "", decision
    sparse = cells.assign(distance_syntactic=np.nan, distance_genetic=np.nan)
    sparse.loc[:2, ["distance_syntactic", "distance_genetic"]] = 1.0  # 3 values: no ρ
    decision, _ = cv.no_typology(sparse)
    assert decision.verdict == INCONCLUSIVE and math.isnan(decision.estimate)
