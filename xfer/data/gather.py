"""Documents of an indexed file in a seeded random order, with sequential reads and bounded memory.

Random access into a big file is slow (a page fault or a read per document) and, memory-mapped,
makes the whole file resident. So the exact permutation is applied as an external shuffle:

1. **Plan**: walk the permutation until the planned output (documents + separators) covers the
   bytes wanted (plus a little slack); cut that output into buckets of ``BUCKET_BYTES``.
2. **Scatter**: read the file once, sequentially, in ``READ_CHUNK`` pieces; copy each selected
   document (vectorised ``numpy.take``) to the end of its bucket's temporary file.
3. **Order**: load one bucket at a time, put its documents in permutation order (vectorised
   again) and yield them as batches.

If the consumer needs more (cut documents, CRLF lines shorter than planned), another round
continues with the next part of the permutation. The output is exactly the permutation order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from xfer.data.sampling import (
    BATCH_BYTES,
    CARRIAGE_RETURN,
    NEWLINE,
    READ_CHUNK,
    SEP,
    DocumentIndex,
    DrawStats,
    permutation,
)

BUCKET_BYTES = 32 * 2**20  # planned output bytes per temporary bucket
MAX_BUCKETS = 128  # buckets per round, at most (two open files each; ids fit uint16)
SLACK, SLACK_BYTES = 1.02, 2**16  # plan this much more than wanted: one round almost always
NOT_DRAWN = np.iinfo(np.uint32).max


def _binary(data: np.ndarray, offsets: np.ndarray) -> pa.Array:
    """Zero-copy Arrow view of documents ``data[offsets[i] : offsets[i + 1]]``."""
    large = offsets[-1] >= 2**31
    return pa.Array.from_buffers(pa.large_binary() if large else pa.binary(), offsets.size - 1,
                                 [None, pa.py_buffer(offsets.astype(np.int64 if large else
                                                                    np.int32)),
                                  pa.py_buffer(data)])


def take_documents(data: np.ndarray, offsets: np.ndarray,
                   picked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Documents ``picked`` (indices into ``offsets``) one after another: Arrow's ``take``
    copies variable-length values in C. Returns the bytes (a new, writable array) and the
    offsets of the result."""
    out = _binary(data, offsets).take(pa.array(picked))
    width = np.int64 if pa.types.is_large_binary(out.type) else np.int32
    offs = np.frombuffer(out.buffers()[1], dtype=width)[out.offset : out.offset + len(out) + 1]
    values = out.buffers()[2]
    if values is None or offs[-1] == offs[0]:
        return np.zeros(0, np.uint8), np.zeros(len(out) + 1, np.int64)
    body = np.frombuffer(values, dtype=np.uint8)[offs[0] : offs[-1]]  # Arrow's own, writable
    return body, (offs - offs[0]).astype(np.int64)


def repair_utf8(batch: np.ndarray, sep_pos: np.ndarray, check: bool,
                stats: DrawStats) -> np.ndarray:
    """Put 0xFF at the separator positions. If ``check`` (line files: each document ends with
    a newline there, and holds none inside), first replace invalid UTF-8 and count the lines."""
    if check and not _valid_utf8(batch):
        fixed = []
        for line in batch.tobytes().split(b"\n")[:-1]:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                stats.invalid_utf8_lines += 1
                line = line.decode("utf-8", errors="replace").encode("utf-8")
            fixed.append(line)
        return np.frombuffer(b"\xff".join(fixed) + b"\xff", dtype=np.uint8)
    batch[sep_pos] = SEP
    return batch


