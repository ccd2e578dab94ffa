"""A fastText model file (``.bin`` or quantized ``.ftz``) checked before the library loads it:
its magic number and version, the sizes its header declares, and that the file stores the bytes
its input matrix needs (so a truncated or sparse file is refused before fastText allocates the
matrix it declares). Layout: fastText's ``FastText::loadModel`` (args, dictionary, input
matrix), read here with struct only."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from xfer.boundary.files import open_regular, stored_bytes
from xfer.errors import XferError

MAGIC, VERSIONS = 793712314, (11, 12)
MAX_FILE = 16 << 30  # bytes of a fastText model file
MAX_DIM, MAX_ENTRIES, MAX_BUCKET = 4096, 50_000_000, 100_000_000
MAX_WORD = 1 << 16  # bytes of one dictionary entry
_ARGS = struct.Struct("<12id")  # dim ws epoch minCount neg wordNgrams loss model bucket minn
#                                maxn lrUpdateRate, then t


def check_fasttext(path: Path, memory_cap: int | None = None) -> int:
    """Bytes of the input matrix the model at ``path`` declares, after checking the file
    holds them (and, given ``memory_cap``, that they fit it); XferError naming the file when
    it is not a fastText model, is truncated or declares sizes beyond reason."""
    where = f"language-ID model {path}"
    with open_regular(path, where, MAX_FILE) as fh:
        st = os.fstat(fh.fileno())
        data = fh.read(1 << 20)
        reader = _Reader(fh, data, where)
        magic, version = reader.unpack("<ii")
        if magic != MAGIC or version not in VERSIONS:
            raise XferError(f"{where}: not a fastText model (magic {magic}, version {version})")
        args = reader.unpack(_ARGS.format)
        dim, bucket = args[0], args[8]
        if not 0 < dim <= MAX_DIM or not 0 <= bucket <= MAX_BUCKET:
            raise XferError(f"{where}: dim {dim} or bucket {bucket} is out of range")
        size, nwords, nlabels = reader.unpack("<iii")
        _, prune = reader.unpack("<qq")
        if not (0 <= nwords and 0 <= nlabels and size == nwords + nlabels <= MAX_ENTRIES
                and -1 <= prune <= MAX_BUCKET):
            raise XferError(f"{where}: its dictionary sizes are out of range")
        for _ in range(size):
            reader.word()
            reader.skip(9)  # count (int64), type (int8)
        reader.skip(8 * max(prune, 0))
        (quant,) = reader.unpack("<?")
        if quant:
            _, rows, cols, codes = reader.unpack("<?qqi")
            need = codes
        else:
            rows, cols = reader.unpack("<qq")
            need = rows * cols * 4
        if not (0 <= rows <= MAX_ENTRIES + MAX_BUCKET and cols == dim and need >= 0):
            raise XferError(f"{where}: its input matrix ({rows} x {cols}) does not fit its "
                            f"header")
        if reader.offset + need > stored_bytes(st):
            raise XferError(f"{where}: truncated or sparse: its input matrix needs "
                            f"{reader.offset + need:,} bytes, the file stores "
                            f"{stored_bytes(st):,}")
    if memory_cap is not None and rows * cols * 4 > memory_cap:
        raise XferError(f"{where}: its input matrix needs {rows * cols * 4 / 2**30:.2f} GiB, "
                        f"more than the {memory_cap / 2**30:.2f} GiB allowed")
    return rows * cols * 4


class _Reader:
    """Sequential reads over a file, buffered, with one-line errors at its end."""

    def __init__(self, fh, data: bytes, where: str) -> None:
        self.fh, self.buf, self.pos, self.base, self.where = fh, data, 0, 0, where

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def _need(self, n: int) -> None:
        if self.pos + n <= len(self.buf):
            return
        more = self.fh.read(max(n, 1 << 20))
        self.buf, self.base, self.pos = self.buf[self.pos:] + more, self.offset, 0
        if n > len(self.buf):
            raise XferError(f"{self.where}: truncated at byte {self.offset + len(self.buf):,}")

    def unpack(self, fmt: str) -> tuple:
        n = struct.calcsize(fmt)
        self._need(n)
        value = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return value

    def skip(self, n: int) -> None:
        if n > 1 << 20:
            self.fh.seek(self.offset + n)
            self.buf, self.base, self.pos = b"", self.offset + n, 0
            return
        self._need(n)
        self.pos += n

    def word(self) -> None:
        end = self.buf.find(b"\0", self.pos)
        while end < 0:
            if len(self.buf) - self.pos > MAX_WORD:
                raise XferError(f"{self.where}: a dictionary entry longer than {MAX_WORD} bytes")
            self._need(len(self.buf) - self.pos + 1)
            end = self.buf.find(b"\0", self.pos)
        self.pos = end + 1
