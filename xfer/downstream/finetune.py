"""Downstream check (paper appendix): finetune a source model as a two-class pair classifier.

The byte decoder reads ``premise EOS hypothesis EOS``; the classifier pools the hidden state of
the **final position** (the closing EOS), applies dropout 0.1 and a linear layer to 2 logits.
Why the final position and not the mean: the decoder is causal, so only the last position has
attended to both sentences; a mean would mostly average states that never saw the hypothesis.
Training is plain cross-entropy with AdamW at a constant learning rate (the paper: 10 epochs,
lr 5e-5, batch 128, dropout 0.1); validation accuracy is measured before training and after
every epoch, and the best epoch's accuracy is the result.

**Position bias starts at zero** (``position_bias="zero"``, default): every classifier, pretrained
or scratch, starts with its relative-position bias tables at zero (position-neutral attention);
all other weights come from the checkpoint (or a fresh init). Why: LM pretraining teaches the
bias tables to favour short distances, so the pooled final state barely sees the premise, and a
small learning rate cannot undo that in a short finetune: pretrained sources stayed at chance
while scratch learned (default study, base/twin task; see this commit history). ``keep`` keeps the
initial tables (the behaviour before the switch).

Runs resume like :func:`xfer.training.run`: one checkpoint per epoch in ``out_dir/checkpoints``
(or ``resume_from``), the best epoch in ``out_dir/best``, ``out_dir/result.json`` when finished.
Tasks: see :mod:`xfer.downstream.tasks`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from xfer.analysis.transfer import SCRATCH
from xfer.data.vocab import EOS_ID, PAD_ID, encode
from xfer.downstream.tasks import (
    COLUMNS,
    build_translation_task,
    encode_labels,
    load_hub,
    load_local,
)
from xfer.errors import XferError
from xfer.io import atomic_write_json
from xfer.model import ByteLM, ModelConfig
from xfer.training import checkpoint as ckpt
from xfer.training.config import Kind, TrainConfig
from xfer.training.device import Device, resolve_device
from xfer.training.loop import Callback, make_optimizer

__all__ = ["DownstreamConfig", "PairClassifier", "build_translation_task", "load_task", "run"]

SOURCES = ("local", "hub")
POSITION_BIAS = ("zero", "keep")
KEEP_CHECKPOINTS = 2  # epoch checkpoints a downstream run keeps to resume from


@dataclass(frozen=True)
class DownstreamConfig:
    """One downstream finetune. ``task``: a local task folder (``source='local'``) or a Hugging
    Face dataset name (``source='hub'``, with ``hub_config``). ``columns`` maps our names
    (premise, hypothesis, label) to the task's, e.g. ``{"label": "entailment_judgment"}`` for
    ASSIN2. ``max_len`` is in bytes, including the two EOS; longer pairs are cut (the longer
    side first). ``micro_batch_size`` (None: the whole batch) only bounds memory. ``language`` is
    the task's language, reported beside the accuracy. ``position_bias``: ``zero`` starts the
    relative-position bias tables at zero, ``keep`` keeps the initial ones (module docstring)."""

    task: str
    language: str = ""
    source: str = "local"
    hub_config: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    train_split: str = "train"
    validation_split: str = "validation"
    epochs: int = 10
    lr: float = 5e-5
    batch_size: int = 128
    micro_batch_size: int | None = None
    max_len: int = 256
    dropout: float = 0.1
    position_bias: str = "zero"
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "cpu"
    precision: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise XferError(f"unknown task source {self.source!r}; choose one of "
                            f"{', '.join(SOURCES)}")
        unknown = sorted(set(self.columns) - set(COLUMNS))
        if unknown:
            raise XferError(f"downstream columns: unknown key(s) {', '.join(unknown)}; "
                            f"map {', '.join(COLUMNS)}")
        object.__setattr__(self, "columns", tuple(sorted(dict(self.columns).items())))
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise XferError(f"downstream {name} must be at least 1, got {getattr(self, name)}")
        if self.max_len < 4:
            raise XferError(f"downstream max_len must be at least 4 bytes, got {self.max_len}")
        if self.position_bias not in POSITION_BIAS:
            raise XferError(f"downstream position_bias must be one of {', '.join(POSITION_BIAS)}, "
                            f"got {self.position_bias!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise XferError(f"downstream dropout must be in [0, 1), got {self.dropout}")
        self.optimiser_config()  # validates lr, weight decay, batch sizes, precision

    @property
    def column_map(self) -> dict[str, str]:
        """Our column name -> the task's column name."""
        return dict(self.columns)

    def optimiser_config(self) -> TrainConfig:
        """The :class:`TrainConfig` this run's AdamW, clipping and device come from."""
        return TrainConfig(kind=Kind.FINETUNE, seq_len=self.max_len, batch_size=self.batch_size,
                           micro_batch_size=self.micro_batch_size or self.batch_size, lr=self.lr,
                           warmup_steps=0, weight_decay=self.weight_decay, z_loss=0.0,
                           device=self.device, precision=self.precision, threads=self.threads,
                           seed=self.seed)

    def to_dict(self) -> dict:
        """Plain JSON-able dict (inverse: :meth:`from_dict`)."""
        return {**asdict(self), "columns": self.column_map}

    @classmethod
    def from_dict(cls, data: Mapping) -> DownstreamConfig:
        """Rebuild from :meth:`to_dict` (or a YAML section); unknown keys are an XferError."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise XferError(f"unknown downstream config keys: {', '.join(unknown)}")
        if "task" not in data:
            raise XferError("downstream config needs a task")
        return cls(**data)


def load_task(cfg: DownstreamConfig) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Train and validation pairs (labels 0/1) and the original label names, in that order."""
    if cfg.source == "local":
        train, val = (load_local(Path(cfg.task), split, cfg.column_map)
                      for split in (cfg.train_split, cfg.validation_split))
    else:
        train, val = (load_hub(cfg.task, cfg.hub_config, split, cfg.column_map)
                      for split in (cfg.train_split, cfg.validation_split))
    labels, train, val = encode_labels(train, val)
    return train, val, labels


