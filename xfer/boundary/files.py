"""Files and names at the input boundary: every file xfer reads that someone else could have
made is opened here, and every name that becomes a path is resolved here.

* A file is opened non-blocking (a FIFO or device never blocks the open), checked with
  ``fstat`` to be a regular file (no FIFO, device, socket or folder) of at most the size cap
  of its kind, and only then read.
* A name (a language code, trial key, ledger entry, manifest ``file``) is one path component
  matching :data:`NAME_PATTERN`: no ``/``, no ``..``, no absolute path, no hidden name; the path
  it makes, every symbolic link resolved, must stay inside the folder it belongs to.
* Sizes on disk are the bytes actually stored (``st_blocks``), so a sparse file cannot claim
  more data than it holds.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import BinaryIO

from xfer.errors import XferError

# Every name that becomes a path component (study names, language codes, trial keys, ledger
# entries, export folders, dataset files): letters, digits, '.', '_', '-'; not starting with '.'
# (no '.', '..', hidden or temp names); at most MAX_NAME characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
MAX_NAME = 200

# The most bytes xfer reads from one file of each kind (bytes): a file over its cap is refused
# before it is read.
CAPS = {
    "json": 64 << 20,  # config, meta, result, ledger row, export config
    "manifest": 4 << 20,  # a prepared dataset's manifest.json
    "yaml": 4 << 20,  # a study config
    "text": 16 << 20,  # commands.txt and other small text files
    "table": 4 << 30,  # a results table (Parquet)
    "weights": 1 << 40,  # a model's weights (further checked against its config)
}


def check_name(name: object, what: str) -> str:
    """``name`` if it is one path component matching :data:`NAME_PATTERN`; else XferError
    naming ``what`` (e.g. "languages", "ledger entry")."""
    if not isinstance(name, str) or len(name) > MAX_NAME or not NAME_PATTERN.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise XferError(f"{what}: {shown} is not a valid name (letters, digits, '.', '_' and "
                        f"'-', not starting with '.', at most {MAX_NAME} characters)")
    return name


def within(root: Path, path: Path, what: str) -> Path:
    """``path`` if, with every symbolic link resolved, it lies inside ``root`` (resolved);
    else XferError naming ``what``."""
    try:
        real_root = Path(root).resolve()
        real = Path(path).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise XferError(f"{what}: {path}: {exc.__class__.__name__}: cannot resolve") from None
    if not real.is_relative_to(real_root):
        raise XferError(f"{what}: {path} leads outside {real_root} (a symbolic link)")
    return Path(path)


def resolve(parent: Path, *names: object, what: str) -> Path:
    """``parent / name1 / name2 ...``: each name one valid component (:func:`check_name`),
    the result inside ``parent`` with every symbolic link resolved (:func:`within`). The one
    resolver every name that becomes a path goes through."""
    path = Path(parent)
    for name in names:
        path = path / check_name(name, what)
    return within(parent, path, what)


def inside(parent: Path, name: object, what: str) -> Path:
    """``parent / name`` for a valid ``name`` inside ``parent`` (:func:`resolve`)."""
    return resolve(parent, name, what=what)


def stored_bytes(st: os.stat_result) -> int:
    """Bytes of a file actually on disk: its apparent size, less the holes of a sparse file
    (``st_blocks`` counts 512-byte units)."""
    blocks = getattr(st, "st_blocks", None)
    return st.st_size if blocks is None else min(st.st_size, blocks * 512)


def _kind_name(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: Path, what: str | None = None, max_bytes: int | None = None) -> BinaryIO:
    """``path`` opened for binary reading if it is a regular file of at most ``max_bytes``
    bytes; XferError naming the file otherwise. Opened non-blocking and checked with ``fstat``
    on the open descriptor, so a FIFO or device is refused without ever blocking."""
    where = what or str(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        reason = "no such file" if exc.errno == errno.ENOENT else \
            "permission denied" if exc.errno == errno.EACCES else exc.strerror or str(exc)
        raise XferError(f"{where}: cannot open: {reason}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise XferError(f"{where}: {_kind_name(st.st_mode)}, not a regular file")
        if max_bytes is not None and st.st_size > max_bytes:
            raise XferError(f"{where}: {st.st_size:,} bytes, more than the {max_bytes:,} a "
                            "file of this kind may hold")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: Path, what: str | None = None, kind: str = "json") -> bytes:
    """The whole of the regular file ``path``, at most ``CAPS[kind]`` bytes
    (:func:`open_regular`)."""
    cap = CAPS[kind]
    try:
        with open_regular(path, what, cap) as fh:
            data = fh.read(cap + 1)
    except OSError as exc:
        raise XferError(f"{what or path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > cap:
        raise XferError(f"{what or path}: more than the {cap:,} bytes a file of this kind may "
                        "hold")
    return data


def regular_file(path: Path, what: str | None = None, kind: str = "weights") -> os.stat_result:
    """The ``fstat`` of ``path`` if it is a regular file within ``CAPS[kind]`` bytes, for a
    library that opens the file by name (Parquet, safetensors, torch, fastText)."""
    with open_regular(path, what, CAPS[kind]) as fh:
        return os.fstat(fh.fileno())


def is_regular(path: Path) -> bool:
    """Whether ``path`` (symbolic links followed) is a regular file; never blocks or raises."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def list_names(folder: Path, what: str, suffix: str = "", *, strict: bool = False) -> list[str]:
    """Sorted names in ``folder`` ending in ``suffix`` (``suffix`` removed) that are valid names
    (:func:`check_name`) of entries that are not symbolic links; others are skipped, or (with
    ``strict``) refused. XferError if the folder cannot be listed."""
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise XferError(f"{what}: {folder}: cannot list: {exc.strerror or exc}") from None
    names = []
    for entry in entries:
        stem = entry.name[: len(entry.name) - len(suffix)] if suffix else entry.name
        if not entry.name.endswith(suffix):
            continue
        if strict and (entry.is_symlink() or not stem):
            raise XferError(f"{what} entry {entry.name!r}: a symbolic link or an empty name")
        if entry.is_symlink() or not stem:
            continue
        if len(stem) <= MAX_NAME and NAME_PATTERN.fullmatch(stem):
            names.append(stem)
        elif strict:
            check_name(stem, f"{what} entry {entry.name!r}")
    return sorted(names)
