"""The study's progress lines (``[xfer] ...`` on standard output) through ``logging``.

Imports nothing of Ray: the driver must set Ray's authentication variables before Ray is
imported, and progress lines are shown before that.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

log = logging.getLogger("xfer.study")  # the study's progress lines: "[xfer] ..."


class _Stdout(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is when a line is logged (a test's capture, a file)."""

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def show_progress() -> None:
    """Route the study's progress lines to standard output as ``[xfer] ...`` (once a process);
    ``logging`` configuration may redirect or silence them (logger ``xfer.study``)."""
    if not any(isinstance(h, _Stdout) for h in log.handlers):
        handler = _Stdout()
        handler.setFormatter(logging.Formatter("[xfer] %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
