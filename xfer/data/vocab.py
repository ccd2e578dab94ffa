"""The byte vocabulary shared by the data layer and the model.

Ids: 0 pad, 1 end-of-sequence, 2 unknown, then the 256 byte values (id = byte + 3): 259 ids.
On disk, datasets hold raw UTF-8 bytes (uint8) with 0xFF after every document: 0xFF never
occurs in valid UTF-8, so it is a safe separator, and the files stay half the size of uint16 ids.
"""

from __future__ import annotations

import numpy as np

PAD_ID = 0
EOS_ID = 1
UNK_ID = 2
BYTE_OFFSET = 3
VOCAB_SIZE = 256 + BYTE_OFFSET  # 259
DOC_SEPARATOR = 0xFF  # byte value that ends each document in a token file

_LOOKUP = np.arange(256, dtype=np.int64) + BYTE_OFFSET
_LOOKUP[DOC_SEPARATOR] = EOS_ID


def bytes_to_ids(raw: np.ndarray) -> np.ndarray:
    """Map a uint8 array of stored bytes to model ids (int64); the separator becomes EOS."""
    return _LOOKUP[np.asarray(raw, dtype=np.uint8)]


def encode(text: str) -> list[int]:
    """Encode text as model ids (UTF-8 bytes + 3), without a trailing EOS."""
    return [b + BYTE_OFFSET for b in text.encode("utf-8")]


def decode(ids: list[int] | np.ndarray) -> str:
    """Decode model ids back to text; special ids are dropped, bad UTF-8 is replaced."""
    data = bytes(int(i) - BYTE_OFFSET for i in ids if int(i) >= BYTE_OFFSET)
    return data.decode("utf-8", errors="replace")
