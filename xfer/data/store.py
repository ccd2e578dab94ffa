"""Reading prepared datasets: manifests, memory-mapped splits, documents."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from xfer.boundary import open_regular, read_json_object, resolve
from xfer.data.vocab import DOC_SEPARATOR
from xfer.errors import XferError
from xfer.units import MAX_BYTE_COUNT

MANIFEST = "manifest.json"
SPLITS = ("dev", "test", "train")
HASH_CHUNK = 1 << 24  # bytes hashed per read
_verified: set[tuple] = set()  # (path, size, mtime_ns, inode, sha256) already checked here


def verify_sha256(path: Path, size: int, expected: str | None) -> None:
    """Check that the first ``size`` bytes of ``path`` hash to ``expected`` (the manifest's
    sha256); XferError naming the file if not. Each unchanged file is hashed once per process."""
    if not expected:
        return
    with open_regular(path) as fh:
        stat = os.fstat(fh.fileno())
        key = (str(path), size, stat.st_mtime_ns, stat.st_ino, expected)
        if key in _verified:
            return
        digest = hashlib.sha256()
        left = size
        while left > 0:
            chunk = fh.read(min(HASH_CHUNK, left))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    if digest.hexdigest() != expected:
        raise XferError(f"{path}: sha256 of its first {size} bytes does not match the manifest "
                        "(corrupt file; remove the language folder and prepare it again)")
    _verified.add(key)


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BYTE_COUNT:
        raise XferError(f"{what} must be a whole number of bytes from 0 to 2**63-1, got "
                        f"{str(value)[:40]!r}")
    return value


def read_manifest(root: Path, lang: str) -> dict:
    """The manifest of ``root/lang`` (``lang`` a name resolved inside ``root``), its splits and
    budgets checked: each split a mapping with a ``file`` name inside the language folder and a
    ``bytes`` count, each budget a count; XferError if there is none or it is not valid."""
    folder = resolve(root, lang, what="language")
    path = folder / MANIFEST
    if not path.exists():
        raise XferError(f"no prepared dataset for {lang!r}: {path} not found (run xfer prepare)")
    where = f"dataset manifest {path}"
    manifest = read_json_object(path, where, "splits", kind="manifest")
    splits = manifest["splits"]
    if not isinstance(splits, dict) or set(SPLITS) - set(splits):
        raise XferError(f"{where}: 'splits' must map each of {', '.join(SPLITS)} to its file")
    for split in SPLITS:
        entry = splits[split]
        if not isinstance(entry, dict):
            raise XferError(f"{where}: splits.{split} is not a mapping")
        resolve(folder, entry.get("file"), what=f"{where}: splits.{split}.file")
        _count(entry.get("bytes"), f"{where}: splits.{split}.bytes")
    budgets = manifest.get("budgets", {})
    if not isinstance(budgets, dict) or not all(isinstance(v, dict) for v in budgets.values()):
        raise XferError(f"{where}: 'budgets' must map each budget to a mapping")
    return manifest


def load_split(root: Path, lang: str, split: str, budget: int | None = None) -> np.ndarray:
    """A read-only uint8 memmap of a split: for train, the first ``budget`` bytes of train.bin
    (the whole file if None); for dev/test, the whole file."""
    if split not in SPLITS:
        raise XferError(f"unknown split {split!r} (one of {', '.join(SPLITS)})")
    manifest = read_manifest(root, lang)
    path = Path(root) / lang / manifest["splits"][split]["file"]
    size = manifest["splits"][split]["bytes"]
    with open_regular(path, f"dataset file {path}") as fh:
        have = os.fstat(fh.fileno()).st_size
    if have != size:
        raise XferError(f"{path} holds {have} bytes, manifest says {size}")
    if size == 0:
        raise XferError(f"{path} is empty")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    if budget is None:
        verify_sha256(path, size, manifest["splits"][split].get("sha256"))
        return data
    if split != "train":
        raise XferError(f"a budget applies to the train split only, not {split!r}")
    entry = manifest.get("budgets", {}).get(str(int(budget)))
    if entry is None:
        known = ", ".join(manifest.get("budgets", {}))[:200]
        raise XferError(f"budget {budget} not prepared for {lang!r} in {root} (prepared: {known})")
    if int(budget) > size:
        raise XferError(f"{path}: budget {budget} is more than its {size} bytes")
    verify_sha256(path, int(budget), entry.get("sha256"))
    return data[: int(budget)]


def iter_documents(raw: np.ndarray) -> Iterator[str]:
    """Split a loaded split back into documents (str; a cut last document is yielded as is)."""
    raw = np.asarray(raw, dtype=np.uint8)
    start = 0
    for end in np.flatnonzero(raw == DOC_SEPARATOR):
        yield raw[start:end].tobytes().decode("utf-8", errors="replace")
        start = int(end) + 1
    if start < raw.size:
        yield raw[start:].tobytes().decode("utf-8", errors="replace")
