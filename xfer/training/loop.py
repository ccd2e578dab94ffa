"""One training run (pretrain, finetune or scratch): train, evaluate, keep the best, resume."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from xfer.data import load_split
from xfer.data.vocab import PAD_ID
from xfer.errors import XferError
from xfer.io import atomic_write_json
from xfer.model import ByteLM, ModelConfig
from xfer.training import checkpoint as ckpt
from xfer.training.batches import epoch_order, eval_batches, load_text_eval, make_batch
from xfer.training.config import (
    TrainConfig,
    check_same_settings,
    decays,
    lr_multiplier,
    peak_lr,
    run_steps,
    warmup_steps,
)
from xfer.training.device import Device, resolve_device


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
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Flat dict: the fields above plus ``<name>_perplexity/_bits_per_byte/_total_bits``."""
        data = {k: v for k, v in self.__dict__.items() if k != "extra"}
        return {**data, **self.extra}

    @classmethod
    def from_dict(cls, data: dict) -> RunResult:
        names = set(cls.__dataclass_fields__) - {"extra"}
        return cls(**{k: data[k] for k in names},
                   extra={k: v for k, v in data.items() if k not in names})


def nll_and_lse(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position negative log-likelihood (nats) and log-partition of fp32 logits."""
    logits = logits.float()
    lse = torch.logsumexp(logits, dim=-1)
    return lse - logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1), lse


def z_loss_term(lse: torch.Tensor, weight: float) -> torch.Tensor:
    """PaLM/T5X z-loss: weight x log(Z)^2 per position, pulling the softmax normaliser to 1."""
    return weight * lse.square()


def nats_to_metrics(nats: float, count: int, prefix: str) -> dict[str, float]:
    """Perplexity = exp(mean nats/byte), bits/byte = mean / ln 2, total bits = sum / ln 2."""
    mean = nats / max(count, 1)
    return {f"{prefix}_perplexity": math.exp(mean), f"{prefix}_bits_per_byte": mean / math.log(2),
            f"{prefix}_total_bits": nats / math.log(2), f"{prefix}_bytes": count}


@torch.no_grad()
def evaluate(model: torch.nn.Module, raw: np.ndarray, cfg: TrainConfig, device: Device,
             max_bytes: int | None = None) -> tuple[float, int]:
    """Summed NLL (nats) over every byte of a split, and the number of bytes scored."""
    model.eval()
    total, count = 0.0, 0
    for inputs, targets in eval_batches(raw, cfg.seq_len, cfg.micro_batch_size, max_bytes):
        inputs, targets = inputs.to(device.torch_device), targets.to(device.torch_device)
        with device.autocast():
            logits = model(inputs)
        nll, _ = nll_and_lse(logits, targets)
        mask = targets != PAD_ID
        total += float(nll[mask].sum())
        count += int(mask.sum())
    model.train()
    return total, count


FUSED_ADAMW_DEVICES = ("cpu", "cuda")


def fused_option(model: torch.nn.Module) -> dict:
    """``{"fused": True}`` where every parameter is on a device with PyTorch's fused AdamW."""
    fused = all(p.device.type in FUSED_ADAMW_DEVICES for p in model.parameters())
    return {"fused": True} if fused else {}


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices (projections, embedding), not on norms or bias tables.

    On cpu and cuda it is PyTorch's fused AdamW (one vectorised kernel for all parameters;
    the paper model's step on 2 CPU threads: 35 ms, against 170-240 ms for the default loop
    over parameters)."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "rel_bias" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "rel_bias" not in n)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": other, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=peak_lr(cfg), betas=(cfg.beta1, cfg.beta2),
                             **fused_option(model))


def _rng_state() -> dict:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _check_same_settings(meta: dict, model_cfg: ModelConfig, cfg: TrainConfig, where: Path) -> None:
    """A checkpoint/result of other settings may not be continued: XferError naming the key."""
    if ModelConfig.from_dict(meta["model"]) != model_cfg:
        raise XferError(f"{where} was made with model config {meta['model'].get('name')!r}, "
                        f"not {model_cfg.name!r}")
    # a key missing from an older checkpoint had its default's behaviour (fields are added so)
    saved = {**meta, "train": {**TrainConfig.defaults(), **meta["train"]}}
    check_same_settings(saved, "train", cfg.to_dict(), where)


