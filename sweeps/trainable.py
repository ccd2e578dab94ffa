"""The Ray Tune trainable: one study trial = one ``xfer.training.run``.

The trial's whole config arrives through Tune (``config["study"]`` from ``param_space``, the
trial itself from the searcher); nothing is global. Metrics go to Tune through a
``xfer.training`` callback at every evaluation; the last report names the best checkpoint, which
is what a pretrain hands to its finetunes. Checkpoints are stored once: in the trial folder when
Tune's storage is a local path (``config["tune_checkpoints"]`` false; the run folder is then on
a filesystem every node sees), and also handed to Tune only when its storage is remote
(gs://...), the way they reach other nodes. A retried trial resumes from the newest of the two.
Every trial's curves also go to TensorBoard event files in ``<run folder>/tensorboard/<key>``.

With ``resources.workers_per_trial`` N > 1 a training trial is Ray Train inside the Tune trial
(the pattern of Ray's "Hyperparameter Tuning with Ray Tune" guide for Train V2): the trial
function starts a ``TorchTrainer`` of N data-parallel workers (:func:`train_worker`, each
running ``xfer.training.loop.run`` on its share of every batch) and waits for it. Their
evaluations reach Tune through Ray's ``TuneReportCallback``; rank 0 writes the checkpoints (and
the TensorBoard curves) into the run folder (shared storage on a cluster), which a restarted
worker group, or a retried trial, resumes from. The 1-worker path starts no Ray Train at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.trainable.function_trainable import wrap_function

from sweeps.config import StudyConfig
from sweeps.resources import DRIVER_CPUS, Resources
from sweeps.trials import TrialSpec
from xfer.training.checkpoint import STEPS_DIR
from xfer.training.config import Kind
from xfer.training.loop import Callback
from xfer.training.tensorboard import TensorBoardLog

TENSORBOARD_DIR = "tensorboard"  # <run folder>/tensorboard/<trial key>/events.out.tfevents.*


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

    def __init__(self, started_at: float, every_s: float = 5.0,
                 tune_checkpoints: bool = True) -> None:
        self.started_at = started_at
        self.every_s = every_s
        self.tune_checkpoints = tune_checkpoints
        self.last = time.time()

    def on_step(self, metrics: dict) -> None:
        """Report training metrics, at most every ``every_s`` seconds (no checkpoint)."""
        if time.time() - self.last >= self.every_s:
            self.last = time.time()
            tune.report({**_scalars(metrics), "final": 0, "started_at": self.started_at})

    def on_eval(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        """Report ``metrics`` (and the checkpoint directory, copied to Tune's storage when
        checkpoints go to Tune)."""
        checkpoint = _tune_checkpoint(checkpoint_dir, self.tune_checkpoints)
        self.last = time.time()
        tune.report({**_scalars(metrics), "final": 0, "started_at": self.started_at},
                    checkpoint=checkpoint)


def _tune_checkpoint(path: Path | str | None, to_tune: bool) -> tune.Checkpoint | None:
    """``path`` as a checkpoint for Tune to copy to its storage, or None when it stays put."""
    return tune.Checkpoint.from_directory(str(path)) if path and to_tune else None


def _step_of(checkpoint_dir: Path) -> int:
    from xfer.training.checkpoint import read_meta

    return int(read_meta(checkpoint_dir)["state"]["step"])


def resume_point(tune_dir: Path | None, trial_checkpoints: Path) -> Path | None:
    """Where a retried trial resumes: Tune's last reported checkpoint, unless the trial folder
    holds a newer one (saved between reports: ``checkpoint_every``); None lets the run take the
    trial folder's newest itself."""
    from xfer.training.checkpoint import list_checkpoints

    local = list_checkpoints(trial_checkpoints)
    if tune_dir is None or (local and _step_of(local[-1]) >= _step_of(tune_dir)):
        return None
    return tune_dir


def _open_checkpoint(stack: contextlib.ExitStack, checkpoint: Any) -> Path | None:
    """A local directory for a ``tune.Checkpoint`` or a checkpoint URI (downloaded if remote)."""
    if checkpoint is None:
        return None
    if isinstance(checkpoint, str):
        checkpoint = tune.Checkpoint(checkpoint)
    return Path(stack.enter_context(checkpoint.as_directory()))


def trial_placement(resources: Resources, config: dict) -> tune.PlacementGroupFactory:
    """What a trial holds (``tune.with_resources`` calls this with each trial's config): one
    worker's resources, or, for a training trial on N > 1 workers, a light driver whose Ray
    Train workers reserve their own."""
    if resources.workers_per_trial > 1 and config["trial"]["kind"] != Kind.DOWNSTREAM:
        return tune.PlacementGroupFactory([{"CPU": DRIVER_CPUS}])
    need = resources.per_worker()
    bundle = {"CPU": need["CPU"], "GPU": need["GPU"]}
    if need["TPU"]:
        bundle["TPU"] = need["TPU"]
    return tune.PlacementGroupFactory([bundle])


