"""Files written whole or not at all (temp name beside the target, then a rename), JSON objects
read with one-line errors, and the first line of an exception's message."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from xfer.errors import XferError


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its class name when the message is empty."""
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary name beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, synced to disk before the rename."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    atomic_write(path, write)


def atomic_write_json(path: Path, data: object, **dumps: object) -> None:
    """Write ``json.dumps(data, **dumps)`` as UTF-8 to ``path`` atomically."""
    atomic_write_bytes(path, json.dumps(data, **dumps).encode("utf-8"))


def replace_dir(tmp: Path, path: Path) -> None:
    """Move the finished folder ``tmp`` to ``path``, replacing any folder there."""
    if path.exists():
        old = path.with_name(f".{path.name}.old{os.getpid()}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old)
    else:
        os.replace(tmp, path)


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
