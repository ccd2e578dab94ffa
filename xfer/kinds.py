"""What a trial is (:class:`Kind`): one small module below every package, so the model, training,
analysis and downstream packages and the sweeps all name kinds without importing each other."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What a trial does: train from scratch on a source (pretrain) or on a target budget
    (scratch), continue a pretrain on a target budget (finetune), or classify pairs (downstream).
    A ``str``: tables, JSON and trial keys hold its value."""

    PRETRAIN = "pretrain"
    SCRATCH = "scratch"
    FINETUNE = "finetune"
    DOWNSTREAM = "downstream"


KINDS = (Kind.PRETRAIN, Kind.SCRATCH, Kind.FINETUNE)  # the kinds one training run can be
