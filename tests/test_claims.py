"""The paper's claims section on constructed per-seed rows: each verdict follows its declared test
(expected intervals computed here with scipy), the section is absent without the paper's
languages, degenerate tables never raise, claims.csv and the figures are written."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.claims_util import claims_by_name as _table
from tests.claims_util import drawn_corr as _corr
from tests.claims_util import paper_like as _paper_like
from tests.claims_util import per_seed_rows as _rows
from xfer.analysis import claims
from xfer.analysis.claims import (
    CLAIM_COLUMNS,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    claims_section,
    claims_table,
)
from xfer.analysis.premium import premium_of


def test_paper_pattern_is_supported_where_the_paper_is() -> None:
    table = _table(_rows(_paper_like()))
    for claim in ("D_T from distant sources is comparable for a target",
                  "one source stands out per target, the other two close",
                  "pt→es gets the most transfer into Spanish",
                  "transfer is not commutative (en↔ru)", "transfer is not commutative (en↔zh)",
                  "D_T = k·D_F^α (the power law's form)"):
        assert table.loc[claim, "verdict"] == SUPPORTED, claim
    # in English bytes the paper's own ru↔zh numbers differ by 15% of their mean: commutative
    assert table.loc["transfer is not commutative (ru↔zh)", "verdict"] == NOT_SUPPORTED
    # α 0.5 is outside (0.09, 0.36)
    assert table.loc["α near Hernandez et al.'s 0.18 (within 2×)", "verdict"] == NOT_SUPPORTED
    table = _table(_rows(_paper_like(), alpha=0.18))
    assert table.loc["α near Hernandez et al.'s 0.18 (within 2×)", "verdict"] == SUPPORTED


def test_comparable_interval_by_hand() -> None:
    dt = _paper_like()
    rows = _rows(dt, spread=0.05)
    small = rows[rows["budget"] == 1500]
    per_seed = []
    for seed in range(3):
        terms = []
        for t in ("ar", "de", "es", "fi", "id", "ja", "ko"):
            v = np.array([small[(small.init == s) & (small.target == t) & (small.seed == seed)]
                          ["d_t_mib"].item() for s in ("en", "ru", "zh")])
            level = np.mean([small[(small.init == s) & (small.target == t)]["d_t_mib"].mean()
                             for s in ("en", "ru", "zh")])
            terms.append((v.min() - v.max() / 3) / level)
        per_seed.append(np.mean(terms))
    x = np.array(per_seed)
    low, high = stats.t.interval(0.94, 2, loc=x.mean(), scale=stats.sem(x))  # 0.03 per side
    row = claims.comparable_claim(small)
    assert row["interval"] == f"{x.mean():.3g} [{low:.3g}, {high:.3g}]"
    assert row["verdict"] == (SUPPORTED if low > 0 else NOT_SUPPORTED if high < -0.2
                              else INCONCLUSIVE)
    assert "< -0.2 refutes" in row["test"]


def test_far_apart_sources_refute_comparable_and_equal_ones_stand_out() -> None:
    dt = _paper_like()
    for t in ("ar", "de", "es", "fi", "id", "ja", "ko"):
        dt.update({("en", t): 100.0, ("ru", t): 10.0, ("zh", t): 1.0})
    table = _table(_rows(dt))
    assert table.loc["D_T from distant sources is comparable for a target",
                     "verdict"] == NOT_SUPPORTED
    for t in ("ar", "de", "es", "fi", "id", "ja", "ko"):  # evenly spaced: no source stands out
        dt.update({("en", t): 30.0, ("ru", t): 20.0, ("zh", t): 10.0})
    assert _table(_rows(dt)).loc["one source stands out per target, the other two close",
                                 "verdict"] == NOT_SUPPORTED
    for t in ("ar", "de", "es", "fi", "id", "ja", "ko"):  # 1, 2, 4: the other two not close
        dt.update({("en", t): 40.0, ("ru", t): 20.0, ("zh", t): 10.0})
    assert _table(_rows(dt)).loc["one source stands out per target, the other two close",
                                 "verdict"] != SUPPORTED


def test_spanish_is_an_intersection_union_with_bonferroni_refutation() -> None:
    dt = _paper_like()
    small_spread = _rows(dt, spread=0.01)
    assert _table(small_spread).loc["pt→es gets the most transfer into Spanish",
                                    "verdict"] == SUPPORTED
    dt[("pt", "es")] = dt[("en", "es")]  # tied with en: not significantly above it
    assert _table(_rows(dt, spread=0.01)).loc["pt→es gets the most transfer into Spanish",
                                              "verdict"] == INCONCLUSIVE
    dt[("pt", "es")] = 0.5 * dt[("en", "es")]
    rows = _rows(dt, spread=0.01)
    assert _table(rows).loc["pt→es gets the most transfer into Spanish",
                            "verdict"] == NOT_SUPPORTED
    # the refutation is one-sided at α/3 (Bonferroni over en, ru, zh): an upper bound below 0 at
    # α but not at α/3 is inconclusive
    small = rows[rows["budget"] == 1500].copy()
    pt = small[(small.init == "pt")]["d_t_mib"].to_numpy()
    en = small[(small.init == "en") & (small.target == "es")]["d_t_mib"].to_numpy()
    d = pt - en
    sd = d.std(ddof=1) / math.sqrt(3)
    shift = -d.mean() - 0.5 * (stats.t.ppf(0.95, 2) + stats.t.ppf(1 - 0.05 / 3, 2)) * sd
    small.loc[small.init == "pt", "d_t_mib"] += shift  # upper bound now between the two levels
    d2 = small[small.init == "pt"]["d_t_mib"].to_numpy() - en
    assert d2.mean() + stats.t.ppf(0.95, 2) * sd < 0 < d2.mean() + stats.t.ppf(1 - 0.05 / 3, 2) * sd
    assert claims.spanish_claim(small)["verdict"] == INCONCLUSIVE


@pytest.mark.parametrize("ratio, verdict", [(2.0, SUPPORTED), (1.1, NOT_SUPPORTED),
                                            (1.0, NOT_SUPPORTED), (0.5, NOT_SUPPORTED)])
def test_commutativity_in_english_bytes_with_a_margin(ratio: float, verdict: str) -> None:
    dt = _paper_like()
    # en↔ru: the paper's larger direction in English bytes is ru→en; set it to ratio × en→ru
    dt[("en", "ru")] = 40.0 * premium_of("ru")
    dt[("ru", "en")] = 40.0 * ratio
    table = _table(_rows(dt, spread=0.02))
    assert table.loc["transfer is not commutative (en↔ru)", "verdict"] == verdict
    small = _rows(dt, spread=0.02).query("budget == 1500")
    x = small[(small.init == "ru") & (small.target == "en")]["d_t_en_mib"].to_numpy()
    y = small[(small.init == "en") & (small.target == "ru")]["d_t_en_mib"].to_numpy()
    ci = stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.90)
    level = np.abs(np.r_[x, y]).mean()
    assert table.loc["transfer is not commutative (en↔ru)", "interval"] == (
        f"{(x.mean() - y.mean()) / level:.3g} [{ci.low / level:.3g}, {ci.high / level:.3g}]")


def test_power_law_needs_the_budget_span() -> None:
    rows = _rows(_paper_like())
    narrow = rows[rows["budget"] < 12000]
    table = _table(narrow)
    assert table.loc["D_T = k·D_F^α (the power law's form)", "verdict"] == INCONCLUSIVE
    assert "cannot test it" in table.loc["D_T = k·D_F^α (the power law's form)", "note"]
    from xfer.analysis import claim_verdicts as cv

    assert cv.power_law_design(rows, 9, 1) == ""  # 10% left out: still decided
    assert "3 of 20 points" in cv.power_law_design(rows, 17, 3)
    assert "5 of 10 points" in cv.power_law_design(rows, 5, 5)
    assert cv.power_law_design(rows, 83, 1) == ""
    empty = cv.power_law(rows.iloc[0:0])[0]["alpha"]
    assert empty.verdict == INCONCLUSIVE and "cannot test it" in empty.reach
    three = rows.replace({"budget": {12000: 6000}})  # three budgets spanning only 4x
    assert "3 finetune budgets spanning 4×" in _table(three).loc[
        "D_T = k·D_F^α (the power law's form)", "note"]
    bent = rows.copy()
    bent.loc[bent.budget == 4000, ["d_t", "d_t_mib"]] *= 2.0  # far from a power law
    assert _table(bent).loc["D_T = k·D_F^α (the power law's form)", "verdict"] == NOT_SUPPORTED
    negative = rows.copy()
    negative.loc[negative.index[::5], "d_t"] = -1.0  # 20% of the points cannot be logged
    table = _table(negative)
    assert table.loc["α near Hernandez et al.'s 0.18 (within 2×)", "verdict"] == INCONCLUSIVE
    assert "biasing α up where" in table.loc["α near Hernandez et al.'s 0.18 (within 2×)", "note"]


def test_power_law_terms_against_a_dummy_regression() -> None:
    rows = _rows(_paper_like(), spread=0.1, alpha=0.3)
    rows.loc[rows.index[::7], "d_t"] *= 1.3
    rows.loc[(rows.budget == 4000) & (rows.init == "en"), "d_t"] *= 1.5  # a bend
    terms, used, left = claim_terms = claims.cs.power_law_terms(rows)
    assert (terms["bend"].abs() > 0.05).all()
    assert left == 0 and used == len(rows) and claim_terms
    for seed, g in rows.groupby("seed"):
        pairs = pd.get_dummies(g["init"] + g["target"]).to_numpy(float)
        x = np.log(g["budget"].to_numpy(float)) - np.log(np.sqrt(1500 * 12000))
        y = np.log(g["d_t"].to_numpy(float))
        alpha = np.linalg.lstsq(np.c_[pairs, x], y, rcond=None)[0][-1]
        gamma = np.linalg.lstsq(np.c_[pairs, x, x**2], y, rcond=None)[0][-1]
        got = terms.set_index("seed").loc[seed]
        assert got["alpha"] == pytest.approx(alpha)
        assert got["bend"] == pytest.approx(gamma * (np.log(8) / 2) ** 2)


def test_bounds_never_count() -> None:
    dt = _paper_like()
    rows = _rows(dt)
    for t in ("ar", "de", "es", "fi", "id", "ja", "ko"):
        rows.loc[rows.target == t, "bound"] = "lower"
    row = claims.comparable_claim(claims.smallest_rows(rows))
    assert row["verdict"] == INCONCLUSIVE and "left out" in row["note"]
    rows.loc[(rows.init == "ru") & (rows.target == "en") & (rows.seed == 2), "bound"] = "lower"
    row = claims.commutativity_claim(claims.smallest_rows(rows), "en", "ru")
    assert row["note"] == "1 bound(s) left out"  # ru→en seed 2: a bound, not a value


@pytest.mark.parametrize("mutate", [
    lambda r: r.iloc[0:0], lambda r: r.assign(d_t_mib=np.nan, d_t=np.nan),
    lambda r: r[r["seed"] == 0], lambda r: r.assign(bound="upper"),
    lambda r: r.assign(d_t_mib=0.0, d_t=0.0, d_t_en_mib=0.0),
    lambda r: r.drop(columns="d_t_en_mib"), lambda r: r[r["init"] == "en"]])
def test_degenerate_tables_never_raise(mutate) -> None:
    rows = mutate(_rows(_paper_like()))
    table = claims_table(rows, pd.DataFrame())
    assert list(table.columns) == CLAIM_COLUMNS
    assert set(table["verdict"]) <= {SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE}


def test_section_without_a_finite_d_t(tmp_path: Path) -> None:
    from xfer.analysis.powerlaw import fit_power_law

    rows = _rows(_paper_like()).assign(d_t_mib=np.nan, d_t=np.nan)
    text = claims_section(rows, pd.DataFrame(), None, fit_power_law(rows), tmp_path)
    assert "none has a finite D_T" in text
    assert set(pd.read_csv(tmp_path / "claims.csv")["verdict"]) == {INCONCLUSIVE}


def test_section_files_and_absence(tmp_path: Path) -> None:
    from xfer.analysis.powerlaw import fit_power_law

    rows = _rows(_paper_like())
    text = claims_section(rows, pd.DataFrame(), _corr(0.2), fit_power_law(rows), tmp_path)
    assert text is not None and "orders of magnitude" in text and "bench/claims.py" in text
    written = pd.read_csv(tmp_path / "claims.csv")
    assert list(written.columns) == CLAIM_COLUMNS and len(written) == 11
    for name in ("paper_dt_by_target.png", "paper_perplexity.png", "paper_alpha.png"):
        assert (tmp_path / name).stat().st_size > 1000 and f"({name})" in text
    generated = rows.replace({"en": "base", "ru": "lex25", "zh": "alien"})
    assert claims_section(generated, pd.DataFrame(), None, fit_power_law(generated),
                          tmp_path / "none") is None
    assert not (tmp_path / "none").exists()


def test_verdicts_do_not_depend_on_scale() -> None:
    """D_T of a few bytes (a tiny study's MiB are ~1e-3): the same verdicts as at the paper's."""
    tiny = {pair: value * 1e-4 for pair, value in _paper_like().items()}
    big, small = _table(_rows(_paper_like())), _table(_rows(tiny))
    assert big["verdict"].tolist() == small["verdict"].tolist()
    assert small.loc["pt→es gets the most transfer into Spanish", "verdict"] == SUPPORTED


def test_spanish_reports_the_closest_source() -> None:
    from xfer.analysis import claim_verdicts as cv

    dt = _paper_like()
    dt[("ru", "es")] = 160.0  # ru closest to pt (164.47), en at 121.14
    small = _rows(dt, spread=0.01).query("budget == 1500")
    d, closest = cv.spanish(small, ["en", "ru", "zh"])
    pt = small[small.init == "pt"]["d_t_mib"].to_numpy()
    ru = small[(small.init == "ru") & (small.target == "es")]["d_t_mib"].to_numpy()
    assert closest == "ru" and d.estimate == pytest.approx((pt - ru).mean())
    assert cv.spanish(small[small.init != "zh"], ["en", "ru", "zh"])[0].verdict == INCONCLUSIVE


def test_commutativity_needs_both_directions() -> None:
    from xfer.analysis import claim_verdicts as cv

    assert cv.commutativity(np.array([]), np.array([1.0, 2.0])).reach == "a direction is missing"
    assert cv.commutativity(np.array([1.0, 2.0]), np.array([])).reach == "a direction is missing"
    d = cv.commutativity(np.array([0.5, 0.52, 0.51]), np.array([0.2, 0.21, 0.2]))
    assert d.verdict == SUPPORTED  # a level below 1 MiB decides like any other


def test_paper_numbers_in_english_bytes() -> None:
    from xfer.analysis import claim_verdicts as cv

    shipped = {"en": 257386, "ru": 512640, "zh": 238057}  # premiums.json: FLORES-200 bytes
    assert cv.paper_en("en", "ru") == pytest.approx(75.64 * shipped["en"] / shipped["ru"], 1e-3)
    assert cv.paper_en("ru", "zh") == pytest.approx(26.18 * shipped["en"] / shipped["zh"], 1e-3)
    for a, b in (("en", "ru"), ("ru", "en")):
        assert cv.paper_order(a, b) == (("ru", "en"), ("en", "ru"))
    assert cv.paper_order("zh", "ru") == (("ru", "zh"), ("zh", "ru"))


def test_targets_enter_by_their_seeds() -> None:
    """Per target: every source needed, two seeds with exact values at least, seeds aligned by
    their number (a target missing seed 1 does not shift seed 2's value onto seed 1)."""
    from xfer.analysis import claim_stats as cs
    from xfer.analysis import claim_verdicts as cv

    rows = _rows(_paper_like(), spread=0.05).query("budget == 1500")
    rows = rows[~((rows.init == "zh") & (rows.target == "ar"))]  # ar lacks zh: not a target here
    rows.loc[(rows.target == "de") & (rows.seed == 1), "bound"] = "lower"  # de: seeds 0, 2
    rows.loc[(rows.target == "fi") & (rows.seed > 0), "bound"] = "upper"  # fi: one seed left
    rows.loc[(rows.target == "id") & (rows.init == "ru"), "bound"] = "upper"  # id: none left
    zero = (rows.target == "ko")
    rows.loc[zero, "d_t_mib"] = 0.0  # no level: left out of the mean, not divided by 0
    table, left = cs.per_target(rows, ("en", "ru", "zh"), cs.comparable_terms)
    assert list(table.columns) == ["de", "es", "ja"] and left == ["fi", "id"]
    assert table["de"].isna().tolist() == [False, True, False]
    by_hand = []
    for seed in range(3):
        terms = []
        for t in table.columns:
            pair = rows[(rows.target == t) & (rows.bound == "exact") & (rows.init != "pt")]
            if t == "de" and seed == 1:
                continue
            m = pair.pivot_table(index="seed", columns="init", values="d_t_mib")
            v = m.loc[seed, ["en", "ru", "zh"]].to_numpy()
            terms.append((v.min() - v.max() / 3) / np.abs(m.to_numpy()).mean())
        by_hand.append(np.mean(terms))
    assert cs.seed_means(table) == pytest.approx(by_hand)
    over = cv.comparable(rows)
    assert (over.targets, over.seeds, over.left_out) == (3, 3, ["fi", "id"])
    assert cv.comparable(rows[rows.init == "en"]).decision.reach == "no target with all sources"


def test_comparable_refutes_only_below_its_margin() -> None:
    """min − max/3 at -10% of the level: below 0 but above the -0.2 margin, so inconclusive; at
    -30%, not supported."""
    from xfer.analysis import claim_verdicts as cv

    for share, verdict in ((-0.1, INCONCLUSIVE), (-0.3, NOT_SUPPORTED)):
        dt = _paper_like()
        low = (8 * share + 4) / (3 - share)  # (low - 4/3) / ((8 + low) / 3) = share
        for t in ("ar", "de", "es", "fi", "id", "ja", "ko"):
            dt.update({("en", t): 4.0, ("ru", t): 4.0, ("zh", t): low})
        over = cv.comparable(_rows(dt, spread=0.0001).query("budget == 1500"))
        assert over.decision.estimate == pytest.approx(share, abs=2e-3)
        assert over.decision.verdict == verdict, (share, over.decision)


def test_stands_out_refutes_only_below_its_margin() -> None:
    from xfer.analysis import claim_verdicts as cv

    dt = _paper_like()
    c = (9 - 0.05 * 31.5) / 3.05  # (c - 3e) / ((31.5 + c) / 3) = -0.05 with e = 1
    for t in ("ar", "de", "es", "fi", "id", "ja", "ko"):
        dt.update({("en", t): 10.5 + c, ("ru", t): 11.0, ("zh", t): 10.0})
    over = cv.stands_out(_rows(dt, spread=0.0001).query("budget == 1500"))
    assert over.decision.estimate == pytest.approx(-0.05, abs=1e-3)
    assert -0.1 < over.decision.high < 0 and over.decision.verdict == INCONCLUSIVE
