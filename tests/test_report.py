"""Report tables: Table 2 layout, seeds (±), bounds with one footnote per flagged cell, figures."""

from __future__ import annotations

import pandas as pd

from xfer.analysis.figures import write_figures
from xfer.analysis.report import Footnotes, all_budgets_table, table2
from xfer.analysis.transfer import compute_transfer, summarise_cells
from xfer.io import atomic_write

K = 1000


def _cells():
    rows = [("scratch", "de", K, 10.0, 0), ("scratch", "de", 2 * K, 6.0, 0),
            ("scratch", "de", 4 * K, 7.0, 0), ("scratch", "de", 8 * K, 4.0, 0),
            ("en", "de", K, 5.0, 0), ("en", "de", K, 6.0, 1),  # two seeds
            ("en", "de", 2 * K, 3.0, 0),  # lower bound
            ("scratch", "fi", K, 9.0, 0), ("scratch", "fi", 4 * K, 5.0, 0),
            ("en", "fi", K, 12.0, 0)]  # upper bound
    rows += [(i, t, b, p, 1) for i, t, b, p, s in rows[:4]]  # seed 1's own de scratch curve
    result = compute_transfer(pd.DataFrame(rows, columns=["init", "target", "budget",
                                                          "perplexity", "seed"]), "linear")
    return summarise_cells(result.rows), result.curves


def test_table2_footnotes_and_seeds():
    cells, curves = _cells()
    notes = Footnotes()
    text = table2(cells, K, ["de", "fi", "ko"], ["en"], curves, notes)
    lines = text.splitlines()
    assert lines[0] == "| init | de | fi | ko |"
    assert lines[2].startswith("| scratch ppl | 10.00 ± 0.00[^1] | 9.00 | – |")  # not monotone
    # seeds 5 and 6: the mean in log space (as the scratch curve's), sqrt(30) = 5.48
    assert "| en ppl | 5.48 ± 0.71 | 12.00 | – |" in text
    # de seeds: D_E 5K and 2K on the envelope 10 (1K), 6 (2K), 4 (8K): D_T 4K and 1K; the
    # t interval of the mean of two seeds (t with one degree of freedom: 12.7 standard errors)
    assert lines[4] == "| en D_T (MiB) | 0.00238 [-0.0158, 0.0206][^1] | ≤ 0.00[^2] | – |"
    every = all_budgets_table(cells, curves, notes)
    assert "| en→de | 0.00238 [-0.0158, 0.0206][^1] | ≥ 0.00572[^3][^1] |" in every
    rendered = notes.render()
    assert rendered.count("[^") == len(notes.notes) == 3  # curve, fi upper bound, de lower bound
    assert "not monotone" in rendered and "upper bound" in rendered and "lower bound" in rendered


def test_figures_and_atomic_write(tmp_path):
    cells, _ = _cells()
    figures = write_figures(cells, cells, K, tmp_path)
    assert len(figures) == 3
    for path in figures.values():
        assert path.stat().st_size > 5_000 and path.read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind
    target = tmp_path / "x.txt"
    try:
        atomic_write(target, lambda tmp: (tmp.write_text("partial"), 1 / 0))
    except ZeroDivisionError:
        pass
    assert not target.exists() and not list(tmp_path.glob(".x.txt*"))
