"""Writing one split file to an exact byte count, with bytes/documents/sha256 at each budget."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from xfer.data.vocab import DOC_SEPARATOR


def prefix_documents(separators: int, last_byte: int) -> int:
    """Documents that start inside a prefix: its separators, plus one if it ends mid-document."""
    return separators + (0 if last_byte == DOC_SEPARATOR else 1)


class SplitWriter:
    """Fills ``path`` with exactly ``limits[-1]`` bytes of documents.

    ``limits`` are increasing byte counts (the budgets; one limit for dev/test). At each limit it
    records the prefix's bytes, documents and sha256, so every budget is a prefix of the file.
    The document that crosses the last limit is cut; its remainder is discarded."""

    def __init__(self, path: Path, limits: list[int],
                 on_write: Callable[[int], None] | None = None) -> None:
        self.path = path
        self.limits = list(limits)
        self.records: list[dict] = []
        self._file = open(path, "wb")
        self._hash = hashlib.sha256()
        self._written = 0
        self._separators = 0
        self._on_write = on_write

    @property
    def written(self) -> int:
        return self._written

    def _write(self, piece: np.ndarray) -> None:
        self._file.write(piece.data)
        self._hash.update(piece.data)
        self._separators += int(np.count_nonzero(piece == DOC_SEPARATOR))
        self._written += piece.size
        if self._on_write:
            self._on_write(piece.size)

    def feed(self, batch: np.ndarray, start: int = 0) -> int | None:
        """Write documents from ``batch[start:]`` (whole documents, each ending 0xFF).

        Returns None while the split still needs bytes; once it is full, the offset in
        ``batch`` where the first unused document starts."""
        while start < batch.size:
            limit = self.limits[len(self.records)]
            piece = batch[start : start + (limit - self._written)]
            self._write(piece)
            start += piece.size
            if self._written < limit:
                continue
            last = int(piece[-1])
            self.records.append({"bytes": limit,
                                 "documents": prefix_documents(self._separators, last),
                                 "sha256": self._hash.copy().hexdigest()})
            if len(self.records) == len(self.limits):
                self._file.close()
                if last == DOC_SEPARATOR:
                    return start
                rest = np.flatnonzero(batch[start:] == DOC_SEPARATOR)  # skip the cut remainder
                return start + int(rest[0]) + 1 if rest.size else batch.size
        return None

    def close(self) -> None:
        self._file.close()

    @property
    def full(self) -> bool:
        return len(self.records) == len(self.limits)
