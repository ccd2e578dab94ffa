"""One training run (pretrain, finetune or scratch): train, evaluate, keep the best, resume.

Read top to bottom: :func:`run` sets a run up (:func:`setup`), trains it (:func:`train`, one
:func:`train_step` after another, each a few :func:`forward_backward_step` micro-batches) and
scores its best checkpoint (:func:`finish`). :class:`Run` holds what a run works with, and
:class:`TrainState` what a checkpoint keeps of its progress. With several data-parallel workers
(:mod:`xfer.training.parallel`) every worker runs this same code on its share of each batch.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from xfer.boundary import read_json_object
from xfer.data import load_split
from xfer.errors import XferError
from xfer.io import atomic_write_json
from xfer.model import ByteLM, ModelConfig
from xfer.training import checkpoint as ckpt
from xfer.training.batches import epoch_order, load_text_eval, make_batch
from xfer.training.config import RunLength, TrainConfig, is_eval_step, run_length
from xfer.training.device import Device, resolve_device
from xfer.training.metrics import evaluate, nats_to_metrics, nll_and_lse, z_loss_term
from xfer.training.optim import fused_option, make_optimizer, make_scheduler
from xfer.training.parallel import SINGLE, Workers

__all__ = ["Callback", "ConsoleProgress", "Run", "RunResult", "TrainState", "evaluate",
           "forward_backward_step", "fused_option", "make_optimizer", "run", "train",
           "train_step"]


class Callback:
    """Receives metrics as a run goes; override what you need (every method is a no-op)."""

    def on_step(self, metrics: dict) -> None:
        """After every optimiser step: step, epoch, train_loss (nats/byte), lr, bytes_seen."""

    def on_eval(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        """After every dev evaluation, with the checkpoint written there (None if none)."""


class ConsoleProgress(Callback):
    """Prints one line per evaluation (and every ``every`` steps) to stderr."""

    def __init__(self, every: int = 0) -> None:
        self.every = every

    def on_step(self, metrics: dict) -> None:
        if self.every and metrics["step"] % self.every == 0:
            print(f"step {metrics['step']} loss {metrics['train_loss']:.4f} "
                  f"lr {metrics['lr']:.2e}", file=sys.stderr)

    def on_eval(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        print(f"step {metrics['step']} epoch {metrics['epoch']:.2f} dev ppl "
              f"{metrics['dev_perplexity']:.3f} ({metrics['dev_bits_per_byte']:.3f} bits/byte) "
              f"{metrics['bytes_per_s']:.0f} bytes/s", file=sys.stderr)


@dataclass
class RunResult:
    """Outcome of a run; perplexities and bits/byte are of the best-dev checkpoint."""

    dev_perplexity: float
    test_perplexity: float
    dev_bits_per_byte: float
    test_bits_per_byte: float
    bytes_seen: int
    steps: int
    epochs: float
    wall_s: float
    bytes_per_s: float
    best_checkpoint: str
    stopped_early: bool = False  # ended by patience (False: ran to its step cap or epochs)
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Flat dict: the fields above plus ``<name>_perplexity/_bits_per_byte/_total_bits``."""
        data = {k: v for k, v in self.__dict__.items() if k != "extra"}
        return {**data, **self.extra}

    @classmethod
    def from_dict(cls, data: dict) -> RunResult:
        names = set(cls.__dataclass_fields__) - {"extra"}
        optional = {"stopped_early"}  # absent from result.json files written before it existed
        return cls(**{k: data[k] for k in names if k in data or k not in optional},
                   extra={k: v for k, v in data.items() if k not in names})



@dataclass
class TrainState:
    """A run's progress, kept in every checkpoint's meta.json (``state``) to resume from."""

    step: int = 0
    best_dev_loss: float = math.inf  # nats/byte
    best_step: int | None = None
    wall_s: float = 0.0
    history: list[dict] = field(default_factory=list)  # step, train_loss, dev_loss per eval
    evals_since_best: int = 0
    stopped_early: bool = False


