"""Reading prepared datasets: manifests, memory-mapped splits, documents."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from xfer.data.vocab import DOC_SEPARATOR
from xfer.errors import XferError
from xfer.io import read_json_object

MANIFEST = "manifest.json"
SPLITS = ("dev", "test", "train")
HASH_CHUNK = 1 << 24  # bytes hashed per read
_verified: set[tuple] = set()  # (path, size, mtime_ns, inode, sha256) already checked here


def verify_sha256(path: Path, size: int, expected: str | None) -> None:
    """Check that the first ``size`` bytes of ``path`` hash to ``expected`` (the manifest's
    sha256); XferError naming the file if not. Each unchanged file is hashed once per process."""
    if not expected:
        return
    stat = path.stat()
    key = (str(path), size, stat.st_mtime_ns, stat.st_ino, expected)
    if key in _verified:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
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


def read_manifest(root: Path, lang: str) -> dict:
    """The manifest of ``root/lang`` (XferError if there is none or it is unreadable)."""
    path = Path(root) / lang / MANIFEST
    if not path.is_file():
        raise XferError(f"no prepared dataset for {lang!r}: {path} not found (run xfer prepare)")
    return read_json_object(path, f"dataset manifest {path}", "splits")


def load_split(root: Path, lang: str, split: str, budget: int | None = None) -> np.ndarray:
    """A read-only uint8 memmap of a split: for train, the first ``budget`` bytes of train.bin
    (the whole file if None); for dev/test, the whole file."""
    if split not in SPLITS:
        raise XferError(f"unknown split {split!r} (one of {', '.join(SPLITS)})")
    manifest = read_manifest(root, lang)
    path = Path(root) / lang / manifest["splits"][split]["file"]
    if not path.is_file():
        raise XferError(f"dataset file missing: {path}")
    size = manifest["splits"][split]["bytes"]
    if path.stat().st_size != size:
        raise XferError(f"{path} holds {path.stat().st_size} bytes, manifest says {size}")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    if budget is None:
        verify_sha256(path, size, manifest["splits"][split].get("sha256"))
        return data
    if split != "train":
        raise XferError(f"a budget applies to the train split only, not {split!r}")
    if str(int(budget)) not in manifest["budgets"]:
        known = ", ".join(manifest["budgets"])
        raise XferError(f"budget {budget} not prepared for {lang!r} in {root} (prepared: {known})")
    verify_sha256(path, int(budget), manifest["budgets"][str(int(budget))].get("sha256"))
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
