"""The Ray Tune trainable: one study trial = one ``xfer.training.run``.

The trial's whole config arrives through Tune (``config["study"]`` from ``param_space``, the
trial itself from the searcher); nothing is global. Metrics and checkpoints go to Tune through a
``xfer.training`` callback at every evaluation; the last report carries the best checkpoint, which
is what a pretrain hands to its finetunes. A retried trial resumes from ``tune.get_checkpoint()``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

from ray import tune

from sweeps.config import StudyConfig
from sweeps.trials import TrialSpec
from xfer.training.loop import Callback


def _scalars(metrics: dict) -> dict:
    """The numeric entries of a metrics dict (what Tune logs and plots)."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool | int | float) and not (
                isinstance(value, float) and math.isnan(value)):
            out[key] = value
    return out


class TuneReporter(Callback):
    """``xfer.training`` callback: every evaluation becomes a ``tune.report`` with its checkpoint;
    between evaluations, training metrics (bytes seen, loss) go out every ``every_s`` seconds
    so progress and ETA move during long runs."""

    def __init__(self, started_at: float, every_s: float = 5.0) -> None:
        self.started_at = started_at
        self.every_s = every_s
        self.last = time.time()

    def on_step(self, metrics: dict) -> None:
        """Report training metrics, at most every ``every_s`` seconds (no checkpoint)."""
        if time.time() - self.last >= self.every_s:
            self.last = time.time()
            tune.report({**_scalars(metrics), "final": 0, "started_at": self.started_at})

    def on_eval(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        """Report ``metrics`` (and the checkpoint directory, copied to Tune's storage)."""
        checkpoint = tune.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        self.last = time.time()
        tune.report({**_scalars(metrics), "final": 0, "started_at": self.started_at},
                    checkpoint=checkpoint)


def _open_checkpoint(stack: contextlib.ExitStack, checkpoint: Any) -> Path | None:
    """A local directory for a ``tune.Checkpoint`` or a checkpoint URI (downloaded if remote)."""
    if checkpoint is None:
        return None
    if isinstance(checkpoint, str):
        checkpoint = tune.Checkpoint(checkpoint)
    return Path(stack.enter_context(checkpoint.as_directory()))


def train_trial(config: dict) -> None:
    """Run one trial of the study described by ``config`` (see ``sweeps.runner.trial_config``)."""
    started_at = time.time()
    from xfer.training.config import Kind
    from xfer.training.loop import run

    trial = TrialSpec.from_dict(config["trial"])
    study = StudyConfig.from_dict(config["study"])
    run_dir = Path(config["run_dir"])
    model = study.model
    threads = max(1, int(study.resources.cpus_per_trial))  # torch threads = trial CPUs
    if trial.kind == Kind.DOWNSTREAM:
        downstream_trial(config, trial, model, threads, started_at)
        return
    train_cfg = dataclasses.replace(study.train[trial.kind], seed=trial.seed, threads=threads)
    if trial.lr is not None:  # a variant of the study's lr search
        train_cfg = dataclasses.replace(train_cfg, lr=trial.lr)
    with contextlib.ExitStack() as stack:
        init = _open_checkpoint(stack, config.get("init_checkpoint"))
        resume = _open_checkpoint(stack, tune.get_checkpoint())
        result = run(model, train_cfg, run_dir / "data", trial.lang, trial.budget,
                     run_dir / "trials" / trial.key, init_checkpoint=init, resume_from=resume,
                     callbacks=[TuneReporter(started_at)])
    final = result.to_dict()
    best = tune.Checkpoint.from_directory(str(final["best_checkpoint"]))
    import ray

    tune.report({**_scalars(final), "final": 1, "started_at": started_at, "ended_at": time.time(),
                 "node_id": ray.get_runtime_context().get_node_id()}, checkpoint=best)


def downstream_trial(config: dict, trial: TrialSpec, model: Any, threads: int,
                     started_at: float) -> None:
    """One downstream classifier (``xfer.downstream.run``) from its source's best checkpoint
    (``config["init_checkpoint"]``) or from scratch; resumes from ``tune.get_checkpoint()``."""
    import ray

    from xfer import downstream  # the package: DownstreamConfig, run

    cfg = dataclasses.replace(downstream.DownstreamConfig.from_dict(config["downstream"]),
                              seed=trial.seed, threads=threads)
    out_dir = Path(config["run_dir"]) / "trials" / trial.key
    with contextlib.ExitStack() as stack:
        init = _open_checkpoint(stack, config.get("init_checkpoint"))
        resume = _open_checkpoint(stack, tune.get_checkpoint())
        result = downstream.run(model, cfg, out_dir, init_checkpoint=init, resume_from=resume,
                                init=trial.init, callbacks=[TuneReporter(started_at)])
    best = tune.Checkpoint.from_directory(str(result["best_checkpoint"]))
    tune.report({**_scalars(result), "final": 1, "started_at": started_at,
                 "ended_at": time.time(), "node_id": ray.get_runtime_context().get_node_id()},
                checkpoint=best)
