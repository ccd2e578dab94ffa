"""Device choice: cpu, cuda or xla (torch_xla imported only when asked for), one code path."""

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

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for the forward pass (bf16 on accelerators), else nothing."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.torch_device.type, dtype=self.autocast_dtype)


def _no_sync() -> None:
    """Eager devices need no step barrier."""


def resolve_device(name: str, precision: str = "auto") -> Device:
    """The device named ``cpu``, ``cuda[:i]`` or ``xla``; XferError if absent or unknown.

    precision ``auto`` is bf16 autocast on cuda and xla, fp32 on cpu. On cpu it also applies
    :func:`keep_freed_memory` to this process.
    """
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise XferError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    sync = _no_sync
    if kind == "cpu":
        device = torch.device("cpu")
        keep_freed_memory()  # CPU training reuses its activations' memory every step
    elif kind == "cuda":
        if not torch.cuda.is_available():
            raise XferError(f"device {name!r} requested but torch sees no CUDA GPU")
        device = torch.device(name)
    else:
        try:
            import torch_xla
            import torch_xla.core.xla_model as xm
        except ImportError:
            raise XferError("device 'xla' requested but torch_xla is not installed "
                            "(pip install 'xfer[tpu]')") from None
        device = torch_xla.device()
        sync = xm.mark_step
    use_bf16 = effective_precision(kind, precision) == "bf16"
    return Device(kind, device, torch.bfloat16 if use_bf16 else None, sync)