def run(model: ModelConfig, cfg: TrainConfig, data_dir: Path, lang: str, budget: int,
        out_dir: Path, *, init_checkpoint: Path | None = None, resume_from: Path | None = None,
        extra_eval: dict[str, Path] | None = None,
        callbacks: Sequence[Callback] = ()) -> RunResult:
    """Train on the first ``budget`` bytes of ``lang``'s train split; return best-dev metrics.

    Resumes from ``resume_from`` or from the newest checkpoint in ``out_dir/checkpoints``;
    a finished run (``out_dir/result.json``) is returned as is.
    """
    out_dir = Path(out_dir)
    if (out_dir / ckpt.RESULT_FILE).is_file():
        meta = ckpt.read_meta(out_dir / "best")
        _check_same_settings(meta, model, cfg, out_dir)
        return RunResult.from_dict(json.loads((out_dir / ckpt.RESULT_FILE).read_text()))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device, cfg.precision)
    train_raw = load_split(data_dir, lang, "train", budget)
    dev_raw = load_split(data_dir, lang, "dev")
    n_pieces = len(train_raw) // cfg.seq_len
    steps_per_epoch = n_pieces // cfg.batch_size
    if steps_per_epoch < 1:
        raise XferError(f"{lang} budget of {budget} bytes holds {n_pieces} sequences of "
                        f"{cfg.seq_len} bytes, fewer than one batch of {cfg.batch_size}")
    total_steps = run_steps(cfg, budget, steps_per_epoch)
    warmup = warmup_steps(cfg, budget, total_steps)

    torch.manual_seed(cfg.seed)
    net = ByteLM(model)
    if init_checkpoint is not None:
        ckpt.load_weights(net, Path(init_checkpoint))
    net.to(device.torch_device)
    optimizer = make_optimizer(net, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(
        lr_multiplier, warmup=warmup, total=total_steps, floor=cfg.min_lr / peak_lr(cfg),
        decay=decays(cfg)))
    state = {"step": 0, "best_dev_loss": math.inf, "best_step": None, "wall_s": 0.0,
             "history": [], "evals_since_best": 0, "stopped_early": False}
    ckpt_dir = out_dir / "checkpoints"
    resume = Path(resume_from) if resume_from else (ckpt.list_checkpoints(ckpt_dir) or [None])[-1]
    if resume is not None:
        meta = ckpt.read_meta(resume)
        _check_same_settings(meta, model, cfg, resume)
        ckpt.load_weights(net, resume)
        trainer = ckpt.load_state(resume, ckpt.TRAINER_FILE)
        optimizer.load_state_dict(trainer["optimizer"])
        scheduler.load_state_dict(trainer["scheduler"])
        torch.set_rng_state(trainer["rng"]["cpu"])
        if "cuda" in trainer["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(trainer["rng"]["cuda"])
        state = {"evals_since_best": 0, "stopped_early": False, **meta["state"]}
    step_fn = torch.compile(net) if cfg.compile else net

    def meta_now() -> dict:
        return {"model": model.to_dict(), "train": cfg.to_dict(), "lang": lang,
                "budget": budget, "state": state}

    def save(path: Path) -> Path:
        trainer = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                   "rng": _rng_state()}
        return ckpt.save_checkpoint(path, net, meta_now(), trainer)

    micro_steps = cfg.batch_size // cfg.micro_batch_size
    session_start, session_bytes = time.perf_counter(), 0
    wall_before = state["wall_s"]
    net.train()
    while state["step"] < total_steps and not state["stopped_early"]:
        step = state["step"]
        epoch, offset = divmod(step, steps_per_epoch)
        order = epoch_order(n_pieces, cfg.seed, epoch)[offset * cfg.batch_size:
                                                        (offset + 1) * cfg.batch_size]
        loss_sum = 0.0
        for micro in range(micro_steps):
            pieces = order[micro * cfg.micro_batch_size:(micro + 1) * cfg.micro_batch_size]
            inputs, targets = (t.to(device.torch_device)
                               for t in make_batch(train_raw, pieces, cfg.seq_len))
            with device.autocast():
                logits = step_fn(inputs)
            nll, lse = nll_and_lse(logits, targets)
            loss = (nll + z_loss_term(lse, cfg.z_loss)).sum() / cfg.batch_bytes
            loss.backward()
            loss_sum += float(nll.detach().sum())
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        train_loss = loss_sum / cfg.batch_bytes
        if not math.isfinite(train_loss):
            last = ckpt.list_checkpoints(ckpt_dir)
            raise XferError(f"non-finite training loss at step {step + 1}; last good checkpoint: "
                            f"{last[-1] if last else 'none'}")
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        device.sync()
        state["step"] = step = step + 1
        session_bytes += cfg.batch_bytes
        state["wall_s"] = wall_before + time.perf_counter() - session_start
        bytes_seen = step * cfg.batch_bytes
        for cb in callbacks:
            cb.on_step({"step": step, "epoch": step / steps_per_epoch, "train_loss": train_loss,
                        "lr": lr, "bytes_seen": bytes_seen})
        is_eval = ((cfg.eval_at_epoch_end and step % steps_per_epoch == 0) or step == total_steps
                   or (cfg.eval_every and step % cfg.eval_every == 0))
        if is_eval:
            nats, count = evaluate(step_fn, dev_raw, cfg, device, cfg.eval_max_bytes)
            dev_loss = nats / count
            metrics = {"step": step, "epoch": step / steps_per_epoch, "train_loss": train_loss,
                       "dev_loss": dev_loss, "lr": lr, "bytes_seen": bytes_seen,
                       **nats_to_metrics(nats, count, "dev"),
                       "bytes_per_s": session_bytes / (time.perf_counter() - session_start)}
            state["history"].append({k: metrics[k] for k in ("step", "train_loss", "dev_loss")})
            if dev_loss < state["best_dev_loss"]:
                state["best_dev_loss"], state["best_step"] = dev_loss, step
                state["evals_since_best"] = 0
                ckpt.save_checkpoint(out_dir / "best", net, meta_now())
            else:
                state["evals_since_best"] += 1
            state["stopped_early"] = should_stop(state["evals_since_best"], step, cfg)
            metrics["best_dev_perplexity"] = math.exp(state["best_dev_loss"])
            metrics["stopped_early"] = state["stopped_early"]
        if is_eval or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
            written = save(ckpt.step_dir(ckpt_dir, step))
            ckpt.prune(ckpt_dir, cfg.keep_checkpoints)
        if is_eval:
            for cb in callbacks:
                cb.on_eval(metrics, written)
    return _finish(net, cfg, device, out_dir, state, steps_per_epoch, lang, data_dir, extra_eval)


