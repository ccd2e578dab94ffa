"""Seed intervals of D_T and the ground-truth verdicts, on crafted tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xfer.analysis import ground_truth
from xfer.analysis.analyse import analyse
from xfer.analysis.ground_truth import NOT_RECOVERED, RECOVERED, Truth
from xfer.analysis.transfer import compute_transfer, seed_interval, summarise_cells
from xfer.data.units import MIB

ZERO = {"content": 0.0, "lexicon": 0.0, "script": 0.0, "grammar": 0.0}
TRUTH = Truth("base", {
    "lex25": {**ZERO, "lexicon": 0.25}, "lex50": {**ZERO, "lexicon": 0.5},
    "lex100": {**ZERO, "lexicon": 1.0}, "twin": {**ZERO, "script": 1.0},
    "half": {**ZERO, "script": 0.5}, "mixed": {**ZERO, "script": 1.0, "grammar": 1.0},
    "alien": dict.fromkeys(ZERO, 1.0)})


def crafted_results() -> pd.DataFrame:
    """base's scratch curve 4.0 at 1 kB, 2.0 at 3 kB (every seed); one source at 1 kB with
    finetuned perplexities 3.0, 2.5 and 3.5: D_E 2000, 2500, 1500 bytes, D_T 1000, 1500, 500."""
    rows = [{"init": "scratch", "target": "base", "budget": b, "seed": s, "perplexity": p}
            for s in range(3) for b, p in ((1000, 4.0), (3000, 2.0))]
    rows += [{"init": "lex25", "target": "base", "budget": 1000, "seed": s, "perplexity": p}
             for s, p in enumerate((3.0, 2.5, 3.5))]
    return pd.DataFrame(rows)


def test_bootstrap_columns_on_a_crafted_table() -> None:
    rows = compute_transfer(crafted_results()).rows
    ft = rows[rows["init"] == "lex25"]
    assert ft["d_t"].tolist() == pytest.approx([1000, 1500, 500])
    values = (ft["d_t"] / MIB).to_numpy()
    expected = stats.bootstrap((values,), np.mean, confidence_level=0.95, method="percentile",
                               n_resamples=2000, rng=np.random.default_rng(0))
    low, high = ft["d_t_mib_ci_low"].unique(), ft["d_t_mib_ci_high"].unique()
    assert len(low) == len(high) == 1  # the cell's interval on each of its rows
    assert low[0] == pytest.approx(expected.confidence_interval.low)
    assert high[0] == pytest.approx(expected.confidence_interval.high)
    assert 500 / MIB <= low[0] < 1000 / MIB < high[0] <= 1500 / MIB
    cells = summarise_cells(rows)
    cell = cells[cells["init"] == "lex25"].iloc[0]
    assert (cell["d_t_mib_ci_low"], cell["d_t_mib_ci_high"]) == pytest.approx((low[0], high[0]))
    scratch = cells[cells["init"] == "scratch"]  # equal values: the interval is the point
    assert (scratch["d_t_mib_ci_low"] == scratch["d_t_mib"]).all()


def test_seed_interval_needs_two_seeds() -> None:
    assert all(np.isnan(seed_interval([0.3])))
    assert all(np.isnan(seed_interval([])))
    assert seed_interval([2.0, 2.0, 2.0]) == (2.0, 2.0)
    low, high = seed_interval([1.0, 2.0, 3.0, 4.0])
    assert 1.0 <= low < 2.5 < high <= 4.0
    assert seed_interval([1.0, 2.0, 3.0, 4.0]) == (low, high)  # seeded


def seed_rows(dts: dict[str, list[float]], budget: int = 5000) -> pd.DataFrame:
    """Per-seed transfer rows into base with the given D_T values (MiB)."""
    rows = [{"init": src, "target": "base", "budget": budget, "seed": s, "perplexity": 3.0,
             "scratch_perplexity": 3.0, "d_e": budget + v * MIB, "d_t": v * MIB,
             "d_t_mib": v, "bound": "exact"}
            for src, values in dts.items() for s, v in enumerate(values)]
    return pd.DataFrame(rows)


def judge(dts: dict[str, list[float]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = seed_rows(dts)
    table = ground_truth.truth_table(summarise_cells(rows), TRUTH)
    return table, ground_truth.verdicts(table, rows, TRUTH).set_index("axis")


PASSING = {"lex25": [0.30, 0.32, 0.31], "lex50": [0.20, 0.22, 0.19],
           "lex100": [0.10, 0.12, 0.11], "half": [0.15, 0.16, 0.14], "twin": [0.08, 0.09, 0.1],
           "mixed": [0.5, 0.5, 0.5], "alien": [0.01, 0.02, 0.0]}


def test_verdicts_on_a_table_that_recovers_every_axis() -> None:
    table, verdict = judge(PASSING)
    assert list(table.columns) == ground_truth.TRUTH_COLUMNS
    assert set(table["source"]) == set(PASSING) - {"mixed"}  # two axes: on no axis
    assert set(table["axis"]) == {"lexicon", "script", "control"}
    assert (table["seeds"] == 3).all() and (table["ci_low"] <= table["d_t_mib"]).all()
    assert list(verdict.index) == ["lexicon", "script"]
    assert (verdict["verdict"] == RECOVERED).all()
    assert verdict.loc["lexicon", "rho"] < -0.9 and verdict.loc["lexicon", "p"] < 0.01
    assert verdict.loc["lexicon", "levels"] == 3
    assert verdict.loc["lexicon", "resolved_steps"] == 2  # the seeds' intervals do not overlap


def test_a_fall_inside_overlapping_intervals_is_counted_unresolved() -> None:
    """lex50 just below lex25 with the seeds overlapping: D_T still falls (recovered by the
    means), but only one of the two steps is beyond the intervals, and the report says so."""
    _, verdict = judge({**PASSING, "lex50": [0.28, 0.33, 0.30]})
    assert verdict.loc["lexicon", "verdict"] == RECOVERED
    assert verdict.loc["lexicon", "resolved_steps"] == 1
    line = [v for v in ground_truth.verdict_lines(verdict.reset_index()) if "lexicon" in v][0]
    assert "D_T falls: yes (1 of 2 steps beyond the seeds' intervals)" in line


def test_verdicts_on_tables_that_fail() -> None:
    # the control is not the lowest source: no axis is recovered
    _, verdict = judge({**PASSING, "alien": [0.2, 0.2, 0.2]})
    assert (verdict["verdict"] == NOT_RECOVERED).all()
    assert not verdict["control_lowest"].any() and verdict["falls"].all()
    # lex50 above lex25: the lexicon does not fall; the script axis still does
    _, verdict = judge({**PASSING, "lex50": [0.35, 0.36, 0.34]})
    assert verdict.loc["lexicon", "verdict"] == NOT_RECOVERED
    assert not verdict.loc["lexicon", "falls"] and verdict.loc["lexicon", "control_lowest"]
    assert verdict.loc["script", "verdict"] == RECOVERED
    # no control in the study: nothing can be lowest
    _, verdict = judge({k: v for k, v in PASSING.items() if k != "alien"})
    assert (verdict["verdict"] == NOT_RECOVERED).all()


def test_analyse_writes_the_ground_truth_section(tmp_path) -> None:
    results = crafted_results()
    extra = [{"init": src, "target": "base", "budget": 1000, "seed": s, "perplexity": p + d}
             for src, d in (("lex100", 0.2), ("alien", 0.4))
             for s, p in enumerate((3.0, 2.5, 3.5))]
    results = pd.concat([results, pd.DataFrame(extra)], ignore_index=True)
    report = analyse(results, tmp_path, truth=TRUTH)
    text = report.read_text(encoding="utf-8")
    assert "## Ground truth" in text and "**recovered**" in text
    table = pd.read_csv(tmp_path / "ground_truth.csv")
    assert list(table.columns) == ground_truth.TRUTH_COLUMNS
    assert table.set_index("source").loc["lex25", "d_t_mib"] > \
        table.set_index("source").loc["lex100", "d_t_mib"]
    transfer = pd.read_csv(tmp_path / "transfer.csv")
    assert {"d_t_mib_ci_low", "d_t_mib_ci_high"} <= set(transfer.columns)
    corr = pd.read_csv(tmp_path / "correlations.csv")
    corr = corr[(corr["value"] == "d_t") & (corr["budget"] == "all")].set_index("variable")
    assert corr.loc["lexicon divergence (declared)", "n"] == 3  # cells into base
    assert corr.loc["lexicon divergence (declared)", "rho"] < 0