@dataclass
class Run:
    """What one run works with: its settings, data, model, optimiser and progress."""

    model_cfg: ModelConfig
    cfg: TrainConfig
    lang: str
    budget: int
    out_dir: Path
    device: Device
    workers: Workers
    length: RunLength
    train_raw: np.ndarray
    dev_raw: np.ndarray
    net: ByteLM  # the model itself (saved, scored)
    wrapped: torch.nn.Module  # the model as trained: net, or net in DistributedDataParallel
    forward: torch.nn.Module  # wrapped, compiled if cfg.compile
    eval_forward: torch.nn.Module  # what dev evaluations call
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    micro_batch_size: int  # sequences per forward pass on this worker
    callbacks: Sequence[Callback]
    state: TrainState
    session_start: float = field(default_factory=time.perf_counter)
    session_bytes: int = 0
    wall_before: float = 0.0

    @property
    def n_pieces(self) -> int:
        """Training sequences in the budget (the last partial one dropped)."""
        return len(self.train_raw) // self.cfg.seq_len

    def meta(self) -> dict:
        """A checkpoint's meta.json: configs, language, budget and progress."""
        return {"model": self.model_cfg.to_dict(), "train": self.cfg.to_dict(),
                "lang": self.lang, "budget": self.budget, "state": asdict(self.state)}


def run(model: ModelConfig, cfg: TrainConfig, data_dir: Path, lang: str, budget: int,
        out_dir: Path, *, init_checkpoint: Path | None = None, resume_from: Path | None = None,
        extra_eval: dict[str, Path] | None = None, callbacks: Sequence[Callback] = (),
        workers: Workers = SINGLE) -> RunResult:
    """Train on the first ``budget`` bytes of ``lang``'s train split; return best-dev metrics.

    Resumes from ``resume_from`` or from the newest checkpoint in ``out_dir/checkpoints``;
    a finished run (``out_dir/result.json``) is returned as is. Every data-parallel worker
    calls this with its ``workers``; rank 0 alone writes checkpoints and the result.
    """
    out_dir = Path(out_dir)
    if (out_dir / ckpt.RESULT_FILE).is_file():
        ckpt.check_run_settings(ckpt.read_meta(out_dir / "best"), model, "train", cfg.to_dict(),
                                out_dir, defaults=TrainConfig.defaults())
        return RunResult.from_dict(read_json_object(out_dir / ckpt.RESULT_FILE,
                                                    f"{out_dir / ckpt.RESULT_FILE}", None,
                                                    finite=False))
    r = setup(model, cfg, data_dir, lang, budget, out_dir, init_checkpoint=init_checkpoint,
              resume_from=resume_from, callbacks=callbacks, workers=workers)
    train(r)
    workers.barrier()  # rank 0 has written the best checkpoint
    return finish(r, data_dir, extra_eval)


