"""Seed intervals of D_T and the ground-truth verdicts with their declared tests, on crafted
tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xfer.analysis import ground_truth
from xfer.analysis.analyse import analyse
from xfer.analysis.ground_truth import CONTRADICTED, INCONCLUSIVE, RECOVERED, Truth
from xfer.analysis.intervals import t_interval
from xfer.analysis.transfer import compute_transfer, summarise_cells
from xfer.units import MIB

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


def test_t_interval_columns_on_a_crafted_table() -> None:
    rows = compute_transfer(crafted_results(), "linear").rows
    ft = rows[rows["init"] == "lex25"]
    assert ft["d_t"].tolist() == pytest.approx([1000, 1500, 500])
    values = (ft["d_t"] / MIB).to_numpy()
    half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)
    low, high = ft["d_t_mib_ci_low"].unique(), ft["d_t_mib_ci_high"].unique()
    assert len(low) == len(high) == 1  # the cell's interval on each of its rows
    assert (low[0], high[0]) == pytest.approx((values.mean() - half, values.mean() + half))
    assert low[0] < 500 / MIB and high[0] > 1500 / MIB  # wider than the seeds' min-max
    cells = summarise_cells(rows)
    cell = cells[cells["init"] == "lex25"].iloc[0]
    assert (cell["d_t_mib_ci_low"], cell["d_t_mib_ci_high"]) == pytest.approx((low[0], high[0]))
    logs = np.log([3.0, 2.5, 3.5])
    half = stats.t.ppf(0.975, 2) * logs.std(ddof=1) / np.sqrt(3)
    assert (cell["perplexity_ci_low"], cell["perplexity_ci_high"]) == pytest.approx(
        (np.exp(logs.mean() - half), np.exp(logs.mean() + half)))
    scratch = cells[cells["init"] == "scratch"]  # equal values: the interval is the point
    assert np.allclose(scratch["d_t_mib_ci_low"], scratch["d_t_mib"])


def test_each_seed_is_mapped_through_its_own_scratch_curve() -> None:
    """Seed 1's scratch curve is steeper: the same finetuned perplexity is worth less data
    there, and the table says which curve each finetune met."""
    frame = crafted_results()
    frame.loc[(frame["seed"] == 1) & (frame["budget"] == 3000), "perplexity"] = 1.0
    rows = compute_transfer(frame, "linear").rows
    ft = rows[rows["init"] == "lex25"].set_index("seed")
    assert ft.loc[0, "d_e"] == pytest.approx(2000)  # 3.0 on 4.0 -> 2.0
    assert ft.loc[1, "d_e"] == pytest.approx(1000 + 2000 * (4.0 - 2.5) / 3.0)  # 4.0 -> 1.0
    lone = pd.concat([frame, pd.DataFrame([{"init": "lex25", "target": "base", "budget": 1000,
                                            "seed": 7, "perplexity": 3.0}])])
    result = compute_transfer(lone, "linear")
    assert [p.line() for p in result.errors] == [
        "target base: seed(s) 7 have no scratch curve of their own (two or more scratch budgets "
        "of that seed); their finetunes are not analysed"]
    seven = result.rows[result.rows["seed"] == 7]
    assert seven["d_t"].isna().all() and (seven["bound"] == "").all()  # no mean-curve fallback
    mine = result.rows[(result.rows["init"] == "lex25") & (result.rows["seed"] != 7)]
    assert mine["d_t"].tolist() == pytest.approx([1000, 1000, 500])  # the others unchanged


def test_intervals_need_two_seeds() -> None:
    assert all(np.isnan(t_interval([0.3])))
    assert all(np.isnan(t_interval([])))
    assert t_interval([2.0, 2.0, 2.0]) == (2.0, 2.0)


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


SEEDS5 = {"lex25": [0.30, 0.32, 0.31, 0.33, 0.29], "lex50": [0.20, 0.22, 0.19, 0.21, 0.2],
          "lex100": [0.10, 0.12, 0.11, 0.13, 0.1], "half": [0.15, 0.16, 0.14, 0.17, 0.15],
          "twin": [0.08, 0.09, 0.1, 0.07, 0.09], "mixed": [0.5] * 5,
          "alien": [0.01, 0.02, 0.0, 0.01, 0.02]}


def test_every_axis_recovered_with_five_ordered_seeds() -> None:
    table, verdict = judge(SEEDS5)
    assert list(table.columns) == ground_truth.TRUTH_COLUMNS
    assert set(table["source"]) == set(SEEDS5) - {"mixed"}  # two axes: on no axis
    assert list(verdict.index) == ["lexicon", "script"]
    assert (verdict["verdict"] == RECOVERED).all()
    assert verdict.loc["lexicon", "levels"] == "lex25 > lex50 > lex100"
    assert verdict.loc["lexicon", "p_trend"] == pytest.approx(6.0 ** -5)  # Page's floor
    assert verdict.loc["lexicon", "p_control"] == pytest.approx(1 / 252)  # Mann-Whitney floor
    assert verdict.loc["script", "p_trend"] == pytest.approx(2.0 ** -5)  # two levels: Wilcoxon
    # Holm over the two axes: the smaller p doubled, the larger kept
    assert verdict.loc["lexicon", "p_holm"] == pytest.approx(2 / 252)
    assert verdict.loc["script", "p_holm"] == pytest.approx(2.0 ** -5)
    assert verdict["top_above_control"].all()


def test_three_seeds_of_two_levels_can_never_be_significant() -> None:
    _, verdict = judge({k: v[:3] for k, v in SEEDS5.items()})
    assert verdict.loc["script", "p_floor"] == pytest.approx(0.125)
    assert verdict.loc["script", "verdict"] == INCONCLUSIVE
    line = [v for v in ground_truth.verdict_lines(verdict.reset_index()) if "script" in v][0]
    assert "floor 0.125 (cannot reach 0.05)" in line


def test_a_reversed_axis_is_contradicted_and_a_high_control_is_not_recovered() -> None:
    reverse = {**SEEDS5, "lex25": SEEDS5["lex100"], "lex100": SEEDS5["lex25"]}
    _, verdict = judge(reverse)
    assert verdict.loc["lexicon", "verdict"] == CONTRADICTED
    # Holm: script's 2^-5 now comes first of two, so doubled, and misses 0.05
    assert verdict.loc["script", "p_holm"] == pytest.approx(2 * 2.0 ** -5)
    assert verdict.loc["script", "verdict"] == INCONCLUSIVE
    _, verdict = judge({**SEEDS5, "alien": [0.5] * 5})  # the control above every level
    assert (verdict["verdict"] == CONTRADICTED).all()
    assert (verdict["p_trend"] < 0.05).all()  # the falls alone do not make a verdict


def test_a_most_divergent_level_that_transfers_no_more_than_the_control() -> None:
    _, verdict = judge({**SEEDS5, "twin": [0.01, 0.02, 0.0, 0.02, 0.01]})
    assert not verdict.loc["script", "top_above_control"]
    text = ground_truth.markdown(*judge({**SEEDS5, "twin": [0.01, 0.02, 0.0, 0.02, 0.01]})[:1],
                                 verdict.reset_index(), TRUTH)
    assert "twin transfers no more than the control" in text


def test_no_control_leaves_the_trend_alone() -> None:
    _, verdict = judge({k: v for k, v in SEEDS5.items() if k != "alien"})
    assert (verdict["verdict"] == RECOVERED).all()
    assert np.isnan(verdict["p_control"]).all()


def test_analyse_writes_the_ground_truth_section(tmp_path) -> None:
    results = crafted_results()
    extra = [{"init": src, "target": "base", "budget": 1000, "seed": s, "perplexity": p + d}
             for src, d in (("lex100", 0.2), ("alien", 0.4))
             for s, p in enumerate((3.0, 2.5, 3.5))]
    results = pd.concat([results, pd.DataFrame(extra)], ignore_index=True)
    report = analyse(results, tmp_path, truth=TRUTH)
    text = report.read_text(encoding="utf-8")
    assert "## Ground truth" in text and "**inconclusive**" in text  # 3 seeds, 1 level each
    assert text.index("## Ground truth") < text.index("## D_T at")  # the finding first
    assert "The paper's claims" not in text  # generated languages: not the paper's
    assert (tmp_path / "ground_truth.png").is_file() and "(ground_truth.png)" in text
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
