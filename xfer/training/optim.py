"""The optimiser (AdamW, decay on matrices only) and its learning-rate schedule."""

from __future__ import annotations

from functools import partial

import torch

from xfer.training.config import RunLength, TrainConfig, decays, lr_multiplier, peak_lr

FUSED_ADAMW_DEVICES = ("cpu", "cuda")


def fused_option(model: torch.nn.Module) -> dict:
    """``{"fused": True}`` where every parameter is on a device with PyTorch's fused AdamW."""
    fused = all(p.device.type in FUSED_ADAMW_DEVICES for p in model.parameters())
    return {"fused": True} if fused else {}


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices (projections, embedding), not on norms or bias tables.

    On cpu and cuda it is PyTorch's fused AdamW (one vectorised kernel for all parameters
    instead of a loop over them; the step-time difference is in the commit that chose it)."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "rel_bias" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "rel_bias" not in n)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": other, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=peak_lr(cfg), betas=(cfg.beta1, cfg.beta2),
                             **fused_option(model))


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                   length: RunLength) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup, then cosine to min_lr (constant for finetunes unless ``cfg.lr_decay``
    says otherwise: :func:`decays`): :func:`lr_multiplier`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, partial(
        lr_multiplier, warmup=length.warmup_steps, total=length.total_steps,
        floor=cfg.min_lr / peak_lr(cfg), decay=decays(cfg)))
