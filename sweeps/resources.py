"""What one trial asks of the cluster: its data-parallel workers and each worker's CPUs, GPUs
and TPUs (a study config's ``resources:`` section), and the checks of that section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xfer.errors import XferError
from xfer.training.config import worker_micro_batch

DRIVER_CPUS = 0.01  # the Tune trial that starts a trial's Ray Train workers and waits for them


@dataclass(frozen=True)
class Resources:
    """What one trial asks of the cluster. A trial trains on ``workers_per_trial`` data-parallel
    workers (Ray Train inside the Tune trial; 1: the trial's own process, no Ray Train). Each
    worker has ``*_per_worker`` CPUs (its torch threads), GPUs and TPUs (Ray's ``TPU``
    resource); unset, a worker gets its share of ``*_per_trial`` (the trial's total; give one
    of the two spellings). ``tpu_topology`` and ``tpu_accelerator_type`` (e.g. ``2x2``,
    ``TPU-V4``) name the TPU slice Ray Train reserves when TPU workers are more than one.
    ``max_concurrent`` 0 means as many trials as the cluster fits."""

    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    tpus_per_trial: float | None = None
    max_concurrent: int = 0
    workers_per_trial: int = 1
    cpus_per_worker: float | None = None
    gpus_per_worker: float | None = None
    tpus_per_worker: float | None = None
    tpu_topology: str | None = None
    tpu_accelerator_type: str | None = None

    def per_worker(self) -> dict[str, float]:
        """Ray resources of one worker: ``CPU``, ``GPU``, ``TPU`` (unset: 1 CPU, nothing else)."""
        out = {}
        for key, name in (("CPU", "cpus"), ("GPU", "gpus"), ("TPU", "tpus")):
            worker = getattr(self, f"{name}_per_worker")
            trial = getattr(self, f"{name}_per_trial")
            if worker is None:
                worker = (1.0 if key == "CPU" else 0.0) if trial is None else (
                    trial / self.workers_per_trial)
            out[key] = worker
        return out

    def per_trial(self) -> dict[str, float]:
        """Ray resources a training trial holds in all: its workers' (N > 1: plus the Tune
        trial's own light driver, :data:`DRIVER_CPUS`)."""
        out = {k: v * self.workers_per_trial for k, v in self.per_worker().items()}
        if self.workers_per_trial > 1:
            out["CPU"] += DRIVER_CPUS
        return out


def check_resources(res: Resources) -> Resources:
    """At least one worker with positive CPUs; no negative GPUs, TPUs or concurrency; a
    resource given per trial or per worker, not both."""
    if res.workers_per_trial < 1:
        raise XferError(f"resources.workers_per_trial: must be 1 or more, got "
                        f"{res.workers_per_trial}")
    for name in ("cpus", "gpus", "tpus"):
        trial, worker = getattr(res, f"{name}_per_trial"), getattr(res, f"{name}_per_worker")
        if trial is not None and worker is not None:
            raise XferError(f"resources: give {name}_per_trial or {name}_per_worker, not both")
        for label, value in ((f"{name}_per_trial", trial), (f"{name}_per_worker", worker)):
            if value is not None and value <= 0 and (name == "cpus" or value < 0):
                bound = "more than 0" if name == "cpus" else "0 or more"
                raise XferError(f"resources.{label}: must be {bound}, got {value}")
    if res.max_concurrent < 0:
        raise XferError(f"resources.max_concurrent: must be 0 or more, got {res.max_concurrent}")
    return res


def check_workers(train: dict[str, Any], res: Resources) -> None:
    """Each kind's batch splits evenly over the trial's workers (one line if not)."""
    for kind, cfg in train.items():
        try:
            worker_micro_batch(cfg.batch_size, cfg.micro_batch_size, res.workers_per_trial)
        except XferError as exc:
            raise XferError(f"train.{kind}: {exc} (resources.workers_per_trial)") from None
