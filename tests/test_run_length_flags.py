"""The report's run-length flags: runs that ended at their length, and D_E on flat stretches."""

from __future__ import annotations

import pandas as pd

from xfer.analysis.run_length import capped_runs, flat_segments, run_length_markdown


def _rows() -> pd.DataFrame:
    scratch = [("scratch", "de", b, s, p, float(b), True)
               for s in (0, 1) for b, p in ((1000, 8.0), (2000, 6.0), (4000, 5.99), (8000, 5.0))]
    finetune = [("en", "de", 1000, 0, 5.995, 3000.0, True),  # on seed 0's flat 2K-4K stretch
                ("en", "de", 1000, 1, 7.0, 1500.0, False),  # ran to its cap
                ("ru", "de", 1000, 0, 5.5, 6000.0, True)]
    return pd.DataFrame(scratch + finetune, columns=["init", "target", "budget", "seed",
                                                     "perplexity", "d_e", "stopped_early"])


def test_capped_runs_and_flat_stretches() -> None:
    rows = _rows()
    capped = capped_runs(rows)
    assert list(zip(capped["init"], capped["seed"], strict=True)) == [("en", 1)]
    flat = flat_segments(rows)
    assert sorted(zip(flat["init"], flat["seed"], flat["flat_from"], strict=True)) == [
        ("en", 0, 2000.0)]  # seed 1's curve is the same, but its finetune lies elsewhere
    text = run_length_markdown(rows)
    assert "1 runs ended at their length" in text and "finetunes from en at 1K: 1 (de)" in text
    assert "1 D_E values fall on a flat stretch" in text and "de 2K–4K: 1 (en)" in text


def test_clean_and_unknown() -> None:
    rows = _rows()
    rows = rows[rows["init"] != "en"]
    assert "Every scratch run and finetune ended by early stopping" in run_length_markdown(rows)
    assert "No D_E falls on a flat stretch" in run_length_markdown(rows)
    assert "does not say how runs ended" in run_length_markdown(rows.drop(columns="stopped_early"))
    assert capped_runs(rows.iloc[0:0]).empty and flat_segments(rows.iloc[0:0]).empty


def test_seed_with_one_scratch_point_has_no_curve() -> None:
    """A seed with one scratch budget (or an unusable point) has no curve to be flat on: it is
    skipped, not an error that stops the report (a tuned study has such seeds)."""
    rows = _rows()
    one = pd.DataFrame([("scratch", "de", 1000, 7, 8.0, 1000.0, True),
                        ("scratch", "de", 2000, 7, float("nan"), float("nan"), True),
                        ("en", "de", 1000, 7, 5.995, 3000.0, True)], columns=rows.columns)
    flat = flat_segments(pd.concat([rows, one], ignore_index=True))
    assert sorted(zip(flat["init"], flat["seed"], strict=True)) == [("en", 0)]
