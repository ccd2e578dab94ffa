"""One rule for how long a run is: training, the dry-run and the ETA count the same steps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sweeps.config import config_from_dict, load_config
from sweeps.dryrun import plan
from sweeps.estimate import length_of, study_planned_bytes
from sweeps.trials import build_trials
from tests.dp_trial import STUDY
from xfer.data import prepare
from xfer.training.config import Kind, TrainConfig, run_length
from xfer.training.loop import Callback, run


class Evals(Callback):
    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_eval(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        self.steps.append(metrics["step"])


def test_a_run_trains_what_the_estimate_counts(tmp_path: Path) -> None:
    study = config_from_dict(STUDY)
    (trial,) = [t for t in build_trials(study) if t.kind == Kind.PRETRAIN]
    prepare("synthetic", [trial.lang], [trial.budget], 2000, 2000, 0, tmp_path / "data")
    cfg = replace(study.train[trial.kind], seed=trial.seed, threads=1)
    length = length_of(trial, cfg)
    assert (length.steps_per_epoch, length.total_steps) == (15, 45)  # min_steps 40: 3 epochs
    evals = Evals()
    result = run(study.model, cfg, tmp_path / "data", trial.lang, trial.budget, tmp_path / "out",
                 callbacks=[evals])
    assert result.bytes_seen == study_planned_bytes(study, trial) == 45 * cfg.batch_bytes
    assert len(evals.steps) == length.evaluations == 12  # every 4 steps, and the last


def test_default_study_counts_min_steps() -> None:
    """The default study with scratch runs of 40 epochs: the 2 kB run (1 step an epoch) falls
    short of min_steps, which the count honours; the 5 kB run (4 steps an epoch) trains 160."""
    default = load_config("default")
    scratch = replace(default.train[Kind.SCRATCH], epochs=40)
    study = replace(default, train={**default.train, Kind.SCRATCH: scratch})
    step_bytes = scratch.batch_size * scratch.seq_len
    assert 2000 // step_bytes == 1 and 40 < scratch.min_steps < 160  # the cases tested
    trials = {t["key"]: t for t in plan(study)["trials"]}
    assert trials["scratch-base-2K-s0"]["train_bytes"] == scratch.min_steps * step_bytes
    assert trials["scratch-base-5K-s0"]["train_bytes"] == 40 * 4 * step_bytes


def test_evaluations_follow_the_loop_rule() -> None:
    cfg = TrainConfig(kind=Kind.SCRATCH, batch_size=1, micro_batch_size=1, seq_len=10, epochs=3,
                      eval_every=4)
    assert run_length(cfg, 10 * 10).evaluations == 9  # 4 8 10 12 16 20 24 28 30
    cfg = replace(cfg, eval_at_epoch_end=False)
    assert run_length(cfg, 10 * 10).evaluations == 8  # every 4 steps and the last (30)
