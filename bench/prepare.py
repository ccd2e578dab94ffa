"""Benchmark `xfer prepare` from a local folder: input MB/s and peak resident memory.

Builds a `<size>` plain-text corpus from a folder of ``<code>.txt.gz`` (default: the bundled
corpus, ``xfer.data.corpora.bundled_corpus``; all languages, repeated) in a temp folder, then in
the same run measures:

- reference: plain Python reading the same file line by line (``for line in f``), MB/s;
- prepare: ``xfer.data.prepare`` on it (dev/test 1% each, budgets 10% and 90% of the input) in
  a child process: input MB/s, ratio to the reference, and the child's peak RSS (MiB);
- synthetic: generation speed of ``xfer.data.synthetic.documents`` (MB/s of UTF-8), if present.

    python bench/prepare.py                 # 200MB input, well under a minute
    python bench/prepare.py --size 1GB      # the memory claim: peak RSS < 1 GB
    python bench/prepare.py --corpus DIR    # repeat DIR/*.txt.gz instead of the bundled text
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 10**6

CHILD = """
import json, sys, time
from pathlib import Path
from xfer.data import prepare
corpus, out, fmt, budgets, dev = sys.argv[1:6]
t = time.perf_counter()
prepare(corpus, ["mix"], [int(b) for b in budgets.split(",")], int(dev), int(dev), 0, Path(out))
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def make_input(folder: Path, size: int, fmt: str, source: Path) -> Path:
    """A corpus file of about ``size`` bytes: the text of every language of ``source``
    (``<code>.txt.gz``), repeated."""
    text = b"".join(gzip.open(p).read() for p in sorted(source.glob("*.txt.gz")))
    if not text:
        raise SystemExit(f"bench/prepare.py: error: no <code>.txt.gz text in {source}")
    path = folder / f"mix.{fmt}"
    opener = gzip.open if fmt == "txt.gz" else open
    with opener(path, "wb") as f:  # compresslevel default; only the txt.gz variant pays for it
        written = 0
        while written < size:
            piece = text[: size - written]
            piece = piece[: piece.rfind(b"\n") + 1] or piece
            f.write(piece)
            written += len(piece)
    return path


def plain_python_read(path: Path) -> tuple[float, float]:
    """Reference: wall and CPU seconds for plain Python to read the file line by line."""
    t, c = time.perf_counter(), time.process_time()
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        for _ in f:
            pass
    return time.perf_counter() - t, time.process_time() - c


def synthetic_speed(megabytes: float = 5.0) -> dict[str, float] | None:
    """MB/s of UTF-8 produced by the generator, per default language."""
    try:
        from xfer.data import synthetic
    except ImportError:
        return None
    speeds = {}
    for lang in synthetic.DEFAULT_LANGUAGES:
        produced, t = 0, time.perf_counter()
        for doc in itertools.islice(synthetic.documents(lang, 0), 10**7):
            produced += len(doc.encode("utf-8")) + 1
            if produced >= megabytes * MB:
                break
        speeds[lang] = produced / MB / (time.perf_counter() - t)
    return speeds


def main() -> None:
    from xfer.data.corpora import bundled_corpus
    from xfer.units import parse_bytes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="200MB", help="input size, e.g. 200MB, 1GB (decimal units)")
    ap.add_argument("--format", choices=("txt", "txt.gz"), default="txt")
    ap.add_argument("--no-synthetic", action="store_true")
    ap.add_argument("--corpus", type=Path, default=None,
                    help="folder of <code>.txt.gz to repeat (default: the bundled corpus)")
    args = ap.parse_args()
    size = parse_bytes(args.size.upper().removesuffix("B") if args.size.upper().endswith(
        ("KB", "MB", "GB")) else args.size)
    with tempfile.TemporaryDirectory(prefix="xfer-bench-") as tmp:
        folder = Path(tmp) / "corpus"
        folder.mkdir()
        path = make_input(folder, size, args.format, args.corpus or bundled_corpus())
        plain, plain_cpu = plain_python_read(path)  # also warms the page cache for both
        dev = size // 100
        budgets = f"{size // 10},{size * 9 // 10 - 3 * dev}"
        out = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(Path(tmp) / "out"),
                              args.format, budgets, str(dev)],
                             capture_output=True, text=True, check=True)
        seconds = json.loads(out.stdout.strip().splitlines()[-1])["seconds"]
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mib, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
        file_mb = path.stat().st_size / MB
    print(f"input: {args.format}, {size / MB:.0f} MB of text ({file_mb:.0f} MB on disk), "
          f"budgets {budgets}, dev/test {dev}")
    print("                                        wall MB/s  CPU MB/s (per CPU-second)")
    print(f"reference (plain Python, line by line): {size / MB / plain:8.1f}  "
          f"{size / MB / plain_cpu:8.1f}")
    print(f"xfer prepare (one process):             {size / MB / seconds:8.1f}  "
          f"{size / MB / cpu:8.1f}  = {plain / seconds:.2f} x reference wall, "
          f"{plain_cpu / cpu:.2f} x CPU ({seconds:.2f} s wall, {cpu:.2f} s CPU incl. imports)")
    print(f"xfer prepare peak RSS:                  {peak_mib:8.1f} MiB")
    speeds = None if args.no_synthetic else synthetic_speed()
    if speeds is None:
        print("synthetic: skipped (--no-synthetic) or xfer.data.synthetic not available")
    else:
        for lang, speed in speeds.items():
            print(f"synthetic generation {lang:>10}:         {speed:8.2f} MB/s")


if __name__ == "__main__":
    main()