def truncate_pair(n_premise: int, n_hypothesis: int, budget: int) -> tuple[int, int]:
    """Bytes kept of each side so both fit in ``budget``: the longer side is cut first, and
    neither is cut below half the budget while the other is longer."""
    if n_premise + n_hypothesis <= budget:
        return n_premise, n_hypothesis
    keep_premise = min(n_premise, max(budget // 2, budget - n_hypothesis))
    return keep_premise, min(n_hypothesis, budget - keep_premise)


def encode_pairs(frame: pd.DataFrame, max_len: int) -> tuple[torch.Tensor, torch.Tensor,
                                                              torch.Tensor]:
    """ids [N, max_len] of ``premise EOS hypothesis EOS`` (PAD after), lengths [N], labels [N]."""
    ids = np.full((len(frame), max_len), PAD_ID, dtype=np.int64)
    lengths = np.zeros(len(frame), dtype=np.int64)
    for row, (premise, hypothesis) in enumerate(zip(frame["premise"], frame["hypothesis"],
                                                    strict=True)):
        p, h = encode(premise), encode(hypothesis)
        keep_p, keep_h = truncate_pair(len(p), len(h), max_len - 2)
        seq = p[:keep_p] + [EOS_ID] + h[:keep_h] + [EOS_ID]
        ids[row, :len(seq)] = seq
        lengths[row] = len(seq)
    return (torch.from_numpy(ids), torch.from_numpy(lengths),
            torch.tensor(frame["label"].to_numpy(), dtype=torch.long))


def final_position(hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The hidden state [B, d] at each sequence's last real position (its closing EOS)."""
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), lengths - 1]


class PairClassifier(nn.Module):
    """ByteLM + dropout + linear head on the final position: (ids, lengths) -> 2 logits."""

    def __init__(self, cfg: ModelConfig, dropout: float = 0.1) -> None:
        super().__init__()
        self.cfg = cfg  # lets xfer.training.checkpoint check configs on save/load
        self.lm = ByteLM(cfg)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cfg.d_model, 2)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    @torch.no_grad()
    def zero_position_bias(self) -> None:
        """Set every layer's relative-position bias table to zero (position-neutral attention)."""
        for block in self.lm.blocks:
            block.rel_bias.weight.zero_()

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        pooled = final_position(self.lm.hidden_states(ids), lengths)
        return self.head(self.dropout(pooled)).float()


