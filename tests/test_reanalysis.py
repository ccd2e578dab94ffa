"""Re-analysis never retrains: a study whose trials are all in the ledger only re-runs the
analysis (with its current ``analysis:`` options), and ``xfer analyse RUN_FOLDER`` works."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sweeps.config import config_from_dict
from sweeps.ledger import Ledger, make_row
from sweeps.runner import RunOptions, run_folder, run_study
from sweeps.trials import build_trials
from xfer.cli import main

STUDY = {
    "name": "again", "corpus": "synthetic",
    "languages": {"sources": ["base", "twin"], "targets": ["base", "twin", "markov"]},
    "budgets": {"pretrain": "50K", "finetune": ["5K", "10K", "20K"],
                "scratch": ["2K", "5K", "10K", "20K", "40K"]},
    "model": {"preset": "tiny", "d_model": 32},
    "train": {"seq_len": 64, "batch_size": 4, "micro_batch_size": 4},  # 2 kB holds a batch
    "analysis": {"contamination": False, "interp": "linear"},
}
SOURCE_GAIN = {"base": 1.5, "twin": 1.2}  # finetuned perplexity = scratch's / gain


def _finished_ledger(run_dir: Path, study) -> Ledger:
    """Every trial of ``study`` recorded as finished, with perplexities from a known curve."""
    ledger = Ledger(run_dir)
    for trial in build_trials(study):
        ppl = 40.0 * (trial.budget / 1000) ** -0.5
        if trial.kind == "finetune":
            ppl /= SOURCE_GAIN[trial.source]
        ledger.record(make_row(trial, {"test_perplexity": ppl}, None))
    return ledger


def test_other_analysis_options_reanalyse_the_same_run_folder(tmp_path, capsys):
    study = config_from_dict(STUDY)
    run_dir = run_folder(study, str(tmp_path))
    _finished_ledger(run_dir, study)
    ledger_files = {p.name: p.stat().st_mtime_ns for p in (run_dir / "ledger").glob("*.json")}
    assert run_study(study, RunOptions(output=str(tmp_path))) == 0
    assert "all" in set(pd.read_csv(run_dir / "report" / "fit.csv")["target"])
    linear = pd.read_csv(run_dir / "report" / "transfer.csv")

    again = config_from_dict({**STUDY, "analysis": {"contamination": False, "interp": "log"}})
    assert run_folder(again, str(tmp_path)) == run_dir
    assert run_study(again, RunOptions(output=str(tmp_path))) == 0
    out = capsys.readouterr().out
    assert "trials to run" not in out and "29/29 trials already finished" in out
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / "ledger").glob("*.json")} == \
        ledger_files  # nothing retrained
    log = pd.read_csv(run_dir / "report" / "transfer.csv")
    assert (log["d_t"] - linear["d_t"]).abs().max() > 0
    assert "linear in log bytes" in (run_dir / "report" / "report.md").read_text()
    assert json.loads((run_dir / "config.json").read_text())["analysis"]["interp"] == "log"

    # xfer analyse on the run folder: the study's options (log), or the command line's
    assert main(["analyse", str(run_dir), "--out", str(tmp_path / "cli"), "--interp",
                 "linear"]) == 0
    cli = pd.read_csv(tmp_path / "cli" / "transfer.csv")
    pd.testing.assert_series_equal(cli["d_t"], linear["d_t"])
    text = (tmp_path / "cli" / "report.md").read_text()
    assert "## Language notes" in text and "powerlaw.png" in text
    # the generated languages' declared divergences, as the sweep's own report has them
    sweep = pd.read_csv(run_dir / "report" / "ground_truth.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cli" / "ground_truth.csv")
                                  .drop(columns=["d_t_mib", "ci_low", "ci_high"]),
                                  sweep.drop(columns=["d_t_mib", "ci_low", "ci_high"]))
    assert main(["analyse", str(run_dir)]) == 0
    pd.testing.assert_series_equal(pd.read_csv(run_dir / "report" / "transfer.csv")["d_t"],
                                   log["d_t"])
    capsys.readouterr()
    assert main(["analyse", str(tmp_path)]) == 2  # not a run folder: one line
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
