"""One training run of the byte-level decoder (pretrain, finetune or scratch) on cpu, cuda or xla,
resumable, independent of Ray: config, batches, the loop, checkpoints, devices and ``xfer train``.
"""

from xfer.training.checkpoint import load_model
from xfer.training.config import TrainConfig, default_epochs, lr_multiplier, warmup_steps
from xfer.training.device import resolve_device
from xfer.training.loop import Callback, ConsoleProgress, RunResult, evaluate, run

__all__ = ["Callback", "ConsoleProgress", "RunResult", "TrainConfig", "default_epochs",
           "evaluate", "load_model", "lr_multiplier", "resolve_device", "run", "warmup_steps"]
