"""What ``xfer analyse`` reads when given a study's run folder instead of a results table.

A run folder (``python -m sweeps.grid`` writes ``<output>/<name>-<hash>``) holds
``results.parquet``, ``config.json`` (the study, with its ``analysis:`` options), the prepared
``data/`` and, with a downstream check, ``downstream.parquet``. Analysing it again writes
``<run folder>/report`` (or ``--out``) with the study's options unless the command line gives
others; nothing is retrained.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from xfer.analysis.ground_truth import Truth, generated_truth
from xfer.errors import XferError


@dataclass(frozen=True)
class AnalysisInputs:
    """The arguments of :func:`xfer.analysis.analyse.run_analysis` for one ``xfer analyse``."""

    results: Path
    out: Path
    budget: int | None = None
    data_dir: Path | None = None
    lid_model: Path | None = None
    interp: str = "linear"
    language_notes: dict[str, str] | None = None
    extra_sections: dict[str, str] | None = None
    truth: Truth | None = None


def _study(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise XferError(f"cannot read {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def language_notes(study: dict) -> dict[str, str] | None:
    """Ground truth of generated languages (``synthetic.describe``) of a study config's dict
    (``StudyConfig.to_dict``, config.json), else None; the sweep's report and re-analysis."""
    if study.get("corpus") != "synthetic":
        return None
    from xfer.data import synthetic

    langs = study.get("languages") or {}
    codes = {*langs.get("sources", ()), *langs.get("targets", ()),
             *(x for pair in langs.get("extra_pairs", ()) for x in pair)}
    return {lang: synthetic.describe(lang) for lang in sorted(codes)} or None


def declared_truth(study: dict) -> Truth | None:
    """Declared divergences of a study's generated languages (a config dict), else None."""
    if study.get("corpus") != "synthetic":
        return None
    langs = study.get("languages") or {}
    return generated_truth(langs.get("sources", ()), langs.get("targets", ()),
                           langs.get("extra_pairs", ()))


def _downstream(run_dir: Path) -> dict[str, str] | None:
    path = run_dir / "downstream.parquet"
    if not path.is_file():
        return None
    import pandas as pd

    from xfer.downstream.table import report_section

    return report_section(pd.read_parquet(path).to_dict("records")) or None


def analysis_inputs(path: Path, *, out: Path | None = None, budget: int | None = None,
                    data_dir: Path | None = None, lid_model: Path | None = None,
                    interp: str | None = None) -> AnalysisInputs:
    """Inputs for a results table (``out`` required) or a run folder (options default to the
    study's ``analysis:`` section; contamination reads ``<run folder>/data``)."""
    path = Path(path)
    if not path.is_dir():
        if out is None:
            raise XferError("--out is required when analysing a results table")
        return AnalysisInputs(path, out, budget, data_dir, lid_model, interp or "linear")
    results = path / "results.parquet"
    if not results.is_file():
        raise XferError(f"run folder {path} has no results.parquet (no trial has finished, or "
                        "this is not a run folder)")
    study = _study(path)
    options = study.get("analysis") or {}
    if data_dir is None and options.get("contamination", False) and (path / "data").is_dir():
        data_dir = path / "data"
    if lid_model is None and options.get("lid_model"):
        lid_model = Path(options["lid_model"])
    return AnalysisInputs(
        results, out or path / "report",
        budget if budget is not None else options.get("budget"), data_dir, lid_model,
        interp or options.get("interp") or "linear", language_notes(study), _downstream(path),
        declared_truth(study))
