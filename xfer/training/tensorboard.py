"""A run's curves as TensorBoard scalars (tensorboardX event files), against the optimiser step.

    tensorboard --logdir <run folder>/tensorboard
"""

from __future__ import annotations

import math
from pathlib import Path

from xfer.training.loop import Callback

STEP_SCALARS = ("train_loss", "lr")  # logged at every optimiser step
NOT_SCALARS = ("step", "epoch", *STEP_SCALARS)  # the x axis, or already logged at that step


class TensorBoardLog(Callback):
    """``xfer.training`` / ``xfer.downstream`` callback writing event files into ``log_dir``:
    ``train_loss`` (nats/byte) and ``lr`` at every step; at every dev evaluation every other
    number it reports (``dev_loss`` in nats/byte, ``dev_perplexity``, ``dev_bits_per_byte``,
    ``bytes_per_s``, ...). The writer opens at the first step it sees with ``purge_step`` set to
    it, so a resumed run replaces, rather than duplicates, what an interrupted one wrote after
    its checkpoint. Call :meth:`close` at the end (buffered events are written every
    ``flush_s`` seconds and on close)."""

    def __init__(self, log_dir: Path, flush_s: int = 10) -> None:
        self.log_dir = Path(log_dir)
        self.flush_s = flush_s
        self.writer = None

    def _write(self, metrics: dict, names: list[str]) -> None:
        step = int(metrics["step"])
        if self.writer is None:
            from tensorboardX import SummaryWriter

            self.log_dir.mkdir(parents=True, exist_ok=True)
            self.writer = SummaryWriter(str(self.log_dir), purge_step=step,
                                        flush_secs=self.flush_s)
        for name in names:
            value = metrics[name]
            if isinstance(value, int | float) and not isinstance(value, bool) \
                    and math.isfinite(value):
                self.writer.add_scalar(name, float(value), step)

    def on_step(self, metrics: dict) -> None:
        self._write(metrics, [k for k in STEP_SCALARS if k in metrics])

    def on_eval(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        self._write(metrics, [k for k in metrics if k not in NOT_SCALARS])

    def close(self) -> None:
        """Write what is buffered and close the event file."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
