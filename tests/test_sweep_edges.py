"""Edge cases of a study run through ``python -m sweeps.grid`` on local Ray: a finetune starts
from its pretrain's best weights (not its last), checkpoints are stored once, a pretrain that
fails for good ends the study with its finetunes skipped, an address where no Ray listens fails
at once, and a retried trial resumes from its newest checkpoint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweeps.trainable import resume_point
from tests.faults_util import (
    REPO,
    TINY_TRIALS,
    grid_env,
    ledger_keys,
    one_error_line,
    private_ray_tmp,
    run_dir_of,
    run_grid,
    study,
    write_yaml,
)

PRETRAINS = ["pretrain-base-20K-s0", "pretrain-twin-20K-s0"]
FINETUNES = ["finetune-base-twin-4K-s0", "finetune-twin-base-4K-s0"]


def _du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_finetunes_start_from_best_weights_and_checkpoints_are_stored_once(
        tmp_path: Path) -> None:
    """Pretrains at a learning rate too high to settle (0.1; an evaluation every 4 steps): base
    is best at an early evaluation and worse at its last; each finetune's ``init_checkpoint`` is
    its pretrain's ``best`` folder, which holds the best step's weights. Tune's folders hold no
    checkpoint copies, finished trials no step checkpoints, and the dry-run's disk figure
    covers what the run folder holds."""
    cfg = study(name="best", train={"pretrain": {"lr": 0.1, "eval_every": 4}})
    config = write_yaml(tmp_path / "s.yaml", cfg)
    out = tmp_path / "runs"
    with private_ray_tmp() as ray_tmp:
        done = run_grid(config, out, ray_tmp=ray_tmp)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir = run_dir_of(out)
    assert len(ledger_keys(run_dir)) == TINY_TRIALS
    past_best = []
    for pretrain, finetune in zip(PRETRAINS, FINETUNES, strict=True):
        work = run_dir / "trials" / pretrain
        result = json.loads((work / "result.json").read_text())
        best = json.loads((work / "best" / "meta.json").read_text())["state"]
        assert best["step"] == best["best_step"]  # the best folder holds the best step
        if best["best_step"] < result["steps"]:
            past_best.append(pretrain)
        (params,) = (run_dir / "tune").glob(f"attempt-*/{finetune}/params.json")
        assert json.loads(params.read_text())["init_checkpoint"] == str(work / "best")
    assert past_best, "no pretrain ended past its best: nothing tells best from last here"
    copies = [p for p in (run_dir / "tune").rglob("checkpoint_*") if p.is_dir()]
    assert not copies, copies[:3]
    assert not list((run_dir / "trials").glob("*/checkpoints")), "step checkpoints were kept"
    plan = subprocess.run([sys.executable, "-m", "sweeps.grid", "--config", str(config),
                           "--dry-run", "--json"], capture_output=True, text=True, cwd=REPO,
                          timeout=120, env=grid_env())
    need = json.loads(plan.stdout)["disk_bytes"]
    held = _du(run_dir / "trials") + _du(run_dir / "data")
    assert 0.8 * held <= need["total"] <= 1.5 * held, (need, held)


def test_disk_figure_counts_step_checkpoints_only_when_kept() -> None:
    """Step checkpoints (12 bytes a parameter each) stay in the finished run folder only with
    ``run.keep_step_checkpoints``; otherwise they are counted per running trial."""
    from sweeps.config import config_from_dict
    from sweeps.dryrun import plan as dry_plan

    dropped = dry_plan(config_from_dict(study()))
    kept = dry_plan(config_from_dict(study(run={"keep_step_checkpoints": True})))
    n, trials = dropped["model"]["parameters"], dropped["counts"]["total"]
    keep = 2  # the tiny study's keep_checkpoints
    assert dropped["disk_bytes"]["per_running_trial"] == n * keep * 12
    assert kept["disk_bytes"]["per_running_trial"] == 0
    assert kept["disk_bytes"]["checkpoints"] - dropped["disk_bytes"]["checkpoints"] == \
        trials * n * keep * 12


@pytest.mark.slow
def test_pretrains_failing_for_good_skip_their_finetunes_and_end_the_study(
        tmp_path: Path) -> None:
    """Every pretrain fails on each of its attempts (it asks for a device no machine has:
    cuda:99); the scratch trials finish, the finetunes are reported skipped, and the study ends
    with one error line instead of waiting."""
    cfg = study(name="prefail", train={"pretrain": {"device": "cuda:99"}},
                run={"max_failures": 1})
    out = tmp_path / "runs"
    with private_ray_tmp() as ray_tmp:
        done = run_grid(write_yaml(tmp_path / "s.yaml", cfg), out, ray_tmp=ray_tmp,
                        timeout=300)
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    line = one_error_line(done.stderr)
    assert "4 trials did not finish" in line and "pretrain-" in line, line
    for key in FINETUNES:
        assert f"not finished: {key}: skipped: its pretrain" in done.stdout, done.stdout[-3000:]
    assert ledger_keys(run_dir_of(out)) == {"scratch-base-2K-s0", "scratch-base-8K-s0",
                                           "scratch-twin-2K-s0", "scratch-twin-8K-s0"}


def test_address_without_ray_fails_at_once_before_a_run_folder(tmp_path: Path) -> None:
    started = time.time()
    config = write_yaml(tmp_path / "s.yaml", study())
    done = subprocess.run([sys.executable, "-m", "sweeps.grid", "--config", str(config),
                           "--output", str(tmp_path / "runs"), "--address", "127.0.0.1:1"],
                          capture_output=True, text=True, cwd=REPO, timeout=120, env=grid_env())
    assert done.returncode == 2, done.stderr[-3000:]
    assert "no Ray cluster at 127.0.0.1:1" in one_error_line(done.stderr)
    assert time.time() - started < 60  # seconds of imports; Ray itself retried for minutes
    assert not (tmp_path / "runs").exists()


def test_retried_trial_resumes_from_its_newest_checkpoint(tmp_path: Path) -> None:
    """Tune's last reported checkpoint (an evaluation's) against the trial folder's newer ones
    (``checkpoint_every`` between evaluations): the newest wins, whichever holds it."""
    from xfer.data import prepare
    from xfer.model import MODEL_CONFIGS
    from xfer.training.checkpoint import list_checkpoints
    from xfer.training.config import TrainConfig
    from xfer.training.loop import run

    prepare("synthetic", ["base"], [8000], 2000, 2000, 0, tmp_path / "data")
    cfg = TrainConfig(kind="scratch", seq_len=64, batch_size=4, micro_batch_size=4,
                      max_steps=8, eval_every=4, eval_at_epoch_end=False, checkpoint_every=2,
                      keep_checkpoints=4, threads=1)
    run(MODEL_CONFIGS["tiny"], cfg, tmp_path / "data", "base", 8000, tmp_path / "trial")
    steps = list_checkpoints(tmp_path / "trial" / "checkpoints")
    assert [int(p.name.split("-")[1]) for p in steps] == [2, 4, 6, 8]
    reported = Path(shutil.copytree(steps[1], tmp_path / "tune-copy"))  # step 4's evaluation
    for newer in steps[1:]:
        (newer / "meta.json").rename(newer / "meta.json.x")  # not (yet) written locally
    assert resume_point(reported, tmp_path / "trial" / "checkpoints") == reported
    for newer in steps[1:3]:  # steps 4 and 6 on local disk: 6 is newer than Tune's
        (newer / "meta.json.x").rename(newer / "meta.json")
    assert resume_point(reported, tmp_path / "trial" / "checkpoints") is None  # run takes it
    assert resume_point(None, tmp_path / "trial" / "checkpoints") is None
    resumed = run(MODEL_CONFIGS["tiny"], cfg, tmp_path / "data", "base", 8000,
                  tmp_path / "trial")
    assert resumed.steps == 8
