"""The report's text, section by section, from what :func:`xfer.analysis.analyse.run_analysis`
computed. The finding comes first (the ground truth, where the study declares one); a section
with nothing to show on a study is one line saying why, not an empty table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from xfer.analysis import ground_truth
from xfer.analysis.correlations import correlations_markdown
from xfer.analysis.departures import departures_markdown
from xfer.analysis.powerlaw import powerlaw_markdown
from xfer.analysis.report import (
    Footnotes,
    all_budgets_table,
    commutativity_markdown,
    language_notes_markdown,
    problems_markdown,
    table2,
)
from xfer.analysis.run_length import run_length_markdown
from xfer.analysis.sensitivity import sensitivity_markdown
from xfer.analysis.transfer import SCRATCH, Problem, ScratchCurve
from xfer.units import format_budget


@dataclass
class Findings:
    """Everything the report shows (tables as computed; figures as caption -> path)."""

    results_rows: int
    rows: pd.DataFrame
    cells: pd.DataFrame
    curves: Mapping[str, ScratchCurve]
    budget: int
    largest: int | None
    corr: pd.DataFrame
    corr_table: pd.DataFrame
    fit: pd.DataFrame
    sens: pd.DataFrame
    comm: pd.DataFrame
    figures: dict[str, Path]
    problems: list[Problem]
    interp: str
    contamination_on: bool
    lid_model: Path | None
    truth: ground_truth.Truth | None = None
    truth_rows: pd.DataFrame | None = None
    verdicts: pd.DataFrame | None = None
    truth_figure: Path | None = None
    language_notes: Mapping[str, str] | None = None
    extra_sections: Mapping[str, str] = field(default_factory=dict)
    claims: str | None = None  # "The paper's claims" (xfer.analysis.claims), where it applies


INTRO = ("D_T in MiB (2^20 bytes; the paper's \"MB\"). ≥ marks a lower bound, ≤ an upper bound "
         "(clamped D_E). With several seeds a cell is the mean over seeds with its 95% t interval "
         "in brackets (seed s's finetune mapped through seed s's scratch curve, so the interval "
         "carries both sides' seed noise; coverage measured in `bench/calibration.py`); "
         "± the standard deviation where there is no interval.")


def _ground_truth(f: Findings) -> list[str]:
    if f.truth is None or f.truth_rows is None:
        return []
    parts = ["## Ground truth"]
    if f.truth_figure is not None:
        parts.append(f"![D_T against declared divergence per axis]({f.truth_figure.name})")
    return parts + [ground_truth.markdown(f.truth_rows, f.verdicts, f.truth)]


def _english_bytes(f: Findings, notes: Footnotes) -> str:
    cells = f.cells
    if "d_t_en_mib" not in cells.columns or not cells["d_t_en_mib"].notna().any():
        return ("No target has a byte premium (aligned parallel text, e.g. none for generated "
                "languages): no D_T in English bytes.")
    return ("D_T divided by the byte premium of the target (its bytes per English byte on "
            "aligned FLORES-200 text; `xfer premium`): the English text the transfer was worth; "
            "intervals likewise.\n\n" + all_budgets_table(
                cells.assign(d_t_mib=cells["d_t_en_mib"], d_t_mib_std=cells["d_t_en_mib_std"],
                             d_t_mib_ci_low=cells["d_t_en_mib_ci_low"],
                             d_t_mib_ci_high=cells["d_t_en_mib_ci_high"]), f.curves, notes))


def _correlations(f: Findings) -> str:
    corr = f.corr
    n_bounded = int((corr["bound"] != "exact").sum()) if len(corr) else 0
    n_pairs = corr[["init", "target"]].drop_duplicates().shape[0] if len(corr) else 0
    below = (f"below the largest finetune budget ({format_budget(f.largest)})" if f.largest
             else "at the only finetune budget")
    body = correlations_markdown(f.corr_table)
    if body.startswith("No correlation"):
        return body
    return (f"Spearman ρ of D_T against each variable over the {len(corr)} cells ({n_pairs} "
            f"source→target pairs) with source ≠ target {below}. p: two-sided, by permuting "
            "source and target labels (pairs sharing a language are not independent; level "
            "measured in `bench/calibration.py`); BH p: Benjamini-Hochberg adjusted over "
            f"the whole table. {n_bounded} of the {len(corr)} D_T values are bounds. At a single "
            "budget each pair is one cell.\n\n" + body)


def _sensitivity(f: Findings) -> str:
    if f.sens.empty or not f.sens["rho"].notna().any():
        return "Nothing to compare: no correlation could be computed."
    return ("Pooled ρ (p) of D_T under the other interpolation of Eq. 1 and with bound cells "
            "left out; *changes* lists the variants where ρ changes sign or p crosses 0.05.\n\n"
            + sensitivity_markdown(f.sens))


def report_text(f: Findings) -> str:
    """The whole ``report.md``."""
    notes = Footnotes()
    finetune = f.cells[f.cells["init"] != SCRATCH]
    targets = sorted(set(f.cells["target"]))
    sources = sorted(set(finetune["init"]))
    parts = ["# Transfer report",
             f"{f.results_rows} result rows; targets: {', '.join(targets) or 'none'}; sources: "
             f"{', '.join(sources) or 'none'}. " + INTRO]
    parts += _ground_truth(f)
    if f.claims is not None:
        parts += ["## The paper's claims", f.claims]
    parts += [f"## D_T at {format_budget(f.budget)} (layout of the paper's Table 2)",
              table2(f.cells, f.budget, targets, sources, f.curves, notes),
              "## D_T at every budget (MiB)", all_budgets_table(f.cells, f.curves, notes),
              "## D_T at every budget in English bytes (MiB)", _english_bytes(f, notes),
              "## Correlations", _correlations(f),
              "## Transfer power law", powerlaw_markdown(f.fit, f.rows),
              "## Sensitivity", _sensitivity(f),
              f"## Commutativity at {format_budget(f.budget)}", commutativity_markdown(f.comm),
              "## Figures",
              "\n\n".join(f"![{caption}]({path.name})" for caption, path in f.figures.items())]
    if f.language_notes:
        parts += ["## Language notes",
                  language_notes_markdown(f.language_notes, f.cells, f.budget)]
    for title, body in f.extra_sections.items():
        parts += [f"## {title}", body.strip()]
    parts += ["## Departures from the paper",
              departures_markdown(interp=f.interp, largest=f.largest,
                                  contamination_on=f.contamination_on, lid_model=f.lid_model),
              "## Run lengths", run_length_markdown(f.rows),
              "## Skipped and flagged", problems_markdown(f.problems)]
    if notes.notes:
        parts.append(notes.render())
    return "\n\n".join(parts) + "\n"