def batch_slice(data: tuple[torch.Tensor, ...], index: torch.Tensor | slice,
                device: Device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ids cut to the batch's longest pair, lengths and labels, on the device."""
    ids, lengths, labels = (t[index] for t in data)
    ids = ids[:, :int(lengths.max())]
    return tuple(t.to(device.torch_device) for t in (ids, lengths, labels))


@torch.no_grad()
def accuracy(net: PairClassifier, data: tuple[torch.Tensor, ...], batch_size: int,
             device: Device) -> float:
    """Share of pairs whose argmax logit is the label (0..1)."""
    net.eval()
    correct = 0
    for start in range(0, len(data[0]), batch_size):
        ids, lengths, labels = batch_slice(data, slice(start, start + batch_size), device)
        with device.autocast():
            logits = net(ids, lengths)
        correct += int((logits.argmax(-1) == labels).sum())
    net.train()
    return correct / len(data[0])


def init_name(init_checkpoint: Path | None) -> str:
    """``scratch``, or the language the init checkpoint was trained on (its meta ``lang``)."""
    if init_checkpoint is None:
        return SCRATCH
    return str(ckpt.read_meta(Path(init_checkpoint)).get("lang") or Path(init_checkpoint).name)


def _check_same(meta: dict, model: ModelConfig, cfg: DownstreamConfig, init: str,
                where: Path) -> None:
    """The training runs' check, on the downstream settings (older runs kept the bias)."""
    ckpt.check_run_settings(meta, model, "downstream", cfg.to_dict(), where,
                            defaults={"position_bias": "keep"}, init=init)


def run(model: ModelConfig | None, cfg: DownstreamConfig, out_dir: Path, *,
        init_checkpoint: Path | None = None, resume_from: Path | None = None,
        init: str | None = None, callbacks: Sequence[Callback] = ()) -> dict:
    """Finetune a classifier from ``init_checkpoint`` (None: from scratch) on ``cfg``'s task.

    ``model`` may be None when ``init_checkpoint`` is given (its config is used). ``init`` names
    the source in the result (default: the checkpoint's language, or ``scratch``). Returns
    ``accuracy`` (validation, best epoch, 0..1), ``accuracy_before`` (before training),
    ``best_epoch``, ``epochs``, ``steps``, ``train_loss`` (nats/pair, last epoch), ``wall_s``,
    ``init``, ``language``, ``task``, ``n_train``, ``n_validation``, ``labels``,
    ``best_checkpoint``. A finished run (``out_dir/result.json``) is returned as is.
    """
    out_dir = Path(out_dir)
    if model is None:
        if init_checkpoint is None:
            raise XferError("a downstream run from scratch needs a model config")
        model = ModelConfig.from_dict(ckpt.read_meta(Path(init_checkpoint))["model"])
    init = init or init_name(init_checkpoint)
    if (out_dir / ckpt.RESULT_FILE).is_file():
        _check_same(ckpt.read_meta(out_dir / "best"), model, cfg, init, out_dir)
        return json.loads((out_dir / ckpt.RESULT_FILE).read_text())
    tcfg = cfg.optimiser_config()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device, cfg.precision)
    train_df, val_df, labels = load_task(cfg)
    train, val = encode_pairs(train_df, cfg.max_len), encode_pairs(val_df, cfg.max_len)

    torch.manual_seed(cfg.seed)
    net = PairClassifier(model, cfg.dropout)
    if init_checkpoint is not None:
        ckpt.load_weights(net.lm, Path(init_checkpoint))
    if cfg.position_bias == "zero":
        net.zero_position_bias()
    net.to(device.torch_device)
    optimizer = make_optimizer(net, tcfg)
    ckpt_dir = out_dir / ckpt.STEPS_DIR
    resume = ckpt.resume_point(out_dir, resume_from)
    if resume is not None:
        meta = ckpt.read_meta(resume)
        _check_same(meta, model, cfg, init, resume)
        ckpt.load_weights(net, resume)
        trainer = ckpt.load_state(resume, ckpt.TRAINER_FILE)
        optimizer.load_state_dict(trainer["optimizer"])
        torch.set_rng_state(trainer["rng"])
        state = meta["state"]
    else:
        state = {"epoch": 0, "step": 0, "best_accuracy": -1.0, "best_epoch": None,
                 "wall_s": 0.0, "history": [],
                 "accuracy_before": accuracy(net, val, tcfg.micro_batch_size, device)}

    def meta_now() -> dict:
        return {"model": model.to_dict(), "downstream": cfg.to_dict(), "init": init,
                "state": state}

    start, wall_before = time.perf_counter(), state["wall_s"]
    n, micro = len(train[0]), tcfg.micro_batch_size
    net.train()
    while state["epoch"] < cfg.epochs:
        epoch = state["epoch"]
        order = torch.from_numpy(np.random.default_rng([cfg.seed, epoch]).permutation(n))
        loss_sum = 0.0
        for first in range(0, n, cfg.batch_size):
            batch = order[first:first + cfg.batch_size]
            batch_loss = 0.0
            for m in range(0, len(batch), micro):
                ids, lengths, target = batch_slice(train, batch[m:m + micro], device)
                with device.autocast():
                    logits = net(ids, lengths)
                loss = F.cross_entropy(logits, target, reduction="sum")
                (loss / len(batch)).backward()
                batch_loss += float(loss.detach())
            loss_sum += batch_loss
            torch.nn.utils.clip_grad_norm_(net.parameters(), tcfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            device.sync()
            state["step"] += 1
            for cb in callbacks:
                cb.on_step({"step": state["step"], "epoch": epoch + (first + len(batch)) / n,
                            "train_loss": batch_loss / len(batch), "lr": cfg.lr})
        train_loss = loss_sum / n
        if not math.isfinite(train_loss):
            raise XferError(f"non-finite training loss in downstream epoch {epoch + 1}")
        acc = accuracy(net, val, micro, device)
        state["epoch"] = epoch + 1
        state["wall_s"] = wall_before + time.perf_counter() - start
        state["history"].append({"epoch": epoch + 1, "train_loss": train_loss, "accuracy": acc})
        if acc > state["best_accuracy"]:
            state["best_accuracy"], state["best_epoch"] = acc, epoch + 1
            ckpt.save_checkpoint(out_dir / "best", net, meta_now())
        written = ckpt.save_checkpoint(
            ckpt.step_dir(ckpt_dir, state["step"]), net, meta_now(),
            {"optimizer": optimizer.state_dict(), "rng": torch.get_rng_state()})
        ckpt.prune(ckpt_dir, KEEP_CHECKPOINTS)
        metrics = {"epoch": epoch + 1, "step": state["step"], "train_loss": train_loss,
                   "accuracy": acc, "best_accuracy": state["best_accuracy"],
                   "accuracy_before": state["accuracy_before"]}
        for cb in callbacks:
            cb.on_eval(metrics, written)
    result = {"accuracy": state["best_accuracy"], "accuracy_before": state["accuracy_before"],
              "best_epoch": state["best_epoch"], "epochs": state["epoch"], "steps": state["step"],
              "train_loss": state["history"][-1]["train_loss"], "wall_s": state["wall_s"],
              "init": init, "language": cfg.language, "task": cfg.task, "n_train": n,
              "n_validation": len(val[0]), "labels": labels,
              "best_checkpoint": str(out_dir / "best")}
    atomic_write_json(out_dir / ckpt.RESULT_FILE, result, indent=2, sort_keys=True)
    return result