def should_stop(evals_since_best: int, step: int, cfg: TrainConfig) -> bool:
    """Early stop: ``patience`` evaluations in a row without a new best, at or after min_steps."""
    return 0 < cfg.patience <= evals_since_best and step >= cfg.min_steps


def _finish(net: ByteLM, cfg: TrainConfig, device: Device, out_dir: Path, state: dict,
            steps_per_epoch: int, lang: str, data_dir: Path,
            extra_eval: dict[str, Path] | None) -> RunResult:
    """Score the best checkpoint on dev, test and the extra sets; write result.json."""
    best = out_dir / "best"
    ckpt.load_weights(net, best)
    net.to(device.torch_device)
    scores = {}
    sets = {"dev": load_split(data_dir, lang, "dev"), "test": load_split(data_dir, lang, "test")}
    sets.update({name: load_text_eval(path) for name, path in (extra_eval or {}).items()})
    for name, raw in sets.items():
        scores.update(nats_to_metrics(*evaluate(net, raw, cfg, device), name))
    bytes_seen = state["step"] * cfg.batch_bytes
    result = RunResult(
        dev_perplexity=scores.pop("dev_perplexity"), test_perplexity=scores.pop("test_perplexity"),
        dev_bits_per_byte=scores.pop("dev_bits_per_byte"),
        test_bits_per_byte=scores.pop("test_bits_per_byte"), bytes_seen=bytes_seen,
        steps=state["step"], epochs=state["step"] / steps_per_epoch, wall_s=state["wall_s"],
        bytes_per_s=bytes_seen / max(state["wall_s"], 1e-9), best_checkpoint=str(best),
        extra={k: v for k, v in scores.items() if not k.startswith(("dev_", "test_"))})
    atomic_write_json(out_dir / ckpt.RESULT_FILE, result.to_dict(), indent=2, sort_keys=True)
    return result