def setup(model: ModelConfig, cfg: TrainConfig, data_dir: Path, lang: str, budget: int,
          out_dir: Path, *, init_checkpoint: Path | None, resume_from: Path | None,
          callbacks: Sequence[Callback], workers: Workers) -> Run:
    """Load the data, build the model (seeded, or from ``init_checkpoint``), the optimiser and
    schedule, and resume the newest checkpoint if there is one."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device, cfg.precision)
    train_raw = load_split(data_dir, lang, "train", budget)
    dev_raw = load_split(data_dir, lang, "dev")
    try:
        length = run_length(cfg, budget, len(train_raw))
    except XferError as exc:
        raise XferError(f"{lang}: {exc}") from None
    micro_batch_size = workers.micro_batch_size(cfg.batch_size, cfg.micro_batch_size)

    torch.manual_seed(cfg.seed)
    net = ByteLM(model)
    if init_checkpoint is not None:
        ckpt.load_weights(net, Path(init_checkpoint))
    net.to(device.torch_device)
    optimizer = make_optimizer(net, cfg)
    scheduler = make_scheduler(optimizer, cfg, length)
    state = TrainState()
    resume = workers.from_main(ckpt.resume_point(out_dir, resume_from))
    if resume is not None:
        state = load_resume(resume, model, cfg, net, optimizer, scheduler)
    wrapped = workers.wrap(net)
    forward = torch.compile(wrapped) if cfg.compile else wrapped
    eval_forward = forward if workers.world == 1 else (
        torch.compile(net) if cfg.compile else net)
    return Run(model, cfg, lang, budget, out_dir, device, workers, length, train_raw, dev_raw,
               net, wrapped, forward, eval_forward, optimizer, scheduler, micro_batch_size,
               callbacks, state, wall_before=state.wall_s)


def load_resume(path: Path, model: ModelConfig, cfg: TrainConfig, net: ByteLM,
                optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler) -> TrainState:
    """Weights, optimiser, schedule and RNG from a step checkpoint; returns its progress."""
    meta = ckpt.read_meta(path)
    ckpt.check_run_settings(meta, model, "train", cfg.to_dict(), path,
                            defaults=TrainConfig.defaults())
    ckpt.load_weights(net, path)
    trainer = ckpt.load_state(path, ckpt.TRAINER_FILE)
    optimizer.load_state_dict(trainer["optimizer"])
    scheduler.load_state_dict(trainer["scheduler"])
    ckpt.restore_rng(trainer["rng"])
    return TrainState(**{"evals_since_best": 0, "stopped_early": False, **meta["state"]})


def train(r: Run) -> None:
    """Optimiser steps until the run's length or an early stop; dev evaluations keep the best
    checkpoint, and evaluations (and every ``checkpoint_every`` steps) write a resumable one."""
    cfg, length = r.cfg, r.length
    r.net.train()
    while r.state.step < length.total_steps and not r.state.stopped_early:
        metrics = train_step(r)
        for cb in r.callbacks:
            cb.on_step(metrics)
        step = r.state.step
        is_eval = is_eval_step(step, cfg, length.steps_per_epoch, length.total_steps)
        if is_eval:
            metrics = evaluate_and_keep_best(r, metrics)
        written = None
        if is_eval or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
            written = save_step_checkpoint(r)
        if is_eval:
            for cb in r.callbacks:
                cb.on_eval(metrics, written)


def train_step(r: Run) -> dict:
    """One optimiser step on the next global batch (this worker's rows of it): gradients
    accumulated over micro-batches (all-reduced over workers), clipped; returns step metrics.

    The step's NLL stays on the device until the step is done, then is read once (``train_loss``,
    nats/byte): one device-to-host transfer per step, none per micro-batch, so on XLA the whole
    step is one graph and on CUDA one sync."""
    cfg, step = r.cfg, r.state.step
    epoch, offset = divmod(step, r.length.steps_per_epoch)
    batch = epoch_order(r.n_pieces, cfg.seed, epoch)[offset * cfg.batch_size:
                                                     (offset + 1) * cfg.batch_size]
    rows = r.workers.rows(batch)
    n_micro = len(rows) // r.micro_batch_size
    loss_sum = None  # nats, float64 on the device
    for micro in range(n_micro):
        pieces = rows[micro * r.micro_batch_size:(micro + 1) * r.micro_batch_size]
        nats = forward_backward_step(r, pieces, last=micro == n_micro - 1)
        loss_sum = nats if loss_sum is None else loss_sum + nats
    loss_sum = r.workers.sum(loss_sum)
    torch.nn.utils.clip_grad_norm_(r.net.parameters(), cfg.grad_clip)
    lr = r.scheduler.get_last_lr()[0]
    r.optimizer.step()
    r.optimizer.zero_grad(set_to_none=True)
    r.scheduler.step()
    r.device.sync()  # XLA: runs the step's graph; the loss below is then a plain read
    train_loss = loss_sum.item() / cfg.batch_bytes
    if not math.isfinite(train_loss):  # checked after the update: the run stops unsaved
        last = ckpt.list_checkpoints(r.out_dir / ckpt.STEPS_DIR)
        raise XferError(f"non-finite training loss at step {step + 1}; last good checkpoint: "
                        f"{last[-1] if last else 'none'}")
    r.state.step = step = step + 1
    r.session_bytes += cfg.batch_bytes
    r.state.wall_s = r.wall_before + time.perf_counter() - r.session_start
    return {"step": step, "epoch": step / r.length.steps_per_epoch, "train_loss": train_loss,
            "lr": lr, "bytes_seen": step * cfg.batch_bytes}


def forward_backward_step(r: Run, pieces: np.ndarray, *, last: bool = True) -> torch.Tensor:
    """Forward and backward of one micro-batch of training sequences; returns its summed NLL
    (nats: a float64 scalar on the device, the float32 sum widened; nothing read to the host).
    The loss is NLL plus z-loss over the global batch's bytes, so accumulated micro-batches
    (and averaged workers) add up to the mean over the step's batch.
    ``last``: the step's last micro-batch, whose backward all-reduces the gradients."""
    cfg, device = r.cfg, r.device
    inputs, targets = map(device.put, make_batch(r.train_raw, pieces, cfg.seq_len))
    with r.workers.accumulating(r.wrapped, last):
        with device.autocast():
            logits = r.forward(inputs)
        nll, lse = nll_and_lse(logits, targets)
        loss = (nll + z_loss_term(lse, cfg.z_loss)).sum() / r.workers.loss_divisor(
            cfg.batch_bytes)
        loss.backward()
    return nll.detach().sum().double()


