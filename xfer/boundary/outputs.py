"""Every ``--out`` at the boundary: a symbolic link is refused, outputs are built under a
temporary sibling name that carries the writing process's id, and temporary siblings left by an
interrupted run (their process gone) are removed by the next run.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from xfer.errors import XferError

TEMP_TAG = ".xfer-tmp-"  # hidden temp names: .<name>.xfer-tmp-<pid>-<random or role>
_TEMP = re.compile(r"\.(?P<name>.+)\.xfer-tmp-(?P<pid>\d+)-.*")
MAX_OUT_ENTRIES = 100_000  # entries of an existing output folder checked for symbolic links


def temp_prefix(name: str) -> str:
    """The prefix of a temporary sibling of ``name`` written by this process."""
    return f".{name}{TEMP_TAG}{os.getpid()}-"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or not ours to judge: leave its files alone
    return True


def clean_stale(folder: Path, name: str | None = None) -> list[Path]:
    """Remove the temporary siblings in ``folder`` (of ``name`` only, when given) whose
    writing process no longer runs; returns what was removed. Never follows a symbolic link."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.fullmatch(entry.name)
        if not match or (name is not None and match["name"] != name):
            continue
        if _alive(int(match["pid"])):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except OSError:
            continue
    return removed


def check_out(out: Path, option: str, *, tree: bool = False) -> Path:
    """``out`` made absolute, refused when it is a symbolic link or exists and is not a folder,
    or (``tree``: an output written in place, e.g. a training run that resumes) when anything
    inside it is a symbolic link. Stale temporary siblings of ``out`` (and, with ``tree``, inside
    it) are removed first."""
    out = Path(out).expanduser().absolute()
    if out.is_symlink():
        raise XferError(f"{option} {out} is a symbolic link; give the folder's own path")
    if out.exists() and not out.is_dir():
        raise XferError(f"{option} {out} already exists and is not a folder")
    clean_stale(out.parent, out.name)
    if tree and out.is_dir():
        seen = 0
        for root, dirs, files in os.walk(out):  # never follows links
            for entry in (*dirs, *files):
                seen += 1
                path = Path(root) / entry
                if path.is_symlink():
                    raise XferError(f"{option} {out}: {path.relative_to(out)} is a symbolic "
                                    "link; an output folder holds only its own files")
            if seen > MAX_OUT_ENTRIES:
                raise XferError(f"{option} {out} holds more than {MAX_OUT_ENTRIES:,} entries: "
                                "not an output of this command")
            clean_stale(Path(root))
    return out
