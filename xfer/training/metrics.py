"""Losses and held-out scores: NLL per byte (nats), the z-loss, perplexity and bits per byte."""

from __future__ import annotations

import math

import numpy as np
import torch

from xfer.data.vocab import PAD_ID
from xfer.training.batches import eval_batches
from xfer.training.config import TrainConfig
from xfer.training.device import Device
from xfer.training.parallel import SINGLE, Workers


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
             max_bytes: int | None = None, workers: Workers = SINGLE) -> tuple[float, int]:
    """Summed NLL (nats) over every byte of a split, and the number of bytes scored.

    With several workers each builds and scores only its own batches (every N-th, from its
    rank) and the sums are all-reduced. The sum stays on the device (float64; one graph per
    batch on XLA) and is read once at the end; the bytes scored are counted on the host."""
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device.torch_device)
    count = 0
    for inputs, targets in eval_batches(raw, cfg.seq_len, cfg.micro_batch_size, max_bytes,
                                        workers.rank, workers.world):
        scored = int((targets != PAD_ID).sum())  # padding is the flat tail of the last piece
        inputs, targets = device.put(inputs), device.put(targets)
        with device.autocast():
            logits = model(inputs)
        nll, _ = nll_and_lse(logits, targets)
        total += nll.reshape(-1)[:scored].sum().double()  # a fixed shape, unlike nll[mask]
        count += scored
        device.sync()  # XLA: this batch's graph now, not one graph over the whole split
    model.train()
    count_t = torch.tensor(count, dtype=torch.float64, device=device.torch_device)
    nats, count = workers.sum(torch.stack([total, count_t])).tolist()
    return nats, int(count)