def evaluate_and_keep_best(r: Run, metrics: dict) -> dict:
    """Score dev (up to ``eval_max_bytes``); a new best writes ``out_dir/best``; decides the
    early stop. Returns the step's metrics with the dev scores."""
    state, cfg, step = r.state, r.cfg, r.state.step
    nats, count = evaluate(r.eval_forward, r.dev_raw, cfg, r.device, cfg.eval_max_bytes,
                           r.workers)
    dev_loss = nats / count
    out = {"step": step, "epoch": metrics["epoch"], "train_loss": metrics["train_loss"],
           "dev_loss": dev_loss, "lr": metrics["lr"], "bytes_seen": metrics["bytes_seen"],
           **nats_to_metrics(nats, count, "dev"),
           "bytes_per_s": r.session_bytes / (time.perf_counter() - r.session_start)}
    state.history.append({k: out[k] for k in ("step", "train_loss", "dev_loss")})
    if dev_loss < state.best_dev_loss:
        state.best_dev_loss, state.best_step = dev_loss, step
        state.evals_since_best = 0
        if r.workers.is_main:
            ckpt.save_checkpoint(r.out_dir / "best", r.net, r.meta())
    else:
        state.evals_since_best += 1
    state.stopped_early = should_stop(state.evals_since_best, step, cfg)
    out["best_dev_perplexity"] = math.exp(state.best_dev_loss)
    out["stopped_early"] = state.stopped_early
    return out


def should_stop(evals_since_best: int, step: int, cfg: TrainConfig) -> bool:
    """Early stop: ``patience`` evaluations in a row without a new best, at or after min_steps."""
    return 0 < cfg.patience <= evals_since_best and step >= cfg.min_steps


def save_step_checkpoint(r: Run) -> Path | None:
    """Rank 0 writes a resumable checkpoint of this step and prunes old ones; returns its
    directory (None on other workers)."""
    if not r.workers.is_main:
        return None
    folder = r.out_dir / ckpt.STEPS_DIR
    trainer = {"optimizer": r.optimizer.state_dict(), "scheduler": r.scheduler.state_dict(),
               "rng": ckpt.rng_state()}
    written = ckpt.save_checkpoint(ckpt.step_dir(folder, r.state.step), r.net, r.meta(), trainer)
    ckpt.prune(folder, r.cfg.keep_checkpoints)
    return written


def finish(r: Run, data_dir: Path, extra_eval: dict[str, Path] | None) -> RunResult:
    """Score the best checkpoint on dev, test and the extra sets; rank 0 writes result.json."""
    cfg, state, device = r.cfg, r.state, r.device
    best = r.out_dir / "best"
    ckpt.load_weights(r.net, best)
    r.net.to(device.torch_device)
    scores = {}
    sets = {"dev": r.dev_raw,
            "test": load_split(data_dir, r.lang, "test")}
    sets.update({name: load_text_eval(path) for name, path in (extra_eval or {}).items()})
    for name, raw in sets.items():
        scores.update(nats_to_metrics(*evaluate(r.net, raw, cfg, device, workers=r.workers),
                                      name))
    bytes_seen = state.step * cfg.batch_bytes
    result = RunResult(
        dev_perplexity=scores.pop("dev_perplexity"), test_perplexity=scores.pop("test_perplexity"),
        dev_bits_per_byte=scores.pop("dev_bits_per_byte"),
        test_bits_per_byte=scores.pop("test_bits_per_byte"), bytes_seen=bytes_seen,
        steps=state.step, epochs=state.step / r.length.steps_per_epoch, wall_s=state.wall_s,
        bytes_per_s=bytes_seen / max(state.wall_s, 1e-9), best_checkpoint=str(best),
        stopped_early=bool(state.stopped_early),
        extra={k: v for k, v in scores.items() if not k.startswith(("dev_", "test_"))})
    if r.workers.is_main:
        atomic_write_json(r.out_dir / ckpt.RESULT_FILE, result.to_dict(), indent=2,
                          sort_keys=True)
    return result
