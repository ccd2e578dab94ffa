"""A real (tiny) study through ``python -m sweeps.grid`` on local Ray: dependency order without
stage barriers, results table, report, and resume without rerunning finished trials."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, TinyRun
from tests.faults_util import TINYRUN as STUDY
from tests.faults_util import tensorboard_scalars


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


def interrupted_resumes_from_its_checkpoint(config: Path, out: Path, run_dir: Path,
                                            results: pd.DataFrame) -> None:
    """Put one trial back to where an interruption after its first epoch leaves it (no ledger
    entry, no result, only the first epoch's checkpoint); the rerun must continue from that
    checkpoint (its first report is the second epoch's) and reproduce the same perplexity."""
    key = "scratch-base-8K-s0"
    work = run_dir / "trials" / key
    (run_dir / "ledger" / f"{key}.json").unlink()
    (work / "result.json").unlink()
    steps = sorted((work / "checkpoints").iterdir())
    assert len(steps) == 2  # one per epoch
    shutil.rmtree(steps[-1])
    rerun = run_grid(config, out, "--num-cpus", "2", "--no-dashboard")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "14/15 trials already finished" in rerun.stdout
    attempts = sorted((run_dir / "tune").glob("attempt-*"))
    assert len(attempts) == 2
    reports = [json.loads(line) for line in
               (attempts[-1] / key / "result.json").read_text().splitlines()]
    first_step = min(r["step"] for r in reports if "step" in r)
    assert first_step > int(steps[0].name.split("-")[-1])  # resumed after the first epoch
    after = pd.read_parquet(run_dir / "results.parquet").set_index("key")
    before = results.set_index("key")
    assert after.loc[key, "perplexity"] == pytest.approx(before.loc[key, "perplexity"], rel=1e-6)
    # TensorBoard: the resumed run's curve replaces the interrupted one's after the checkpoint
    steps_logged = [s for s, _ in tensorboard_scalars(run_dir / "tensorboard" / key)["train_loss"]]
    assert steps_logged == list(range(1, int(after.loc[key, "steps"]) + 1))


@pytest.mark.slow
def test_tiny_study_end_to_end_then_resume(tiny_run: TinyRun) -> None:
    config, out, run_dir, first = tiny_run.config, tiny_run.out, tiny_run.run_dir, tiny_run.first
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "report:" in first.stdout and "D_T" in first.stdout
    assert [p.name for p in out.iterdir()] == [run_dir.name]
    results = pd.read_parquet(run_dir / "results.parquet")
    assert len(results) == 3 + 3 * 2 + 6
    assert set(results.kind) == {"pretrain", "scratch", "finetune"}
    assert results.perplexity.notna().all() and (results.perplexity > 1).all()
    assert results[results.kind == "finetune"].checkpoint.notna().all()
    assert (run_dir / "report" / "report.md").is_file()
    check_order(results)

    interrupted_resumes_from_its_checkpoint(config, out, run_dir, results)
    results = pd.read_parquet(run_dir / "results.parquet")

    ledger = sorted((run_dir / "ledger").glob("*.json"))
    stamps = {p.name: p.stat().st_mtime_ns for p in ledger}
    second = run_grid(config, out)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "15/15 trials already finished" in second.stdout
    assert {p.name: p.stat().st_mtime_ns for p in ledger} == stamps
    assert len(list(out.iterdir())) == 1
    again = pd.read_parquet(run_dir / "results.parquet")
    pd.testing.assert_frame_equal(again, results)
