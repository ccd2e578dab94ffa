"""Eq. 1 (D_E) and Eq. 2 (D_T) against hand-computed values, bounds, non-monotone curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xfer.analysis.transfer import (
    commutativity,
    compute_transfer,
    data_transfer,
    effective_data,
    scratch_curve,
    summarise_cells,
    validate,
)
from xfer.errors import XferError

M = 1_000_000


def test_effective_data_interpolates_between_neighbours():
    curve = scratch_curve([4 * M, 1 * M, 2 * M], [4.0, 10.0, 6.0])  # any order
    d_e, bound = effective_data(5.0, curve, "linear")
    # 5 lies halfway between 6 (2M) and 4 (4M): D_E = 3M
    assert d_e[0] == pytest.approx(3 * M)
    assert bound[0] == "exact"
    assert data_transfer(d_e, 1 * M)[0] == pytest.approx(2 * M)
    # on a point: exact
    d_e, bound = effective_data([10.0, 4.0], curve, "linear")
    assert d_e.tolist() == [1 * M, 4 * M] and bound.tolist() == ["exact", "exact"]


def test_bounds_when_outside_the_curve():
    curve = scratch_curve([1 * M, 2 * M, 4 * M], [10.0, 6.0, 4.0])
    d_e, bound = effective_data([3.0, 12.0], curve, "linear")
    assert d_e.tolist() == [4 * M, 1 * M]  # clamped
    assert bound.tolist() == ["lower", "upper"]


def test_perplexities_above_ten_are_not_wrapped():
    # the original code passed unsorted points with period=10, which wraps values >= 10
    curve = scratch_curve([6 * M, 19 * M, 60 * M], [16.28, 12.0, 9.0])
    d_e, bound = effective_data(14.14, curve, "linear")
    assert d_e[0] == pytest.approx(6 * M + (16.28 - 14.14) / (16.28 - 12.0) * 13 * M)
    assert bound[0] == "exact"


def test_non_monotone_curve_uses_envelope():
    curve = scratch_curve([1 * M, 2 * M, 4 * M, 8 * M], [10.0, 6.0, 7.0, 4.0])
    assert not curve.monotone
    assert curve.dropped_budgets == [4 * M]
    d_e, bound = effective_data(5.0, curve, "linear")
    # envelope 6 (2M) -> 4 (8M): 5 is halfway: 5M
    assert d_e[0] == pytest.approx(5 * M) and bound[0] == "exact"
    # 6.5 lies between 7 (dropped) and 6: maps to the smallest budget that reached it
    d_e, _ = effective_data(6.5, curve, "linear")
    assert d_e[0] == pytest.approx(1 * M + (10 - 6.5) / 4 * M)


def test_scratch_curve_needs_two_points():
    with pytest.raises(XferError):
        scratch_curve([M], [3.0])


def test_loglog_interpolates_log_bytes_against_log_perplexity():
    """The default Eq. 1: log D_E linear in log perplexity (the mean loss) between neighbours,
    by hand: 5 between 6 (2M) and 4 (4M) is a share ln(6/5)/ln(6/4) of the way, in log bytes."""
    curve = scratch_curve([1 * M, 2 * M, 4 * M], [10.0, 6.0, 4.0])
    share = np.log(6 / 5) / np.log(6 / 4)
    d_e, bound = effective_data([5.0, 6.0, 3.0, 12.0], curve)
    assert d_e.tolist() == pytest.approx([2 * M * 2 ** share, 2 * M, 4 * M, 1 * M])
    assert bound.tolist() == ["exact", "exact", "lower", "upper"]
    assert data_transfer(effective_data([3.0, 12.0], curve)[0], [4 * M, M]).tolist() == [0, 0]
    assert effective_data(5.0, curve, "log")[0][0] == pytest.approx(2 * M * 2 ** 0.5)
    with pytest.raises(XferError, match="interpolation"):
        effective_data(5.0, curve, "cubic")


def test_seed_curves_not_the_mean_curve():
    """Two seeds with different scratch curves: each finetune meets its own seed's curve (a
    mapping through the seeds' mean curve gives other values); a table without a seed column
    is one replicate, mapped through its one curve."""
    rows = [("scratch", "de", 1 * M, 10.0, 0), ("scratch", "de", 4 * M, 4.0, 0),
            ("scratch", "de", 1 * M, 8.0, 1), ("scratch", "de", 4 * M, 2.0, 1),
            ("en", "de", 1 * M, 5.0, 0), ("en", "de", 1 * M, 5.0, 1)]
    ft = compute_transfer(_table(rows), "linear").rows.query("init == 'en'")
    assert ft["d_e"].tolist() == pytest.approx([M + 3 * M * 5 / 6, M + 3 * M * 3 / 6])
    mean = (np.sqrt(80.0), np.sqrt(8.0))  # the geometric means at 1M and 4M
    assert ft["d_e"].iloc[0] != pytest.approx(M + 3 * M * (mean[0] - 5) / (mean[0] - mean[1]))
    one = _table(rows[:2] + rows[4:5]).drop(columns="seed")
    assert compute_transfer(one, "linear").rows["d_e"].iloc[2] == pytest.approx(M + 2.5 * M)


def _table(rows):
    return pd.DataFrame(rows, columns=["init", "target", "budget", "perplexity", "seed"])


def test_compute_transfer_seeds_mean_and_spread():
    rows = [("scratch", "de", b, p, s) for s in range(3)
            for b, p in ((1 * M, 10.0), (2 * M, 6.0), (4 * M, 4.0))]  # every seed one curve
    rows += [("en", "de", 1 * M, 5.0, 0), ("en", "de", 1 * M, 5.5, 1), ("en", "de", 1 * M, 3.0, 2)]
    result = compute_transfer(_table(rows), "linear")
    ft = result.rows[result.rows["init"] == "en"]
    assert ft["d_e"].tolist() == pytest.approx([3 * M, 2.5 * M, 4 * M])
    assert ft["d_t"].tolist() == pytest.approx([2 * M, 1.5 * M, 3 * M])
    assert ft["d_t_mib"].tolist() == pytest.approx([2 * M / 2**20, 1.5 * M / 2**20, 3 * M / 2**20])
    assert ft["bound"].tolist() == ["exact", "exact", "lower"]
    assert ft["scratch_perplexity"].tolist() == pytest.approx([10.0] * 3)
    cell = summarise_cells(result.rows).set_index(["init", "target", "budget"]).loc[("en", "de", M)]
    assert cell.n_seeds == 3
    assert cell.d_t == pytest.approx(np.mean([2, 1.5, 3]) * M)
    assert cell.d_t_std == pytest.approx(np.std([2, 1.5, 3], ddof=1) * M)
    assert cell.bound == "lower"  # the mean of an exact value and a lower bound is a lower bound


def test_scratch_seeds_average_in_log_space():
    rows = [("scratch", "de", 1 * M, 8.0, 0), ("scratch", "de", 1 * M, 2.0, 1),
            ("scratch", "de", 2 * M, 2.0, 0)]
    curve = compute_transfer(_table(rows), "linear").curves["de"]
    assert curve.perplexities[0] == pytest.approx(4.0)


def test_validate_problems_name_rows():
    with pytest.raises(XferError, match="perplexity"):
        validate(pd.DataFrame({"init": ["scratch"], "target": ["de"], "budget": [1]}))
    rows = pd.DataFrame({
        "init": ["scratch", "scratch", "scratch", "en", "en", "ru", "scratch", "en"],
        "target": ["de", "de", "de", "de", "de", "de", "fi", "fi"],
        "budget": [M, 2 * M, 4 * M, M, M, M, M, M],
        "perplexity": [10.0, 6.0, 4.0, 5.0, 5.1, -1.0, 9.0, 4.0]})
    result = compute_transfer(rows)
    text = " ".join(p.line() for p in result.errors)
    assert "en->de@1000000" in text and "no seed column" in text
    assert "ru->de@1000000" in text and "non-positive" in text
    assert "target fi" in text and "1 scratch point" in text
    assert len(result.rows) == len(rows)  # every input row kept, unusable ones without D_T
    assert result.rows.loc[result.rows["init"] == "ru", "bound"].tolist() == [""]
    assert result.rows.loc[result.rows["target"] == "fi", "d_t"].isna().all()


def test_pretrain_rows_are_not_part_of_dt():
    rows = pd.DataFrame({"init": ["scratch", "scratch", "scratch"], "target": ["de"] * 3,
                         "budget": [M, 2 * M, 60 * M], "perplexity": [10.0, 6.0, 1.5],
                         "kind": ["scratch", "scratch", "pretrain"]})
    result = compute_transfer(rows)
    assert result.curves["de"].budgets.tolist() == [M, 2 * M]
    assert result.rows["bound"].tolist() == ["exact", "exact", ""]


def test_commutativity():
    rows = [("scratch", t, b, p, 0) for t in ("de", "en") for b, p in ((M, 10.0), (4 * M, 4.0))]
    rows += [("en", "de", M, 7.0, 0), ("de", "en", M, 4.0, 0)]
    cells = summarise_cells(compute_transfer(_table(rows), "linear").rows)
    table = commutativity(cells, M)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row.lang1, row.lang2) == ("de", "en")
    assert row.d_t_mib_12 == pytest.approx(3 * M / 2**20)  # de -> en: D_E 4M
    assert row.d_t_mib_21 == pytest.approx(1.5 * M / 2**20)  # en -> de: D_E 2.5M
    assert row.difference_mib == pytest.approx(1.5 * M / 2**20)