def _trial_io(stack: contextlib.ExitStack, config: dict, key: str,
              started_at: float) -> tuple[Path | None, Path | None, list[Callback]]:
    """A trial's init checkpoint, the checkpoint it resumes from (Tune's or its folder's newest;
    opened in ``stack``) and its callbacks: reports to Tune and TensorBoard scalars."""
    run_dir = Path(config["run_dir"])
    init = _open_checkpoint(stack, config.get("init_checkpoint"))
    resume = resume_point(_open_checkpoint(stack, tune.get_checkpoint()),
                          run_dir / "trials" / key / STEPS_DIR)
    board = stack.enter_context(contextlib.closing(TensorBoardLog(run_dir / TENSORBOARD_DIR / key)))
    reporter = TuneReporter(started_at, tune_checkpoints=config.get("tune_checkpoints", True))
    return init, resume, [reporter, board]



def _report_final(config: dict, result: dict, started_at: float) -> None:
    """A finished trial's last report: its metrics, node and best checkpoint (``final`` 1).
    Its step checkpoints are deleted first, unless ``run.keep_step_checkpoints``."""
    import ray

    from xfer.training.checkpoint import remove_step_checkpoints

    if not config["study"]["run"]["keep_step_checkpoints"]:
        remove_step_checkpoints(Path(config["run_dir"]) / "trials" / config["trial"]["key"])
    best = result["best_checkpoint"]
    tune.report({**_scalars(result), "final": 1, "started_at": started_at, "ended_at": time.time(),
                 "node_id": ray.get_runtime_context().get_node_id(), "best_checkpoint": str(best)},
                checkpoint=_tune_checkpoint(best, config.get("tune_checkpoints", True)))


def announce(key: str) -> None:
    """Name the current trial in this worker's log: Ray's log monitor and the dashboard prefix
    every later line of the worker with the name after the ``:actor_name:`` token (an actor
    reused by Tune runs one trial after another), and one line says the trial started."""
    from ray._private.ray_constants import LOG_PREFIX_ACTOR_NAME

    for stream in (sys.stdout, sys.stderr):
        print(f"{LOG_PREFIX_ACTOR_NAME}{key}", file=stream, flush=True)
    print(f"[xfer] trial {key} started", flush=True)


def run_trial(config: dict) -> None:
    """Run one trial of the study described by ``config`` (see ``sweeps.runner.trial_config``)."""
    started_at = time.time()
    from xfer.training.loop import run

    trial = TrialSpec.from_dict(config["trial"])
    study = StudyConfig.from_dict(config["study"])
    run_dir = Path(config["run_dir"])
    model = study.model
    threads = max(1, int(study.resources.per_worker()["CPU"]))  # torch threads = a worker's CPUs
    if trial.kind == Kind.DOWNSTREAM:
        downstream_trial(config, trial, model, threads, started_at)
        return
    train_cfg = dataclasses.replace(study.train[trial.kind], seed=trial.seed, threads=threads)
    if trial.lr is not None:  # a variant of the study's lr search
        train_cfg = dataclasses.replace(train_cfg, lr=trial.lr)
    out_dir = run_dir / "trials" / trial.key
    if study.resources.workers_per_trial > 1:
        final = train_on_workers(config, study, trial, train_cfg, started_at)
    else:
        with contextlib.ExitStack() as stack:
            init, resume, callbacks = _trial_io(stack, config, trial.key, started_at)
            result = run(model, train_cfg, run_dir / "data", trial.lang, trial.budget, out_dir,
                         init_checkpoint=init, resume_from=resume, callbacks=callbacks)
        final = result.to_dict()
    _report_final(config, final, started_at)
    print(f"[xfer] trial {trial.key} finished", flush=True)


