"""What ``xfer analyse`` reads when given a study's run folder instead of a results table.

A run folder (``python -m sweeps.grid`` writes ``<output>/<name>-<hash>``) holds
``results.parquet``, ``config.json`` (the study, with its ``analysis:`` options), the prepared
``data/`` and, with a downstream check, ``downstream.parquet``. Analysing it again writes
``<run folder>/report`` (or ``--out``) with the study's options unless the command line gives
others; nothing is retrained. A run folder is untrusted: its files are checked before use and
any loader error is one line naming the file; ``analysis.lid_model`` in its config is ignored
(a model file to load comes only from the command line, ``--lid-model``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xfer.analysis.ground_truth import Truth, generated_truth
from xfer.analysis.transfer import DEFAULT_INTERP, INTERPOLATIONS
from xfer.boundary import read_json_object, regular_file, resolve
from xfer.boundary.tables import read_table
from xfer.errors import XferError
from xfer.io import first_line
from xfer.schema import byte_count, check_name

REPORT_MARKER = "report.md"  # an earlier report folder holds it: a rerun replaces the folder


@dataclass(frozen=True)
class AnalysisInputs:
    """The arguments of :func:`xfer.analysis.analyse.run_analysis` for one ``xfer analyse``."""

    results: Path
    out: Path
    budget: int | None = None
    data_dir: Path | None = None
    lid_model: Path | None = None
    interp: str = DEFAULT_INTERP
    language_notes: dict[str, str] | None = None
    extra_sections: dict[str, str] | None = None
    truth: Truth | None = None


def _codes(value: object, where: str) -> list:
    """A list of language codes (None: empty), each a valid name."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise XferError(f"{where} must be a list of language codes, got {str(value)[:60]!r}")
    return [check_name(code, where) for code in value]


def _study(run_dir: Path) -> dict:
    """The run folder's config.json (a study's ``to_dict``), its language codes checked."""
    path = resolve(run_dir, "config.json", what="config.json")
    if not path.exists():
        return {}
    data = read_json_object(path, f"{path}", None)
    langs = data.get("languages") or {}
    if not isinstance(langs, dict) or not isinstance(data.get("analysis") or {}, dict):
        raise XferError(f"{path}: 'languages' and 'analysis' must be mappings")
    for key in ("sources", "targets"):
        _codes(langs.get(key), f"{path}: languages.{key}")
    for pair in _codes_pairs(langs.get("extra_pairs"), f"{path}: languages.extra_pairs"):
        _codes(list(pair), f"{path}: languages.extra_pairs")
    if data.get("corpus") is not None and not isinstance(data["corpus"], str):
        raise XferError(f"{path}: corpus must be a string")
    return data


def _codes_pairs(value: object, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
            isinstance(pair, list) and len(pair) == 2 for pair in value):
        raise XferError(f"{where} must be a list of [source, target] pairs")
    return value


def _options(options: dict, path: Path) -> tuple[int | None, str | None]:
    """(budget, interp) of a study's ``analysis:`` options, checked."""
    budget = options.get("budget")
    if budget is not None:
        budget = byte_count(budget, f"{path}: analysis.budget")
    interp = options.get("interp")
    if interp is not None and interp not in INTERPOLATIONS:
        raise XferError(f"{path}: analysis.interp must be one of {', '.join(INTERPOLATIONS)}, "
                        f"got {interp!r}")
    return budget, interp


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
    path = resolve(run_dir, "downstream.parquet", what="downstream.parquet")
    if not path.exists():
        return None
    import pandas as pd

    from xfer.analysis.accuracy import report_section

    try:
        regular_file(path, f"{path}", "table")
        rows = pd.read_parquet(path).to_dict("records")
        return report_section(rows) or None
    except XferError as exc:
        raise XferError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001  any loader error of an untrusted file: one line
        raise XferError(f"cannot read {path}: {first_line(exc)}") from None


def analysis_inputs(path: Path, *, out: Path | None = None, budget: int | None = None,
                    data_dir: Path | None = None, lid_model: Path | None = None,
                    interp: str | None = None) -> AnalysisInputs:
    """Inputs for a results table (``out`` required) or a run folder (options default to the
    study's ``analysis:`` section; contamination reads ``<run folder>/data``)."""
    path = Path(path)
    if not path.is_dir():
        if out is None:
            raise XferError("--out is required when analysing a results table")
        if path.exists():  # a missing table is the analysis's own one-line error
            read_table(path)
        return AnalysisInputs(path, out, budget, data_dir, lid_model, interp or DEFAULT_INTERP)
    results = resolve(path, "results.parquet", what="results.parquet")
    if not results.exists():
        raise XferError(f"run folder {path} has no results.parquet (no trial has finished, or "
                        "this is not a run folder)")
    read_table(results)
    study = _study(path)
    options = study.get("analysis") or {}
    study_budget, study_interp = _options(options, path / "config.json")
    if data_dir is None and options.get("contamination", False) and (path / "data").is_dir():
        data_dir = resolve(path, "data", what="data")
    return AnalysisInputs(
        results, out or path / "report", budget if budget is not None else study_budget,
        data_dir, lid_model, interp or study_interp or DEFAULT_INTERP, language_notes(study),
        _downstream(path), declared_truth(study))
