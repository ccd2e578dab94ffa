"""Files and folders written whole or not at all (temp name beside the target, then a rename;
the temp names of an interrupted run are cleaned by the next), JSON objects read through the
input boundary, and the first line of an exception's message."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from xfer.boundary import CAPS
from xfer.boundary import read_json_object as _read_json_object
from xfer.boundary.outputs import check_out, temp_prefix
from xfer.errors import XferError

MAX_JSON_BYTES = CAPS["json"]  # the largest JSON file (config, meta, result, ledger row) read


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its class name when the message is empty."""
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def atomic_write(path: Path, write: Callable[[Path], None], mode: int = 0o644) -> None:
    """Call ``write(tmp)`` on a temporary name beside ``path``, then rename it to ``path``
    (permissions ``mode``; the temp file is made 0600, so a 0600 file is never readable by
    others, not even for a moment)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        raise XferError(f"{path} is a symbolic link: not replaced")
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (permissions ``mode``), synced to disk before the
    rename."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    atomic_write(path, write, mode)


def atomic_write_json(path: Path, data: object, **dumps: object) -> None:
    """Write ``json.dumps(data, **dumps)`` as UTF-8 to ``path`` atomically."""
    atomic_write_bytes(path, json.dumps(data, **dumps).encode("utf-8"))


def replace_dir(tmp: Path, path: Path) -> None:
    """Move the finished folder ``tmp`` to ``path``, replacing any folder there."""
    if path.exists():
        old = path.with_name(f"{temp_prefix(path.name)}old")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old)
    else:
        os.replace(tmp, path)


@contextmanager
def staged_folder(out: Path, option: str, *, marker: str | None = None) -> Iterator[Path]:
    """A temp folder beside ``out`` to build an output in, moved to ``out`` when the block ends
    normally and removed when it raises, so ``out`` is never partial and no stale file of an
    earlier output survives. ``out`` (the command's ``option``, e.g. "--out") may not be a
    symbolic link or a file; an existing folder must be empty or, when ``marker`` is given,
    hold ``marker`` (the file an earlier output of the same command wrote), and is replaced
    whole. Files get the usual permissions (umask), not mkdtemp's private ones; folders made
    for ``out``'s parent are removed again when the block raises."""
    out = check_out(out, option)
    if out.is_dir() and any(out.iterdir()) and not (marker and (out / marker).is_file()):
        raise XferError(f"{option} {out} already exists and is not an empty folder"
                        + (f" (nor an earlier output with {marker})" if marker else ""))
    made = [p for p in [out.parent, *out.parent.parents] if not p.exists()]  # deepest first
    done = False
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(out.name), dir=out.parent))
    except OSError as exc:
        raise XferError(f"cannot create {option} {out}: {first_line(exc)}") from None
    try:
        yield tmp
        umask = os.umask(0o022)
        os.umask(umask)
        for path in [tmp, *tmp.rglob("*")]:
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)
        replace_dir(tmp, out)
        done = True
    except OSError as exc:
        raise XferError(f"cannot write {option} {out}: {first_line(exc)}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in made if not done else []:
            try:
                folder.rmdir()
            except OSError:
                break


def read_json_object(path: Path, what: str, required_key: str | None) -> dict:
    """The JSON object in the regular file ``path`` (at most :data:`MAX_JSON_BYTES`), which
    must hold ``required_key`` when one is given; XferError naming ``what`` (e.g. "checkpoint
    x: meta.json") when it cannot be read, parsed, is too large or lacks the key
    (:func:`xfer.boundary.read_json_object`; NaN and Infinity accepted, as files xfer writes
    hold them)."""
    return _read_json_object(path, what, required_key, finite=False)
