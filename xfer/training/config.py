"""TrainConfig and the schedule rules of one run: epochs, warmup and the learning-rate curve."""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

from xfer.errors import XferError
from xfer.kinds import KINDS, Kind
from xfer.schema import MAX_CONTEXT

PRECISIONS = ("auto", "fp32", "bf16")
INT_LIMITS = {"seq_len": MAX_CONTEXT, "threads": 4096}  # bytes, CPU threads (others: int64)
PAPER_BATCH_BYTES = 512 * 1024
PAPER_PRETRAIN_BYTES = 6_000_000_000
PAPER_PRETRAIN_STEPS = PAPER_PRETRAIN_BYTES // PAPER_BATCH_BYTES  # 11,444 optimiser steps
PAPER_WARMUP_STEPS = 3000
FINETUNE_WARMUP_BYTES_PER_STEP = PAPER_PRETRAIN_BYTES // PAPER_WARMUP_STEPS  # 2e6 bytes
LARGE_BUDGET_BYTES = 6_000_000_000  # budgets this large train 3 epochs instead of 10
# Settings that may change when a run resumes (where it runs, not what it computes). Sweeps drop
# these keys from their results hash, so nothing that changes a result may be listed here:
# ``patience``, ``min_steps`` and ``eval_at_epoch_end`` change when a run stops or which
# evaluation picks the best checkpoint, so resuming with another value is a settings change.
def effective_precision(device: str, precision: str) -> str:
    """What ``precision`` means on ``device``: ``auto`` is bf16 (autocast) on cuda and xla,
    fp32 on cpu; ``fp32`` and ``bf16`` are themselves."""
    if precision != "auto":
        return precision
    return "fp32" if device.split(":")[0] == "cpu" else "bf16"


RESUMABLE_CHANGES = frozenset({"device", "threads", "compile", "checkpoint_every",
                               "keep_checkpoints"})


