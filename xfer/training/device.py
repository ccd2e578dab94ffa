"""Device choice: cpu, cuda, xla or xla:spmd (torch_xla imported only when asked for).

``xla:spmd`` is data parallel over every XLA device of the host (a TPU v2-8's 8 cores, or the
``CPU_NUM_DEVICES`` devices of XLA:CPU) by torch_xla's SPMD: the parameters are replicated, each
batch is split along its first dimension, and XLA inserts the gradient all-reduce; the step's
arithmetic is the one-device step's, so the global batch and the losses stay the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from xfer.errors import XferError
from xfer.memory import keep_freed_memory
from xfer.training.config import effective_precision

DEVICES = ("cpu", "cuda", "xla")


@dataclass(frozen=True)
class Device:
    """A resolved device: where tensors live, the autocast dtype (None: fp32), a step barrier."""

    kind: str
    torch_device: torch.device
    autocast_dtype: torch.dtype | None
    sync: Callable[[], None]
    shard: Callable[[torch.Tensor], None] | None = None
    replicas: int = 1

    def put(self, batch: torch.Tensor) -> torch.Tensor:
        """A batch of byte ids on this device (split over ``replicas`` devices along dim 0).

        On CUDA the copy is from pinned memory and asynchronous: no host sync per batch."""
        if self.kind == "cuda":
            batch = batch.pin_memory().to(self.torch_device, non_blocking=True)
        else:
            batch = batch.to(self.torch_device)
        if self.shard is not None:
            self.shard(batch)
        return batch

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for the forward pass (bf16 on accelerators), else nothing."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.torch_device.type, dtype=self.autocast_dtype)


def _no_sync() -> None:
    """Eager devices need no step barrier."""


def _xla(spmd: bool) -> tuple[torch.device, Callable[[], None], Callable | None, int]:
    """torch_xla's device and step barrier; with ``spmd``, a batch sharder over all devices."""
    try:
        import torch_xla
        import torch_xla.runtime as xr
    except ImportError:
        raise XferError("device 'xla' requested but torch_xla is not installed "
                        "(pip install 'xfer[tpu]')") from None
    if not spmd:
        return torch_xla.device(), torch_xla.sync, None, 1
    import numpy as np
    import torch_xla.distributed.spmd as xs

    count = xr.global_runtime_device_count()
    xr.use_spmd()  # before any XLA tensor exists; one virtual device stands for all of them
    mesh = xs.Mesh(np.arange(count), (count,), ("data",))

    def shard(batch: torch.Tensor) -> None:
        xs.mark_sharding(batch, mesh, ("data",) + (None,) * (batch.dim() - 1))

    return torch_xla.device(), torch_xla.sync, shard, count


def resolve_device(name: str, precision: str = "auto") -> Device:
    """The device named ``cpu``, ``cuda[:i]``, ``xla`` or ``xla:spmd``; XferError if absent.

    precision ``auto`` is bf16 autocast on cuda and xla, fp32 on cpu. On cpu it also applies
    :func:`keep_freed_memory` to this process.
    """
    kind = name.split(":")[0]
    if kind not in DEVICES or (kind == "xla" and name not in ("xla", "xla:spmd")):
        raise XferError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)} "
                        "(cuda:INDEX, xla:spmd)")
    sync, shard, replicas = _no_sync, None, 1
    if kind == "cpu":
        device = torch.device("cpu")
        keep_freed_memory()  # CPU training reuses its activations' memory every step
    elif kind == "cuda":
        if not torch.cuda.is_available():
            raise XferError(f"device {name!r} requested but torch sees no CUDA GPU")
        device = torch.device(name)
    else:
        device, sync, shard, replicas = _xla(spmd=name == "xla:spmd")
    use_bf16 = effective_precision(kind, precision) == "bf16"
    return Device(kind, device, torch.bfloat16 if use_bf16 else None, sync, shard, replicas)