def _valid_utf8(batch: np.ndarray) -> bool:
    if int(batch.max()) < 0x80:  # ASCII: nothing to decode
        return True
    try:
        str(memoryview(batch), "utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _doc_lengths(ends: np.ndarray, docs: np.ndarray) -> np.ndarray:
    return ends[docs] - np.where(docs > 0, ends[np.maximum(docs - 1, 0)] + 1, 0)


def _plan(index: DocumentIndex, order: np.ndarray, lo: int,
          target: int) -> tuple[int, list[int]]:
    """Take documents ``order[lo:hi]`` until ``target`` planned bytes; returns ``hi`` and the
    ranks (offsets into ``order``) at which each bucket starts."""
    bucket = max(BUCKET_BYTES, -(-target // MAX_BUCKETS))
    bounds, planned, next_bound, pos = [lo], 0, bucket, lo
    step = 1 << 20
    while pos < order.size and planned < target:
        docs = order[pos : pos + step].astype(np.int64)
        lengths = _doc_lengths(index.ends, docs)
        sizes = np.where(lengths > 0, lengths + 1, 0)
        cum = np.cumsum(sizes) + planned
        stop = min(docs.size, int(np.searchsorted(cum, target, side="left")) + 1)
        while next_bound < target and next_bound <= cum[stop - 1]:
            bounds.append(pos + int(np.searchsorted(cum, next_bound, side="right")))
            next_bound += bucket
        planned = int(cum[stop - 1])
        pos += stop
    return pos, sorted(set(b for b in bounds if b < pos))


def _scatter(index: DocumentIndex, rank: np.ndarray, bounds: list[int], hi: int,
             workdir: Path, tag: str, stats: DrawStats) -> list[Path]:
    """One sequential pass: append each drawn document (with its separator) to the temporary
    file of its bucket, and its rank and length to a side file. Ranks in [bounds[0], hi) are
    drawn in this round."""
    edges = np.asarray(bounds[1:], dtype=np.int64)
    paths = [workdir / f"{tag}.bucket{k}" for k in range(len(bounds))]
    files = [open(p, "wb") for p in paths]
    sides = [open(p.with_suffix(p.suffix + ".idx"), "wb") for p in paths]
    strip_cr = index.separator == NEWLINE
    ends = index.ends
    try:
        with open(index.path, "rb") as f:
            first = 0  # first document not yet scattered
            while first < ends.size:
                base = 0 if first == 0 else int(ends[first - 1]) + 1
                last = max(first + 1, int(np.searchsorted(ends, base + READ_CHUNK, "left")))
                last = min(last, ends.size)
                f.seek(base)
                raw = f.read(min(int(ends[last - 1]) + 1, index.size) - base)
                if int(ends[last - 1]) == index.size:  # a last document without separator
                    raw += bytes([index.separator])
                chunk = np.frombuffer(raw, dtype=np.uint8)
                r = rank[first:last].astype(np.int64)
                offsets = np.concatenate([[0], ends[first:last] + 1 - base])
                drawn = (r >= bounds[0]) & (r < hi)
                first = last
                if not drawn.any():
                    continue
                content = np.diff(offsets) - 1
                cr = np.zeros(content.size, bool)
                if strip_cr:  # a CRLF line ends before its CR
                    cr = (content > 0) & (chunk[np.maximum(offsets[1:] - 2, 0)] == CARRIAGE_RETURN)
                keep = drawn & (content - cr > 0)
                stats.empty_documents += int(np.count_nonzero(drawn) - np.count_nonzero(keep))
                picked = np.flatnonzero(keep)
                if not picked.size:
                    continue
                bucket = np.searchsorted(edges, r[picked], side="right").astype(np.uint16)
                by_bucket = np.argsort(bucket, kind="stable")  # a radix sort for uint16
                picked, bucket = picked[by_bucket], bucket[by_bucket]
                body, offs = take_documents(chunk, offsets, picked)
                lengths = np.diff(offs)
                if cr[picked].any():
                    body = np.delete(body, offs[1:][cr[picked]] - 2)
                    lengths -= cr[picked]
                    offs = np.concatenate([[0], np.cumsum(lengths)])
                cut = np.searchsorted(bucket, np.arange(len(paths) + 1), side="left")
                for k in np.flatnonzero(np.diff(cut)):
                    lo, hi_ = int(cut[k]), int(cut[k + 1])
                    files[k].write(body[offs[lo] : offs[hi_]].data)
                    side = np.stack([r[picked[lo:hi_]], lengths[lo:hi_]], axis=1)
                    sides[k].write(side.astype(np.int64).tobytes())
    finally:
        for handle in files + sides:
            handle.close()
    return paths


def _ordered(path: Path, check_utf8: bool, stats: DrawStats) -> Iterator[np.ndarray]:
    """The documents of one bucket in permutation order, as batches of about BATCH_BYTES."""
    side_path = path.with_suffix(path.suffix + ".idx")
    data = np.fromfile(path, dtype=np.uint8)
    side = np.fromfile(side_path, dtype=np.int64).reshape(-1, 2)
    path.unlink()
    side_path.unlink()
    if not side.size:
        return
    offsets = np.concatenate([[0], np.cumsum(side[:, 1])])
    ranks = side[:, 0] - side[:, 0].min()  # a bucket holds a range of ranks: place, not sort
    slot = np.full(int(ranks.max()) + 1, -1, dtype=np.int64)
    slot[ranks] = np.arange(ranks.size)
    body, offs = take_documents(data, offsets, slot[slot >= 0])
    del data
    pos = 0
    while pos < offs.size - 1:
        stop = max(pos + 1, int(np.searchsorted(offs, offs[pos] + BATCH_BYTES, "right")) - 1)
        piece = body[offs[pos] : offs[stop]]
        yield repair_utf8(piece, offs[pos + 1 : stop + 1] - 1 - offs[pos], check_utf8, stats)
        pos = stop


def permuted_batches(index: DocumentIndex, seed: int, stats: DrawStats, check_utf8: bool,
                     workdir: Path, wanted: int) -> Iterator[np.ndarray]:
    """Batches of the indexed documents in a seeded random order, without replacement; about
    ``wanted`` bytes are prepared at a time (temporary bucket files go to ``workdir``)."""
    n = index.documents
    if n == 0:
        return
    order = permutation(n, seed)
    rank = np.full(n, NOT_DRAWN, dtype=np.uint32 if n < NOT_DRAWN else np.int64)
    rank[order] = np.arange(n, dtype=rank.dtype)  # position of each document in the order
    lo, target, rounds = 0, int(wanted * SLACK) + SLACK_BYTES, 0
    paths: list[Path] = []
    try:
        while lo < n:
            hi, bounds = _plan(index, order, lo, target)
            paths = _scatter(index, rank, bounds, hi, workdir, f"round{rounds}", stats)
            for path in list(paths):
                yield from _ordered(path, check_utf8, stats)
            lo, rounds = hi, rounds + 1
            target = max(wanted // 10, BUCKET_BYTES)
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
            path.with_suffix(path.suffix + ".idx").unlink(missing_ok=True)
