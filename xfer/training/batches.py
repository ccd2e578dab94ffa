"""Byte streams to model batches: seq_len-byte pieces of the concatenated documents.

Piece i of a split is bytes [i*L, (i+1)*L) of its stream (separators become EOS). Its targets
are those L ids; its inputs are EOS followed by the first L-1 of them, so every byte of the
stream is predicted exactly once per pass. Training drops the last partial piece; evaluation
pads it with PAD, which the loss ignores.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from xfer.data.vocab import DOC_SEPARATOR, EOS_ID, PAD_ID, bytes_to_ids
from xfer.errors import XferError


def load_text_eval(path: Path) -> np.ndarray:
    """An extra held-out set: a ``.bin`` split as is, or a text file with one document per line."""
    path = Path(path)
    if not path.is_file():
        raise XferError(f"extra evaluation file not found: {path}")
    if path.suffix == ".bin":
        return np.fromfile(path, dtype=np.uint8)
    lines = [line for line in path.read_bytes().split(b"\n") if line.strip()]
    if not lines:
        raise XferError(f"extra evaluation file is empty: {path}")
    sep = bytes([DOC_SEPARATOR])
    return np.frombuffer(sep.join(lines) + sep, dtype=np.uint8)


def to_example(piece: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets (int64 ids, each ``seq_len`` long) of one stored piece of bytes."""
    targets = np.full(seq_len, PAD_ID, dtype=np.int64)
    targets[: len(piece)] = bytes_to_ids(piece)
    inputs = np.empty(seq_len, dtype=np.int64)
    inputs[0] = EOS_ID
    inputs[1:] = targets[:-1]
    return inputs, targets


def make_batch(raw: np.ndarray, pieces: np.ndarray, seq_len: int) -> tuple[torch.Tensor, ...]:
    """Inputs and targets [len(pieces), seq_len] for the given piece indices of ``raw``."""
    examples = [to_example(raw[i * seq_len:(i + 1) * seq_len], seq_len) for i in pieces]
    inputs = np.stack([e[0] for e in examples])
    targets = np.stack([e[1] for e in examples])
    return torch.from_numpy(inputs), torch.from_numpy(targets)


@functools.lru_cache(maxsize=1)
def epoch_order(n_pieces: int, seed: int, epoch: int) -> np.ndarray:
    """The seeded shuffle of piece indices used in one epoch (same seed+epoch, same order).
    Cached: every step of an epoch slices the same order (read-only), made once."""
    order = np.random.default_rng([seed, epoch]).permutation(n_pieces)
    order.flags.writeable = False
    return order


def eval_batches(raw: np.ndarray, seq_len: int, batch_size: int, max_bytes: int | None = None,
                 first: int = 0, stride: int = 1
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The pieces of an evaluation split in order (the last one padded), ``batch_size`` a batch:
    batches ``first``, ``first + stride``, ... only (a worker's share: its rank and the worker
    count), the others not built. ``max_bytes``: score only the split's first bytes."""
    if max_bytes is not None:
        raw = raw[:max_bytes]
    n_pieces = -(-len(raw) // seq_len)
    for start in range(first * batch_size, n_pieces, stride * batch_size):
        yield make_batch(raw, np.arange(start, min(start + batch_size, n_pieces)), seq_len)
