"""One training run: pretrain, finetune or scratch, on cpu, cuda or xla, resumable.

The implementation lives in :mod:`xfer.training`; this module is the stable import point.
"""

from xfer.training.checkpoint import load_model
from xfer.training.config import TrainConfig, default_epochs, lr_multiplier, warmup_steps
from xfer.training.device import resolve_device
from xfer.training.loop import Callback, ConsoleProgress, RunResult, evaluate, run

__all__ = ["Callback", "ConsoleProgress", "RunResult", "TrainConfig", "default_epochs",
           "evaluate", "load_model", "lr_multiplier", "resolve_device", "run", "warmup_steps"]
