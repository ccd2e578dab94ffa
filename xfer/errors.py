"""User-facing errors: one line, non-zero exit, no traceback.

At each command's entry (:func:`exit_on_error`), an :class:`XferError` and any error its input
can cause (a file that cannot be read, a value out of range, nesting too deep, text that is not
UTF-8, a parser's error) become one line ``<prog>: error: <file>: <what>`` and exit status 2.
With ``XFER_DEBUG=1`` in the environment those errors show their traceback instead; any other
exception is a bug in xfer and always shows its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

DEBUG_ENV = "XFER_DEBUG"


class XferError(Exception):
    """A problem with the user's input or environment, reported as one line.

    Raise it wherever bad input is detected; the command-line entry points turn it into
    ``<prog>: error: <message>`` on stderr and exit status 2.
    """


def input_errors() -> tuple[type[BaseException], ...]:
    """The exception classes a command's input can cause (beyond :class:`XferError`): the
    OS's, the parsers' and arithmetic's; parser modules are added only when already imported."""
    found: list[type[BaseException]] = [OSError, ValueError, OverflowError, RecursionError,
                                        UnicodeError, MemoryError, EOFError]
    yaml = sys.modules.get("yaml")
    if yaml is not None:
        found.append(yaml.YAMLError)
    return tuple(found)


def error_line(exc: BaseException) -> str:
    """One line naming the file (when the error knows it) and what is wrong."""
    message = " ".join(str(exc).split()) or exc.__class__.__name__
    if isinstance(exc, XferError):
        return message
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or message}"
    if isinstance(exc, RecursionError):
        return "input nested too deeply"
    if isinstance(exc, MemoryError):
        return "out of memory reading the input"
    return f"{exc.__class__.__name__}: {message}"[:500]


def exit_on_error(prog: str, fn: Callable[[], int | None]) -> int:
    """Run ``fn``; turn an :class:`XferError`, an input-caused error (:func:`input_errors`;
    traceback kept with ``XFER_DEBUG=1``) or Ctrl-C into a one-line message and status."""
    try:
        return int(fn() or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BaseException as exc:
        debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
        if not isinstance(exc, XferError) and (debug or not isinstance(exc, input_errors())):
            raise
        print(f"{prog}: error: {error_line(exc)}", file=sys.stderr)
        return 2
