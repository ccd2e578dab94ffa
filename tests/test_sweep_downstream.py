"""The downstream check as study trials: config section, hash, dry-run listing, and a tiny real
study whose report carries the "Downstream accuracy" table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sweeps.config import StudyConfig, config_from_dict
from sweeps.downstream import TASK_DIR, DownstreamSection, synthetic_aligned_lines
from sweeps.trials import build_trials
from tests.faults_util import (
    REPO,
    grid_env,
    private_ray_tmp,
    run_dir_of,
    run_grid,
    study,
    tensorboard_scalars,
    write_yaml,
)

DOWNSTREAM = {"construct": {"corpus": "synthetic", "premise_lang": "base",
                            "hypothesis_lang": "twin", "n_train": 32, "n_validation": 16},
              "epochs": 2, "lr": 1.0e-3, "batch_size": 16, "max_len": 128}
STUDY = study(name="dstiny", downstream=DOWNSTREAM)
KEYS = {"downstream-base-base-twin-s0", "downstream-twin-base-twin-s0",
        "downstream-scratch-base-twin-s0"}


def test_trials_and_hash() -> None:
    cfg = config_from_dict(STUDY)
    down = [t for t in build_trials(cfg) if t.kind == "downstream"]
    assert {t.key for t in down} == KEYS
    assert {t.parent for t in down} == {"pretrain-base-20K-s0", "pretrain-twin-20K-s0", None}
    other = config_from_dict(study(name="dstiny", downstream={**DOWNSTREAM, "epochs": 3}))
    plain = config_from_dict(study(name="dstiny"))
    assert len({cfg.digest(), other.digest(), plain.digest()}) == 3
    assert not [t for t in build_trials(plain) if t.kind == "downstream"]


def test_section_is_typed_and_crosses_ray_unchanged(tmp_path: Path) -> None:
    """The section is a DownstreamSection on both sides of Ray's boundary; the constructed task
    is built under the run folder, where the classifier's relative task points."""
    cfg = config_from_dict(STUDY)
    section = cfg.downstream
    assert isinstance(section, DownstreamSection) and section.language == "base-twin"
    assert section.classifier.epochs == 2 and section.construct.n_train == 32
    assert section.planned_pair_bytes() == 2 * 32 * 128
    assert StudyConfig.from_dict(cfg.to_dict()) == cfg
    built = section.resolved(tmp_path)
    assert built.task == str(tmp_path / TASK_DIR) and (tmp_path / TASK_DIR).is_dir()
    assert built == section.resolved(tmp_path)  # idempotent


def test_synthetic_pairs_are_aligned_transliterations() -> None:
    premises, hypotheses = synthetic_aligned_lines("base", "twin", 20, 0)
    assert len(set(premises)) == 20 and len(hypotheses) == 20
    assert all(len(p) == len(h) for p, h in zip(premises, hypotheses, strict=True))


def test_dry_run_lists_downstream_trials(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "s.yaml", STUDY)
    argv = [sys.executable, "-m", "sweeps.grid", "--config", str(config), "--dry-run"]
    text = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=120,
                          env=grid_env())
    assert text.returncode == 0, text.stderr
    assert "+ 3 downstream = 11 trials" in text.stdout
    assert all(k in text.stdout for k in KEYS)
    js = subprocess.run([*argv, "--json"], capture_output=True, text=True, cwd=REPO,
                        timeout=120, env=grid_env())
    assert json.loads(js.stdout)["counts"]["downstream"] == 3


@pytest.mark.slow
def test_tiny_study_reports_downstream_accuracy(tmp_path: Path) -> None:
    config, out = write_yaml(tmp_path / "s.yaml", STUDY), tmp_path / "runs"
    with private_ray_tmp() as ray_tmp:
        done = run_grid(config, out, ray_tmp=ray_tmp)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir = run_dir_of(out)
    report = (run_dir / "report" / "report.md").read_text()
    assert "## Downstream accuracy" in report
    section = report.split("## Downstream accuracy")[1]
    for init in ("base", "twin", "scratch"):
        assert f"\n| {init} |" in section
    rows = pd.read_parquet(run_dir / "downstream.parquet")
    assert set(rows.key) == KEYS and rows.accuracy.between(0, 1).all()
    assert len(pd.read_parquet(run_dir / "results.parquet")) == 8  # training trials only
    assert (run_dir / "downstream" / "task" / "train.jsonl").is_file()
    for key in KEYS:  # each classifier's curves in TensorBoard, beside the LM trials'
        assert {"train_loss", "accuracy"} <= set(tensorboard_scalars(run_dir / "tensorboard" / key))