@dataclass(frozen=True)
class TrainConfig:
    """Everything about one run's optimisation, batching, device and seed.

    ``batch_size`` sequences of ``seq_len`` bytes make one optimiser step (the paper: 512 x 1024);
    they are processed ``micro_batch_size`` at a time with gradient accumulation. ``None`` in
    ``epochs``, ``lr`` and ``warmup_steps`` means "the rule for this kind" (see the functions
    below). ``eval_every`` (steps, 0 = only at the end of each epoch) adds dev evaluations;
    ``eval_max_bytes`` caps the dev set read at each evaluation (None: all of it).

    ``min_steps`` (optimiser steps, 0 = no floor): the run makes more passes over the budget
    until it has at least this many steps: epochs = max(epochs or the kind's default,
    ceil(min_steps / steps_per_epoch)) (see :func:`run_epochs`); the warmup and cosine schedule
    span the resulting total. ``max_steps`` still caps it (it may not be below ``min_steps``).

    ``patience`` (dev evaluations, 0 = off): stop early once that many consecutive evaluations
    have not lowered the best dev loss, but never before ``min_steps`` steps (evaluations before
    then still count). The best-dev checkpoint is the result, as always.

    ``eval_at_epoch_end``: evaluate dev (and write a checkpoint) at the end of every epoch. When
    False, evaluations happen only every ``eval_every`` steps (which must then be > 0) and at the
    last step: at tiny budgets an epoch is a handful of steps.

    ``lr_decay``: after warmup, a cosine from the peak lr to ``min_lr`` (True) or a constant lr
    (False); None is the kind's rule (:func:`decays`: constant to finetune, cosine otherwise).
    """

    kind: str = "pretrain"
    seq_len: int = 1024
    batch_size: int = 512
    micro_batch_size: int = 8
    epochs: int | None = None
    max_steps: int | None = None
    lr: float | None = None
    min_lr: float = 2e-5
    warmup_steps: int | None = None
    beta1: float = 0.9
    beta2: float = 0.95
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    z_loss: float = 1e-4
    eval_every: int = 0
    eval_max_bytes: int | None = None
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    device: str = "cpu"
    precision: str = "auto"
    compile: bool = False
    threads: int | None = None
    seed: int = 0
    min_steps: int = 0
    patience: int = 0
    eval_at_epoch_end: bool = True
    lr_decay: bool | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise XferError(f"unknown training kind {self.kind!r}; choose one of "
                            f"{', '.join(KINDS)}")
        if self.precision not in PRECISIONS:
            raise XferError(f"unknown precision {self.precision!r}; choose one of "
                            f"{', '.join(PRECISIONS)}")
        for name in ("seq_len", "batch_size", "micro_batch_size", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise XferError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("epochs", "max_steps", "threads", "eval_max_bytes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise XferError(f"{name} must be at least 1 (or unset), got {value}")
        for f in fields(self):  # counts fit int64; a window or a thread count within reason
            value, limit = getattr(self, f.name), INT_LIMITS.get(f.name, 2**63 - 1)
            if isinstance(value, int) and not isinstance(value, bool) and value > limit:
                raise XferError(f"{f.name} must be at most {limit}, got {value}")
        for name in ("eval_every", "checkpoint_every", "warmup_steps", "min_steps", "patience",
                     "seed"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise XferError(f"{name} must not be negative, got {value}")
        if self.max_steps is not None and self.max_steps < self.min_steps:
            raise XferError(f"max_steps {self.max_steps} is below min_steps {self.min_steps}")
        if not self.eval_at_epoch_end and self.eval_every < 1:
            raise XferError("eval_at_epoch_end=False needs eval_every > 0 (steps between "
                            "dev evaluations)")
        if self.batch_size % self.micro_batch_size:
            raise XferError(f"batch_size {self.batch_size} is not a multiple of "
                            f"micro_batch_size {self.micro_batch_size}")
        for name in ("lr", "min_lr", "weight_decay", "grad_clip", "z_loss"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise XferError(f"{name} must be a finite number >= 0, got {value}")
        for name in ("beta1", "beta2"):  # Adam's decay rates
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or \
                    not (math.isfinite(value) and 0 <= value < 1):
                raise XferError(f"{name} must be a number from 0 up to (not including) 1, got "
                                f"{value!r}")

    @property
    def batch_bytes(self) -> int:
        """Bytes per optimiser step (sequences x length)."""
        return self.batch_size * self.seq_len

    def to_dict(self) -> dict:
        """Plain JSON-able dict (inverse: :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Rebuild from :meth:`to_dict`; unknown keys are an XferError."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise XferError(f"unknown training config keys: {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def defaults(cls) -> dict:
        """Every field's default value (what a run made before a field existed behaved as)."""
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def check_same_settings(meta: dict, key: str, expected: dict, where: Path | str) -> None:
    """XferError naming the first setting in ``meta[key]`` that differs from ``expected``.

    Keys in :data:`RESUMABLE_CHANGES` may differ. Used before continuing a checkpoint or
    returning a finished result (training runs: key "train"; downstream runs: "downstream").
    """
    for name, value in meta[key].items():
        if name not in RESUMABLE_CHANGES and expected.get(name) != value:
            raise XferError(f"{where} was made with {name}={value!r}, not "
                            f"{expected.get(name)!r}")


def default_epochs(kind: str, budget: int) -> int:
    """Passes over the budget: pretrain 1; finetune/scratch 10, or 3 from 6e9 bytes up."""
    if kind == Kind.PRETRAIN:
        return 1
    return 3 if budget >= LARGE_BUDGET_BYTES else 10


def run_epochs(cfg: TrainConfig, budget: int, steps_per_epoch: int) -> int:
    """Passes over the budget: the configured or default epochs, raised to reach min_steps."""
    epochs = cfg.epochs or default_epochs(cfg.kind, budget)
    return max(epochs, math.ceil(cfg.min_steps / steps_per_epoch))


def run_steps(cfg: TrainConfig, budget: int, steps_per_epoch: int) -> int:
    """Optimiser steps of the whole run: run_epochs x steps_per_epoch, capped by max_steps."""
    steps = run_epochs(cfg, budget, steps_per_epoch) * steps_per_epoch
    return min(steps, cfg.max_steps) if cfg.max_steps is not None else steps


@dataclass(frozen=True)
class RunLength:
    """How long a run is, in optimiser steps (each of ``cfg.batch_bytes`` bytes)."""

    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    evaluations: int  # dev evaluations of the whole run (fewer if it stops early)


def run_length(cfg: TrainConfig, budget: int, train_bytes: int | None = None) -> RunLength:
    """The one rule for a run's length: steps per epoch from the ``train_bytes`` trained on
    (default: the ``budget``, bytes), epochs raised to reach min_steps, capped by max_steps
    (:func:`run_steps`), the warmup of :func:`warmup_steps` and the dev evaluations of
    :func:`is_eval_step`. Training, the dry-run and the ETA all count with it.

    XferError if the bytes hold less than one batch."""
    n_bytes = budget if train_bytes is None else train_bytes
    n_pieces = n_bytes // cfg.seq_len
    steps_per_epoch = n_pieces // cfg.batch_size
    if steps_per_epoch < 1:
        raise XferError(f"a budget of {n_bytes} bytes holds {n_pieces} sequences of "
                        f"{cfg.seq_len} bytes, fewer than one batch of {cfg.batch_size}")
    total = run_steps(cfg, budget, steps_per_epoch)
    return RunLength(steps_per_epoch, total, warmup_steps(cfg, budget, total),
                     count_evaluations(cfg, steps_per_epoch, total))


def worker_micro_batch(batch_size: int, micro_batch_size: int, workers: int) -> int:
    """Sequences per forward pass on each of ``workers`` data-parallel workers: the
    micro_batch_size, or a worker's whole share (batch_size / workers) when that is smaller.
    XferError if the batch does not split evenly."""
    if batch_size % workers:
        raise XferError(f"batch_size {batch_size} is not divisible by {workers} workers")
    share = batch_size // workers
    micro = min(micro_batch_size, share)
    if share % micro:
        raise XferError(f"each of {workers} workers takes {share} sequences a step, "
                        f"not a multiple of micro_batch_size {micro_batch_size}")
    return micro


def is_eval_step(step: int, cfg: TrainConfig, steps_per_epoch: int, total_steps: int) -> bool:
    """Whether dev is evaluated after optimiser step ``step`` (1-based): at the end of each
    epoch (if ``eval_at_epoch_end``), every ``eval_every`` steps, and at the last step."""
    return ((cfg.eval_at_epoch_end and step % steps_per_epoch == 0) or step == total_steps
            or bool(cfg.eval_every and step % cfg.eval_every == 0))


def count_evaluations(cfg: TrainConfig, steps_per_epoch: int, total_steps: int) -> int:
    """Steps in 1..total_steps where :func:`is_eval_step` holds (inclusion-exclusion)."""
    every = [n for n, on in ((steps_per_epoch, cfg.eval_at_epoch_end),
                             (cfg.eval_every, cfg.eval_every > 0)) if on]
    count = sum(total_steps // n for n in every)
    if len(every) == 2:
        count -= total_steps // math.lcm(*every)
    return count + (not any(total_steps % n == 0 for n in every))


def peak_lr(cfg: TrainConfig) -> float:
    """The configured lr, else 2e-5 to finetune and 2e-4 for pretrain and scratch runs."""
    if cfg.lr is not None:
        return cfg.lr
    return 2e-5 if cfg.kind == Kind.FINETUNE else 2e-4


def warmup_steps(cfg: TrainConfig, budget: int, total_steps: int) -> int:
    """Linear-warmup length in optimiser steps.

    pretrain / scratch: the paper's 3000 of 11,444 pretrain steps, scaled to this run's steps.
    finetune: grows with the budget, one step per 2e6 bytes (0 below 2 MB, 3 at 6M, 3000 at 6B).
    An explicit ``cfg.warmup_steps`` wins. Never more than the run's steps.
    """
    if cfg.warmup_steps is not None:
        steps = cfg.warmup_steps
    elif cfg.kind == Kind.FINETUNE:
        steps = budget // FINETUNE_WARMUP_BYTES_PER_STEP
    else:
        steps = round(total_steps * PAPER_WARMUP_STEPS / PAPER_PRETRAIN_STEPS)
    return min(steps, total_steps)


def decays(cfg: TrainConfig) -> bool:
    """Whether the lr follows a cosine to min_lr: ``cfg.lr_decay``, else all kinds but finetune."""
    return cfg.kind != "finetune" if cfg.lr_decay is None else cfg.lr_decay


def lr_multiplier(step: int, *, warmup: int, total: int, floor: float, decay: bool) -> float:
    """Factor on the peak lr for optimiser step ``step`` (0-based).

    Linear warmup to 1 over ``warmup`` steps; then either constant 1 (``decay`` False) or a
    cosine from 1 down to ``floor`` (= min_lr / peak lr) at the last step.
    """
    if step < warmup:
        return (step + 1) / warmup
    if not decay:
        return 1.0
    span = max(total - warmup - 1, 1)
    progress = min((step - warmup) / span, 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
