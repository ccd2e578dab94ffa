"""Data parallelism inside one run: N workers share every global batch, gradients all-reduced.

Worker ``r`` of ``N`` takes rows ``[r*B/N, (r+1)*B/N)`` of each global batch of ``B`` sequences,
so the batch (and every step's data) is the same whatever N. Its loss is its bytes' summed NLL
over the global batch's bytes, times N: DistributedDataParallel averages gradients over the N
workers, so the all-reduced gradient is the 1-worker gradient (up to float summation order).
The process group is torch.distributed's (gloo on CPU, NCCL on GPUs, torch_xla's backend on
TPUs), set up by whoever started the workers (Ray Train in sweeps); this module only uses it.

One worker, the default, is :data:`SINGLE`: every method is then the identity and nothing of
torch.distributed is touched, so a 1-worker run computes exactly what it did before.

Tested: gloo on CPU (real processes, and Ray Train workers). Written, not yet run: NCCL (the
worker's GPU is ``ray.train.torch.get_device()``) and XLA. For XLA, Ray 2.60's own TPU backend
(``tpu_dist``) loads ``torch_tpu``, not torch_xla; the torch_xla way is a process group made
with ``dist.init_process_group("xla", init_method="xla://")`` after importing
``torch_xla.distributed.xla_backend``, over which :meth:`Workers.wrap`'s DDP and the
all-reduces here run unchanged.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import torch

from xfer.training.config import worker_micro_batch


@dataclass(frozen=True)
class Workers:
    """This process's place among the run's data-parallel workers."""

    rank: int = 0
    world: int = 1

    @classmethod
    def from_process_group(cls) -> Workers:
        """Rank and size of the initialised default process group (one worker if none)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return SINGLE
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def is_main(self) -> bool:
        """Rank 0: the worker that writes checkpoints and results."""
        return self.rank == 0

    def micro_batch_size(self, batch_size: int, micro_batch_size: int) -> int:
        """Sequences per forward pass on this worker (:func:`worker_micro_batch`)."""
        return worker_micro_batch(batch_size, micro_batch_size, self.world)

    def rows(self, batch: np.ndarray) -> np.ndarray:
        """This worker's contiguous share of a global batch (piece indices)."""
        if self.world == 1:
            return batch
        share = len(batch) // self.world
        return batch[self.rank * share:(self.rank + 1) * share]

    def loss_divisor(self, batch_bytes: int) -> float | int:
        """What a worker divides its summed loss by: batch bytes / N (DDP averages over N)."""
        return batch_bytes if self.world == 1 else batch_bytes / self.world

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model as trained: DistributedDataParallel over the workers, or itself."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device = next(model.parameters()).device
        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def accumulating(self, model: torch.nn.Module, last: bool) -> contextlib.AbstractContextManager:
        """No gradient all-reduce on a micro-batch before the step's last one."""
        if self.world == 1 or last:
            return contextlib.nullcontext()
        return model.no_sync()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` (a tensor on this worker's device, e.g. float64 nats) summed elementwise
        over the workers, on the device: one all-reduce, nothing read to the host."""
        if self.world == 1:
            return values
        import torch.distributed as dist

        values = values.clone()
        dist.all_reduce(values)
        return values

    def from_main(self, value: Any) -> Any:
        """Rank 0's ``value`` on every worker (a picklable object)."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait until every worker is here (e.g. until rank 0 has written a checkpoint)."""
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


SINGLE = Workers()


def exit_worker() -> NoReturn:
    """End a worker process that owns its process group: destroy the group, flush, ``os._exit(0)``.

    For process entry points (``mp.spawn`` targets), not for Ray Train workers, whose processes
    Ray ends. The interpreter's own exit is skipped on purpose: the group's gloo run-loop threads
    outlive ``destroy_process_group`` and may still be releasing the last collective's tensors,
    which takes the GIL; a thread that takes the GIL while Python finalises is unwound and the
    process aborts (SIGABRT, "terminate called without an active exception").
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
