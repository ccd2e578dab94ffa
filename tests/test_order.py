"""Order, not only trend: each adjacent step's one-sided paired test, Holm across steps, and
the verdict "trend recovered, order broken at …", against scipy directly and by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tests.test_ground_truth import SEEDS5, TRUTH, ZERO, seed_rows
from xfer.analysis import calibration as cal
from xfer.analysis import ground_truth, order
from xfer.analysis.ground_truth import RECOVERED
from xfer.analysis.transfer import summarise_cells

TRUTH4 = ground_truth.Truth("base", {**TRUTH.divergence, "lex75": {**ZERO, "lexicon": 0.75}})


def test_paired_p_is_the_one_sided_paired_t_test() -> None:
    a, b = np.array([0.30, 0.32, 0.31, 0.33, 0.29]), np.array([0.20, 0.35, 0.19, 0.21, 0.2])
    falls, rises = order.paired_p(a, b)
    assert falls == pytest.approx(stats.ttest_rel(a, b, alternative="greater").pvalue)
    diff = a - b  # by hand: t = mean / (sd / sqrt(n)), 4 degrees of freedom
    t = diff.mean() / (diff.std(ddof=1) / np.sqrt(5))
    assert rises == pytest.approx(stats.t.cdf(t, 4))
    assert falls + rises == pytest.approx(1)
    assert np.isnan(order.paired_p(a[:1], b[:1])).all()  # one pair: no test
    assert order.paired_p(a + 0.1, a) == (0.0, 1.0)  # every seed falls by the same amount
    assert order.paired_p(a, a) == (1.0, 1.0)


def judged(dts: dict[str, list[float]], truth: ground_truth.Truth = TRUTH):
    rows = seed_rows(dts)
    table = ground_truth.truth_table(summarise_cells(rows), truth)
    return ground_truth.verdicts(table, rows, truth).set_index("axis")


def test_a_reversed_step_breaks_a_recovered_trend() -> None:
    """lex50 above lex25 in every seed while lex75 and lex100 stay far below: Page's trend is
    still significant, the step lex25/lex50 rises; its p by scipy is the family's smallest."""
    dts = {**SEEDS5, "lex25": [0.20, 0.22, 0.19, 0.21, 0.2],
           "lex50": [0.30, 0.33, 0.31, 0.32, 0.29], "lex75": [0.10, 0.12, 0.11, 0.13, 0.1],
           "lex100": [0.01, 0.02, 0.0, 0.02, 0.01]}
    verdict = judged(dts, TRUTH4)
    p_rise = stats.ttest_rel(dts["lex25"], dts["lex50"], alternative="less").pvalue
    p_others = [stats.ttest_rel(dts[a], dts[b], alternative="less").pvalue
                for a, b in (("lex50", "lex75"), ("lex75", "lex100"), ("half", "twin"))]
    assert p_rise < min(p_others) and 4 * p_rise < 0.05  # Holm over 4 steps: times 4
    assert verdict.loc["lexicon", "p_holm"] < 0.05  # the trend alone would say recovered
    assert verdict.loc["lexicon", "verdict"] == "trend recovered, order broken at lex25/lex50"
    assert verdict.loc["lexicon", "order_broken"] == "lex25/lex50"
    assert "lex25/lex50 rises **reversed** (0/5 seeds fall" in verdict.loc["lexicon", "order"]
    assert verdict.loc["script", "verdict"] == RECOVERED
    text = ground_truth.markdown(ground_truth.truth_table(summarise_cells(seed_rows(dts)),
                                                          TRUTH4), verdict.reset_index(), TRUTH4)
    assert "**trend recovered, order broken at lex25/lex50**" in text


def test_holm_across_steps_by_hand() -> None:
    import pandas as pd

    steps = pd.DataFrame({"axis": ["a", "a", "b"], "budget": [1, 1, 1], "step": ["x/y", "y/z",
                                                                             "u/v"],
                          "seeds": [5] * 3, "falls": [0, 2, 5], "mean_fall_mib": [-1, -1, 1],
                          "p_falls": [0.99, 0.96, 0.5], "p_rises": [0.01, 0.04, 0.5]})
    judged_steps = order.judge_steps(steps)
    assert judged_steps["p_rises_holm"].tolist() == pytest.approx([0.03, 0.08, 0.5])
    assert judged_steps["reversed"].tolist() == [True, False, False]
    assert order.order_columns(judged_steps, "a", 1)[1] == "x/y"
    assert order.order_columns(judged_steps, "b", 1) == ("u/v falls (5/5 seeds, p 0.500)", "")


def test_the_declared_order_leaves_recovered_alone() -> None:
    verdict = judged(SEEDS5)
    assert (verdict["verdict"] == RECOVERED).all()
    assert (verdict["order_broken"] == "").all()
    p = stats.ttest_rel(SEEDS5["lex25"], SEEDS5["lex50"], alternative="greater").pvalue
    assert verdict.loc["lexicon", "order"].startswith(
        f"lex25/lex50 falls (5/5 seeds, p {'< 0.001' if p < 0.001 else f'{p:.2g}'})")


def test_the_floor_is_printed_after_holm() -> None:
    """4 seeds, script and lexicon: the Mann-Whitney floor 1/70 = 0.014 per row, doubled by
    Holm over the two rows, and Page's floor for 3 levels below it: 0.029 printed."""
    verdict = judged({k: v[:4] for k, v in SEEDS5.items()})
    assert verdict.loc["lexicon", "p_floor"] == pytest.approx(1 / 70)
    assert verdict.loc["lexicon", "p_floor_holm"] == pytest.approx(2 / 70)
    lines = ground_truth.verdict_lines(verdict.reset_index())
    assert "floor 0.029 Holm" in lines[0]
    six = {k: v[:3] for k, v in SEEDS5.items()}  # 3 seeds: 1/20 raw, cannot reach 0.05
    assert "floor 0.100 (cannot reach 0.05) Holm" in ground_truth.verdict_lines(
        judged(six).reset_index())[0]


def test_a_truly_reversed_step_is_flagged_in_most_simulated_studies() -> None:
    """Through compute_transfer: lv2 truly above lv1 (finetune perplexity 4.4 against 5.0, a
    2 kB reversal of D_T) is flagged in most of 40 studies of 5 seeds; with the declared order
    true (4.4, 5.0, 5.3) no step is flagged in more than 5%."""
    reversed_ = cal.order_flag_rate((5.0, 4.4, 5.3), 5, 40, seed=3)
    assert reversed_["lv1/lv2"] > 0.5, reversed_
    assert reversed_["lv2/lv3"] <= 0.05, reversed_
    declared = cal.order_flag_rate((4.4, 5.0, 5.3), 5, 40, seed=4)
    assert (declared <= 0.05).all(), declared
