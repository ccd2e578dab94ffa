"""User-facing errors: one line, non-zero exit, no traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path


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


def read_json_object(path: Path, what: str, required_key: str) -> dict:
    """The JSON object in ``path``, which must hold ``required_key``; XferError naming ``what``
    (e.g. "checkpoint x: meta.json") when it cannot be read, parsed or lacks the key."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise XferError(f"cannot read {what}: {exc}") from None
    if not isinstance(data, dict) or required_key not in data:
        raise XferError(f"{what} is not valid: no {required_key!r} entry")
    return data
