"""``python -m xfer.data.trim FULL_CORPUS``: regenerate the bundled corpus (``xfer/data/corpus``).

``FULL_CORPUS`` holds ``text/<code>.txt.gz`` (one sentence per line) and
``parallel/flores200/<code>.txt`` (aligned line by line). For each language the bundle keeps:

- ``text/<code>.txt.gz``: a seeded random subset of the lines, about ``--bytes`` bytes of UTF-8
  (newlines included; a language with less keeps all of it), written in the full file's order so
  its mix of sections matches the full file's. The subset: the line numbers shuffled with
  ``numpy.random.Generator(PCG64(seed)).shuffle``, taken in that order until the bytes are
  reached, then sorted. Written with gzip level 9, no name and mtime 0, so a rerun on the same
  input gives the same bytes.
- ``parallel/flores200/<code>.txt``: copied whole (every file must have the same line count).

Prints a markdown table (language, text bytes and lines kept of the full file's) for the
bundle's README.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np

from xfer.cli import ArgumentParser
from xfer.errors import XferError, exit_on_error
from xfer.units import parse_bytes

PROG = "python -m xfer.data.trim"
DEFAULT_BYTES = 500_000  # text kept per language, UTF-8 bytes with newlines
PARALLEL = Path("parallel") / "flores200"


def sample_lines(lines: list[bytes], wanted: int, seed: int) -> list[bytes]:
    """A seeded random subset of ``lines`` (no newlines) holding at least ``wanted`` bytes with
    one newline each, or all of them; in their original order."""
    if sum(len(x) + 1 for x in lines) <= wanted:
        return list(lines)
    order = np.arange(len(lines))
    np.random.Generator(np.random.PCG64(seed)).shuffle(order)
    sizes = np.fromiter((len(lines[i]) + 1 for i in order), dtype=np.int64, count=len(order))
    stop = int(np.searchsorted(np.cumsum(sizes), wanted, side="left")) + 1
    return [lines[i] for i in np.sort(order[:stop])]


def write_gzip(path: Path, data: bytes) -> None:
    """``data`` gzip-compressed (level 9) with an empty name and mtime 0: reproducible bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", compresslevel=9,
                                                fileobj=raw, mtime=0) as f:
        f.write(data)


def trim(full: Path, out: Path, wanted: int = DEFAULT_BYTES, seed: int = 0) -> list[dict]:
    """Write the bundle for every language of ``full`` into ``out``; returns one row per
    language: code, bytes and lines kept, bytes and lines of the full file, parallel lines."""
    full, out = Path(full), Path(out)
    texts = sorted((full / "text").glob("*.txt.gz"))
    if not texts:
        raise XferError(f"no text/<code>.txt.gz in {full}")
    codes = [p.name.removesuffix(".txt.gz") for p in texts]
    parallel = {code: full / PARALLEL / f"{code}.txt" for code in codes}
    missing = [c for c, p in parallel.items() if not p.is_file()]
    if missing:
        raise XferError(f"no {PARALLEL}/<code>.txt in {full} for {', '.join(missing)}")
    counts = {c: len(p.read_bytes().splitlines()) for c, p in parallel.items()}
    if len(set(counts.values())) != 1:
        raise XferError(f"parallel files are not aligned: line counts {counts}")
    rows = []
    for code, path in zip(codes, texts, strict=True):
        with gzip.open(path, "rb") as f:
            lines = [x for x in f.read().split(b"\n") if x]
        kept = sample_lines(lines, wanted, seed)
        data = b"".join(x + b"\n" for x in kept)
        write_gzip(out / "text" / f"{code}.txt.gz", data)
        (out / PARALLEL).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(parallel[code], out / PARALLEL / f"{code}.txt")
        rows.append({"code": code, "bytes": len(data), "lines": len(kept),
                     "full_bytes": sum(len(x) + 1 for x in lines), "full_lines": len(lines),
                     "parallel_lines": counts[code]})
    return rows


def table(rows: list[dict]) -> str:
    """The markdown table of :func:`trim`'s rows."""
    out = ["| code | text bytes kept | lines kept | of the full file's bytes | lines |",
           "| --- | ---: | ---: | ---: | ---: |"]
    out += [f"| {r['code']} | {r['bytes']:,} | {r['lines']:,} | {r['full_bytes']:,} | "
            f"{r['full_lines']:,} |" for r in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m xfer.data.trim``."""
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("full", type=Path, help="the full corpus folder (text/, parallel/)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("corpus"),
                        help="the bundle folder (default: xfer/data/corpus)")
    parser.add_argument("--bytes", default=str(DEFAULT_BYTES),
                        help=f"text kept per language, bytes (default {DEFAULT_BYTES:,})")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    args = parser.parse_args(argv)

    def go() -> int:
        rows = trim(args.full, args.out, parse_bytes(args.bytes), args.seed)
        print(table(rows))
        return 0

    return exit_on_error(PROG, go)


if __name__ == "__main__":
    raise SystemExit(main())
