"""Cost of a study before it runs: parameters, bytes and FLOPs per trial, device-hours."""

from __future__ import annotations

from dataclasses import dataclass

from sweeps.config import StudyConfig
from sweeps.trials import TrialSpec
from xfer.training.config import Kind, RunLength, TrainConfig, run_length


def parameter_count(model_cfg: object) -> int:
    """The model's parameters, counted on PyTorch's meta device (no memory is allocated)."""
    import torch

    from xfer.model import ByteLM

    with torch.device("meta"):
        return int(ByteLM(model_cfg).num_parameters())


def length_of(trial: TrialSpec, cfg: TrainConfig) -> RunLength:
    """The trial's run length by training's own rule (epochs raised to min_steps, capped by
    max_steps), counted on its budget; an early stop can only shorten it."""
    return run_length(cfg, trial.budget)


def study_planned_bytes(study: StudyConfig, trial: TrialSpec) -> int:
    """Bytes ``trial`` of ``study`` trains on (downstream: pairs x epochs x max_len, a bound)."""
    if trial.kind == Kind.DOWNSTREAM:
        return study.downstream.planned_pair_bytes()
    return planned_bytes(trial, study.train[trial.kind])


def planned_bytes(trial: TrialSpec, cfg: TrainConfig) -> int:
    """Bytes the trial trains on: its optimiser steps x batch bytes (:func:`length_of`)."""
    return length_of(trial, cfg).total_steps * cfg.batch_bytes


def train_flops_per_byte(n_params: int, model_cfg: object, seq_len: int) -> float:
    """FLOPs to train on one byte (forward + backward): 6 N for the weights plus
    6 L T d_attn for causal attention scores and values (Kaplan et al.'s count, halved for the
    causal mask)."""
    d_attn = model_cfg.n_heads * model_cfg.d_head
    return 6.0 * n_params + 6.0 * model_cfg.n_layers * seq_len * d_attn


def eval_bytes(trial: TrialSpec, cfg: TrainConfig, dev_bytes: int, test_bytes: int) -> int:
    """Bytes read by evaluations: dev (up to eval_max_bytes) at each of the run's
    evaluations, then the best checkpoint on all of dev and test."""
    dev = min(dev_bytes, cfg.eval_max_bytes or dev_bytes)
    return length_of(trial, cfg).evaluations * dev + dev_bytes + test_bytes


@dataclass(frozen=True)
class TrialCost:
    """One trial's bytes trained and FLOPs (training plus evaluation, forward = 1/3 of a step)."""

    trial: TrialSpec
    train_bytes: int
    flops: float


def trial_costs(study: StudyConfig, trials: list[TrialSpec], n_params: int) -> list[TrialCost]:
    """Cost of every trial under the study's model and training configs."""
    out = []
    for trial in trials:
        if trial.kind == Kind.DOWNSTREAM:  # classifier steps: forward + backward on pairs
            n = study.downstream.planned_pair_bytes()
            per_byte = train_flops_per_byte(n_params, study.model,
                                            study.downstream.classifier.max_len)
            out.append(TrialCost(trial, n, per_byte * n))
            continue
        cfg = study.train[trial.kind]
        per_byte = train_flops_per_byte(n_params, study.model, cfg.seq_len)
        n = planned_bytes(trial, cfg)
        flops = per_byte * n + per_byte / 3 * eval_bytes(
            trial, cfg, study.data.dev_bytes, study.data.test_bytes)
        out.append(TrialCost(trial, n, flops))
    return out


def device_hours(flops: float, study: StudyConfig) -> float:
    """Hours on one configured device at its peak FLOP/s times the assumed utilisation."""
    return flops / (study.estimate.peak_flops * study.estimate.utilisation) / 3600.0


def trial_hours(flops: float, study: StudyConfig, kind: str) -> float:
    """Wall hours of one trial: its device-hours shared by the trial's data-parallel workers
    (training trials; downstream trials run on one), at perfect scaling."""
    workers = 1 if kind == Kind.DOWNSTREAM else study.resources.workers_per_trial
    return device_hours(flops, study) / workers