class StudyTrial(wrap_function(run_trial)):
    """The study's Tune trainable: :func:`run_trial` in an actor named after its trial. Its repr
    is the trial key (e.g. ``finetune-en-de-3K-s0``): Ray shows it as the actor's ``repr_name``
    in the dashboard and the state API (set when the actor starts, so an actor Tune reuses keeps
    its first trial's key there) and prefixes the worker's log lines with it (renamed at each
    trial, :func:`announce`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # tune.with_resources subclasses it inside a function; Ray names the actor's class by
        # its qualified name, so the dashboard would show "with_resources.<locals>...".
        super().__init_subclass__(**kwargs)
        cls.__qualname__ = "StudyTrial"

    def setup(self, config: dict) -> None:
        self._key = config["trial"]["key"]
        announce(self._key)
        super().setup(config)

    def reset_config(self, new_config: dict) -> bool:
        self._key = new_config["trial"]["key"]
        announce(self._key)
        return super().reset_config(new_config)

    def __repr__(self) -> str:
        return getattr(self, "_key", type(self).__name__)


train_trial = StudyTrial  # what sweeps.runner hands to tune.with_resources


def train_on_workers(config: dict, study: StudyConfig, trial: TrialSpec, train_cfg: Any,
                     started_at: float) -> dict:
    """Train the trial on ``resources.workers_per_trial`` Ray Train workers (DDP: gloo on CPU,
    NCCL on GPUs, Ray's TPU backend on TPUs); returns the run's result (rank 0's
    result.json). A failed worker restarts the group up to ``run.max_failures`` times, each
    restart resuming from the newest checkpoint in the trial folder."""
    import ray.train
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    from xfer.training.checkpoint import RESULT_FILE

    resources = study.resources
    run_dir = Path(config["run_dir"])
    out_dir = run_dir / "trials" / trial.key
    need = resources.per_worker()
    scaling = ray.train.ScalingConfig(
        num_workers=resources.workers_per_trial, use_gpu=need["GPU"] > 0,
        use_tpu=need["TPU"] > 0, resources_per_worker={k: v for k, v in need.items() if v},
        topology=resources.tpu_topology, accelerator_type=resources.tpu_accelerator_type)
    worker_config = {"model": study.model.to_dict(), "train": train_cfg.to_dict(),
                     "data_dir": str(run_dir / "data"), "lang": trial.lang,
                     "budget": trial.budget, "out_dir": str(out_dir),
                     "tensorboard_dir": str(run_dir / TENSORBOARD_DIR / trial.key),
                     "init_checkpoint": config.get("init_checkpoint"), "started_at": started_at}
    trainer = TorchTrainer(train_worker, train_loop_config=worker_config, scaling_config=scaling,
                           run_config=ray.train.RunConfig(
                               name=trial.key, storage_path=str(run_dir / "train"),
                               callbacks=[TuneReportCallback()],
                               failure_config=ray.train.FailureConfig(
                                   max_failures=study.run.max_failures)))
    trainer.fit()
    return json.loads((out_dir / RESULT_FILE).read_text())


def train_worker(config: dict) -> None:
    """One data-parallel worker of a trial (Ray Train has set up the process group): the
    trial's run on this worker's share of each batch; evaluations go to Ray Train."""
    import ray.train
    import torch

    from xfer.model import ModelConfig
    from xfer.training.config import TrainConfig
    from xfer.training.loop import run
    from xfer.training.parallel import Workers

    cfg = TrainConfig.from_dict(config["train"])
    if cfg.device.startswith("cuda"):  # the GPU Ray Train gave this worker
        device = ray.train.torch.get_device()
        torch.cuda.set_device(device)
        cfg = dataclasses.replace(cfg, device=str(device))
    workers = Workers.from_process_group()
    with contextlib.ExitStack() as stack:
        init = _open_checkpoint(stack, config["init_checkpoint"])
        callbacks: list[Callback] = [TrainReporter(config["started_at"])]
        if workers.is_main:  # the curves of the run, once
            callbacks.append(stack.enter_context(contextlib.closing(
                TensorBoardLog(Path(config["tensorboard_dir"])))))
        run(ModelConfig.from_dict(config["model"]), cfg, Path(config["data_dir"]),
            config["lang"], config["budget"], Path(config["out_dir"]), init_checkpoint=init,
            callbacks=callbacks, workers=workers)


class TrainReporter(Callback):
    """``xfer.training`` callback on a Ray Train worker: every evaluation becomes a
    ``ray.train.report`` (a barrier every worker reaches at the same step; rank 0's metrics
    reach Tune). Checkpoints stay in the trial folder, where rank 0 wrote them."""

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at

    def on_eval(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        import ray.train

        ray.train.report({**_scalars(metrics), "final": 0, "started_at": self.started_at})


def downstream_trial(config: dict, trial: TrialSpec, model: Any, threads: int,
                     started_at: float) -> None:
    """One downstream classifier (``xfer.downstream.run``) from its source's best checkpoint
    (``config["init_checkpoint"]``) or from scratch; resumes from its newest checkpoint."""

    from xfer import downstream  # the package: DownstreamConfig, run

    cfg = dataclasses.replace(downstream.DownstreamConfig.from_dict(config["downstream"]),
                              seed=trial.seed, threads=threads)
    run_dir = Path(config["run_dir"])
    out_dir = run_dir / "trials" / trial.key
    with contextlib.ExitStack() as stack:
        init, resume, callbacks = _trial_io(stack, config, trial.key, started_at)
        result = downstream.run(model, cfg, out_dir, init_checkpoint=init, resume_from=resume,
                                init=trial.init, callbacks=callbacks)
    _report_final(config, result, started_at)
