"""Drawing documents in a seeded random order, as batches of bytes ready to be written.

A *batch* is a uint8 array of whole documents, each followed by the separator 0xFF
(``xfer.data.vocab.DOC_SEPARATOR``). Two ways of drawing:

- **Exact permutation** (files): index the byte offset of every document of a file, shuffle
  the document numbers with ``numpy.random.Generator(PCG64(seed)).shuffle`` and gather the
  documents in that order (:mod:`xfer.data.gather`: sequential reads, no per-document Python).
- **Streams** (mC4, generators): documents arrive as ``str``; they are encoded and joined into
  batches in the order the stream yields them (the stream does its own seeded shuffling).

Invalid UTF-8 is replaced (U+FFFD) and counted; empty documents are skipped and counted.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from xfer.data.vocab import DOC_SEPARATOR

SEP = DOC_SEPARATOR
NEWLINE = 0x0A
CARRIAGE_RETURN = 0x0D
READ_CHUNK = 16 * 2**20  # bytes read per step while indexing or spilling
BATCH_BYTES = 4 * 2**20  # target size of one batch of documents, bytes


@dataclass
class DrawStats:
    """What was repaired or skipped while drawing documents."""

    invalid_utf8_lines: int = 0  # documents (lines) with invalid UTF-8, repaired with U+FFFD
    empty_documents: int = 0  # documents of zero bytes, skipped


@dataclass(frozen=True)
class DocumentIndex:
    """Where the documents of a file end: ``ends[i]`` is the offset (bytes) of the separator
    after document i (the file size for a last document without one); document i starts at
    ``ends[i-1] + 1``."""

    path: Path
    separator: int
    ends: np.ndarray  # int64
    size: int  # file size, bytes

    @property
    def documents(self) -> int:
        return int(self.ends.size)

    def available_bytes(self) -> int:
        """Bytes all non-empty documents would take in a dataset (documents + separators)."""
        n = self.documents
        if n == 0:
            return 0
        real_separators = n - (1 if self.ends[-1] == self.size else 0)
        empty = _count_empty(self.ends)
        return (self.size - real_separators) + (n - empty)


def _count_empty(ends: np.ndarray, step: int = 1 << 20) -> int:
    """Number of zero-length documents, counted in slices to keep memory small."""
    empty = int(ends[0] == 0) if ends.size else 0
    for lo in range(1, ends.size, step):
        chunk = ends[lo - 1 : lo + step]
        empty += int(np.count_nonzero(np.diff(chunk) == 1))
    return empty


def _separator_positions(chunk: np.ndarray, separator: int, base: int) -> np.ndarray:
    positions = np.flatnonzero(chunk == separator)
    positions += base
    return positions


def _finish_index(path: Path, separator: int, pieces: list[np.ndarray], size: int,
                  last_byte: int | None) -> DocumentIndex:
    if size and last_byte != separator:
        pieces.append(np.array([size], dtype=np.int64))  # last document without a separator
    ends = np.concatenate(pieces).astype(np.int64, copy=False) if pieces else np.zeros(0, np.int64)
    pieces.clear()
    return DocumentIndex(path, separator, ends, size)


def _bar(total: int, desc: str, progress: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, leave=False,
                disable=None if progress else True)


def index_file(path: Path, separator: int = NEWLINE, progress: bool = False) -> DocumentIndex:
    """Index a file whose documents each end with ``separator`` (one pass, chunked reads)."""
    size = path.stat().st_size
    buf = np.empty(READ_CHUNK, dtype=np.uint8)
    pieces: list[np.ndarray] = []
    base, last_byte = 0, None
    with open(path, "rb") as f, _bar(size, f"index {path.name}", progress) as bar:
        while n := f.readinto(memoryview(buf)):
            pieces.append(_separator_positions(buf[:n], separator, base))
            base += n
            last_byte = int(buf[n - 1])
            bar.update(n)
    return _finish_index(path, separator, pieces, size, last_byte)


def spill_gzip(src: Path, dst: Path, progress: bool = False) -> DocumentIndex:
    """Decompress a gzip file of lines to ``dst`` while indexing its lines."""
    pieces: list[np.ndarray] = []
    base, last_byte = 0, None
    with gzip.open(src, "rb") as f, open(dst, "wb") as out, \
            _bar(src.stat().st_size, f"unpack {src.name}", progress) as bar:
        raw = f.fileobj  # type: ignore[attr-defined]
        while block := f.read(READ_CHUNK):
            out.write(block)
            chunk = np.frombuffer(block, dtype=np.uint8)
            pieces.append(_separator_positions(chunk, NEWLINE, base))
            base += len(block)
            last_byte = block[-1]
            bar.n = raw.tell()
            bar.refresh()
    return _finish_index(dst, NEWLINE, pieces, base, last_byte)


def spill_documents(docs: Iterable[str], dst: Path, stats: DrawStats) -> DocumentIndex:
    """Write documents (str) to ``dst``, each followed by 0xFF, and index them.

    Documents that cannot be encoded (lone surrogates) are repaired and counted here, for the
    whole source; empty documents are kept in the index and skipped when drawn."""
    pieces: list[np.ndarray] = []
    offset = 0
    with open(dst, "wb") as out:
        for batch, lengths in _encoded_batches(docs, stats, skip_empty=False):
            out.write(batch)
            ends = np.cumsum(np.asarray(lengths, dtype=np.int64) + 1) - 1 + offset
            pieces.append(ends)
            offset += len(batch)
    return _finish_index(dst, SEP, pieces, offset, SEP if offset else None)


def _encode(doc: str, stats: DrawStats) -> bytes:
    try:
        return doc.encode("utf-8")
    except UnicodeEncodeError:
        stats.invalid_utf8_lines += 1
        return doc.encode("utf-8", errors="replace")


def _encoded_batches(docs: Iterable[str], stats: DrawStats,
                     skip_empty: bool) -> Iterator[tuple[bytes, list[int]]]:
    pending: list[bytes] = []
    size = 0
    for doc in docs:
        if not doc and skip_empty:
            stats.empty_documents += 1
            continue
        data = _encode(doc, stats)
        pending.append(data)
        size += len(data) + 1
        if size >= BATCH_BYTES:
            yield b"\xff".join(pending) + b"\xff", [len(d) for d in pending]
            pending, size = [], 0
    if pending:
        yield b"\xff".join(pending) + b"\xff", [len(d) for d in pending]


def stream_batches(docs: Iterable[str], stats: DrawStats) -> Iterator[np.ndarray]:
    """Batches of documents in the order the stream yields them (empty ones skipped)."""
    for batch, _ in _encoded_batches(docs, stats, skip_empty=True):
        yield np.frombuffer(batch, dtype=np.uint8)


def permutation(n: int, seed: int) -> np.ndarray:
    """A seeded random order of ``n`` documents (uint32 where it fits, to halve memory)."""
    order = np.arange(n, dtype=np.uint32 if n < 2**32 else np.int64)
    np.random.Generator(np.random.PCG64(seed)).shuffle(order)
    return order
