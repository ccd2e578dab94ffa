"""A real (tiny) study through ``python -m sweeps.grid`` on local Ray: dependency order without
stage barriers, results table, report, and resume without rerunning finished trials."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO

LANGS = ["base", "twin", "relative"]
STUDY = {
    "name": "tinyrun", "corpus": "synthetic",
    "languages": {"sources": LANGS, "targets": LANGS},
    "budgets": {"pretrain": "40K", "finetune": ["4K"], "scratch": ["2K", "8K"]},
    "data": {"dev_bytes": "2K", "test_bytes": "2K"},
    "model": {"preset": "tiny", "d_model": 32, "n_layers": 1, "n_heads": 1, "d_head": 32,
              "d_ff": 64},
    "train": {"seq_len": 64, "batch_size": 4, "micro_batch_size": 4,
              "pretrain": {"lr": 3.0e-3, "epochs": 1},
              "scratch": {"lr": 3.0e-3, "epochs": 2},
              "finetune": {"lr": 1.0e-3, "epochs": 2}},
    "analysis": {"contamination": False},
}


def write_study(tmp: Path, study: dict = STUDY) -> Path:
    path = tmp / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def run_grid(config: Path, out: Path, *extra: str, timeout: int = 400,
             env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweeps.grid", "--config", str(config), "--output", str(out),
         *extra], capture_output=True, text=True, cwd=REPO, timeout=timeout,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})})


def check_order(results: pd.DataFrame) -> None:
    """Every finetune starts after its own pretrain ended, and (no stage barrier) at least one
    finetune starts while another source's pretrain is still running."""
    pre = results[results.kind == "pretrain"].set_index("source")
    fin = results[results.kind == "finetune"]
    for _, f in fin.iterrows():
        assert f.started_at >= pre.loc[f.source, "ended_at"], f.key
    overlapping = [(f.key, p) for _, f in fin.iterrows() for p, row in pre.iterrows()
                   if p != f.source and f.started_at < row.ended_at]
    assert overlapping, "no finetune started before another source's pretrain ended"


@pytest.mark.slow
def test_tiny_study_end_to_end_then_resume(tmp_path: Path) -> None:
    config = write_study(tmp_path)
    out = tmp_path / "runs"
    first = run_grid(config, out, "--num-cpus", "2", "--no-dashboard")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "report:" in first.stdout and "D_T" in first.stdout
    (run_dir,) = out.iterdir()
    results = pd.read_parquet(run_dir / "results.parquet")
    assert len(results) == 3 + 3 * 2 + 6
    assert set(results.kind) == {"pretrain", "scratch", "finetune"}
    assert results.perplexity.notna().all() and (results.perplexity > 1).all()
    assert results[results.kind == "finetune"].checkpoint.notna().all()
    assert (run_dir / "report" / "report.md").is_file()
    check_order(results)

    ledger = sorted((run_dir / "ledger").glob("*.json"))
    stamps = {p.name: p.stat().st_mtime_ns for p in ledger}
    second = run_grid(config, out)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "15/15 trials already finished" in second.stdout
    assert {p.name: p.stat().st_mtime_ns for p in ledger} == stamps
    assert len(list(out.iterdir())) == 1
    again = pd.read_parquet(run_dir / "results.parquet")
    pd.testing.assert_frame_equal(again, results)
