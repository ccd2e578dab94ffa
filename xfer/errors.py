"""User-facing errors: one line, non-zero exit, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable


class XferError(Exception):
    """A problem with the user's input or environment, reported as one line.

    Raise it wherever bad input is detected; the command-line entry points turn it into
    ``<prog>: error: <message>`` on stderr and exit status 2.
    """


def exit_on_error(prog: str, fn: Callable[[], int | None]) -> int:
    """Run ``fn``; turn an :class:`XferError` (or Ctrl-C) into a one-line message and status."""
    try:
        return int(fn() or 0)
    except XferError as exc:
        message = " ".join(str(exc).split()) or exc.__class__.__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130

