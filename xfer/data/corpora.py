"""Corpora: where documents come from, and how a seeded sample of them is drawn.

- :class:`LocalCorpus`: a folder with ``<lang>.txt`` / ``<lang>.txt.gz`` (one document per line),
  ``<lang>.jsonl`` / ``<lang>.jsonl.gz`` or ``<lang>.parquet`` (a ``text`` field). Sampled by an
  exact seeded permutation of all its documents (compressed and record files are first unpacked
  into the work folder, so every local format gets the same exact draw).
- :class:`Mc4Corpus`: mC4 through Hugging Face ``datasets`` in streaming mode, with the library's
  seeded shuffle buffer. ``data_files`` points the very same loader at local json/parquet files.
- :class:`SyntheticCorpus`: the generated languages of :mod:`xfer.data.synthetic`.
- ``bundled``: the real text shipped inside the package (:func:`bundled_corpus`, eleven
  languages, about 500 kB each; provenance and licences in its README.md), read as a local
  folder; :func:`bundled_parallel` is its aligned FLORES-200 text.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xfer.data import sampling
from xfer.data.gather import permuted_batches
from xfer.data.sampling import DrawStats
from xfer.errors import XferError
from xfer.io import first_line

LOCAL_FORMATS = (".txt", ".txt.gz", ".jsonl", ".jsonl.gz", ".parquet")
MC4_DATASET = "allenai/c4"
MC4_FILES_ENV = "XFER_MC4_FILES"
DEFAULT_SHUFFLE_BUFFER = 10_000  # documents held by the mC4 shuffle buffer
BUNDLED = "bundled"  # the corpus name of the text shipped in the package
BUNDLE_DIR = Path(__file__).resolve().with_name("corpus")
# The 101 languages of mC4 (+ romanised variants and "und"), as allenai/c4 names its configs.
MC4_LANGUAGES = frozenset("""
af am ar az be bg bg-Latn bn ca ceb co cs cy da de el el-Latn en eo es et eu fa fi fil fr fy ga gd
gl gu ha haw hi hi-Latn hmn ht hu hy id ig is it iw ja ja-Latn jv ka kk km kn ko ku ky la lb lo lt
lv mg mi mk ml mn mr ms mt my ne nl no ny pa pl ps pt ro ru ru-Latn sd si sk sl sm sn so sq sr st su
sv sw ta te tg th tr uk und ur uz vi xh yi yo zh zh-Latn zu""".split())


@dataclass
class Draw:
    """A seeded sample in progress: batches of whole documents (each ending 0xFF), how they were
    drawn, what was repaired, and (when known in advance) how many bytes the corpus can give."""

    batches: Iterator[np.ndarray]
    sampling: dict
    stats: DrawStats = field(default_factory=DrawStats)
    available_bytes: int | None = None


def _text_records(path: Path, stats: DrawStats) -> Iterator[str]:
    """The ``text`` field of each record of a .jsonl / .jsonl.gz / .parquet file."""
    if path.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:
            raise XferError(f"{path}: not a readable parquet file ({exc})") from None
        if "text" not in pf.schema_arrow.names:
            names = ", ".join(pf.schema_arrow.names)
            raise XferError(f"{path}: no 'text' column (columns: {names})")
        for batch in pf.iter_batches(columns=["text"], batch_size=8192):
            for text in batch.column(0).to_pylist():
                if text is not None and not isinstance(text, str):
                    raise XferError(f"{path}: column 'text' is not a string column")
                yield text or ""
        return
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                stats.invalid_utf8_lines += 1
                text = line.decode("utf-8", errors="replace")
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise XferError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise XferError(f"{path}:{number}: record has no string field 'text'")
            yield record["text"]


class LocalCorpus:
    """One language's file in a local folder."""

    def __init__(self, folder: Path, lang: str) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise XferError(f"corpus folder not found: {folder}")
        found = [p for p in (folder / f"{lang}{ext}" for ext in LOCAL_FORMATS) if p.is_file()]
        if not found:
            have = sorted({p.name.split(".")[0] for p in folder.iterdir()
                           if any(p.name.endswith(ext) for ext in LOCAL_FORMATS)})
            raise XferError(f"unknown language {lang!r} for corpus {folder}: no {lang}.txt, "
                            f"{lang}.txt.gz, {lang}.jsonl(.gz) or {lang}.parquet there "
                            f"(languages present: {', '.join(have) or 'none'})")
        if len(found) > 1:
            raise XferError(f"ambiguous corpus for {lang!r}: {', '.join(p.name for p in found)} "
                            f"in {folder}; keep one")
        self.lang = lang
        self.path = found[0].resolve()
        self.format = next(ext for ext in LOCAL_FORMATS if self.path.name == f"{lang}{ext}")

    def identity(self) -> dict:
        """What must match for an existing dataset to count as made from this corpus."""
        return {"kind": "local", "path": str(self.path), "bytes": self.path.stat().st_size}

    def describe(self) -> dict:
        return {**self.identity(), "format": self.format,
                "documents": "one per line" if ".txt" in self.format else "'text' field"}

    def documents(self) -> Iterator[str]:
        """All documents in file order (invalid UTF-8 replaced)."""
        if ".txt" in self.format:
            opener = gzip.open if self.format.endswith(".gz") else open
            with opener(self.path, "rb") as f:
                for line in f:
                    yield line.rstrip(b"\r\n").decode("utf-8", errors="replace")
        else:
            yield from _text_records(self.path, DrawStats())

    def draw(self, seed: int, workdir: Path, progress: bool = False, wanted: int = 0) -> Draw:
        """An exact seeded permutation of all documents; temporary files go to ``workdir``;
        about ``wanted`` bytes are gathered at a time."""
        stats = DrawStats()
        if self.format == ".txt":
            index = sampling.index_file(self.path, sampling.NEWLINE, progress)
        elif self.format == ".txt.gz":
            index = sampling.spill_gzip(self.path, workdir / f"{self.lang}.spill", progress)
        else:
            index = sampling.spill_documents(_text_records(self.path, stats),
                                             workdir / f"{self.lang}.spill", stats)
        how = {
            "method": "exact_permutation",
            "description": (f"all {index.documents} documents indexed, shuffled with "
                            f"numpy.random.Generator(PCG64({seed})).shuffle, taken in that order "
                            "without replacement: dev first, then test, then train"),
            "source_documents": index.documents,
            "numpy": np.__version__,
        }
        batches = permuted_batches(index, seed, stats, ".txt" in self.format, workdir, wanted)
        return Draw(batches, how, stats, index.available_bytes())


class Mc4Corpus:
    """mC4 (``allenai/c4``, one config per language) streamed through ``datasets``.

    ``data_files`` (a glob, ``{lang}`` replaced by the language) makes the same loader read local
    json/jsonl(.gz) or parquet files in the mC4 record format instead of the Hub."""

    def __init__(self, lang: str, data_files: str | None = None,
                 shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER) -> None:
        if lang not in MC4_LANGUAGES:
            raise XferError(f"unknown language {lang!r} for corpus mc4 (mC4 codes: en, de, zh…)")
        if shuffle_buffer < 1:
            raise XferError(f"shuffle buffer must be at least 1 document: {shuffle_buffer}")
        self.lang = lang
        self.shuffle_buffer = shuffle_buffer
        self.files: list[str] | None = None
        if data_files:
            pattern = data_files.replace("{lang}", lang)
            self.files = sorted(glob.glob(pattern))
            if not self.files:
                raise XferError(f"no mC4 files for {lang!r} match {pattern}")

    def identity(self) -> dict:
        source = ({"files": self.files} if self.files
                  else {"dataset": MC4_DATASET, "config": self.lang})
        return {"kind": "mc4", **source, "shuffle_buffer": self.shuffle_buffer}

    def describe(self) -> dict:
        return {**self.identity(), "loader": "datasets.load_dataset(streaming=True)"}

    def _stream(self):
        import datasets

        datasets.logging.set_verbosity_error()
        datasets.disable_progress_bars()
        try:
            if self.files is None:
                return datasets.load_dataset(MC4_DATASET, self.lang, split="train", streaming=True)
            builder = "parquet" if all(f.endswith(".parquet") for f in self.files) else "json"
            return datasets.load_dataset(builder, data_files=self.files, split="train",
                                         streaming=True)
        except Exception as exc:
            raise XferError(f"cannot open mC4 for {self.lang!r}: {first_line(exc)}") from None

    def documents(self, seed: int | None = None) -> Iterator[str]:
        """Documents in stream order, or through the seeded shuffle buffer if ``seed`` is given."""
        stream = self._stream()
        if seed is not None:
            stream = stream.shuffle(seed=seed, buffer_size=self.shuffle_buffer)
        try:
            for number, record in enumerate(stream, 1):
                text = record.get("text")
                if not isinstance(text, str):
                    raise XferError(f"mC4 record {number} for {self.lang!r} has no string 'text'")
                yield text
        except XferError:
            raise
        except Exception as exc:
            raise XferError(f"reading mC4 for {self.lang!r} failed: {first_line(exc)}") from None

    def draw(self, seed: int, workdir: Path, progress: bool = False, wanted: int = 0) -> Draw:
        import datasets

        stats = DrawStats()
        how = {
            "method": "shuffle_buffer",
            "description": (f"datasets {datasets.__version__} IterableDataset.shuffle(seed={seed}, "
                            f"buffer_size={self.shuffle_buffer}): shard order shuffled, then each "
                            "document drawn at random from a buffer of that many; taken without "
                            "replacement: dev first, then test, then train"),
            "buffer_documents": self.shuffle_buffer,
            "datasets": datasets.__version__,
        }
        return Draw(sampling.stream_batches(self.documents(seed), stats), how, stats, None)


class SyntheticCorpus:
    """A generated language: ``xfer.data.synthetic.documents(lang, seed)``, endless."""

    def __init__(self, lang: str) -> None:
        try:
            from xfer.data import synthetic
        except ImportError as exc:
            raise XferError(f"the synthetic-language generator is not available ({exc})") from None
        if lang not in synthetic.LANGUAGES:
            raise XferError(f"unknown language {lang!r} for corpus synthetic "
                            f"(known: {', '.join(sorted(synthetic.LANGUAGES))})")
        self.lang = lang
        self._synthetic = synthetic

    def identity(self) -> dict:
        return {"kind": "synthetic", "language": self.lang}

    def describe(self) -> dict:
        return {**self.identity(), "description": self._synthetic.describe(self.lang)}

    def documents(self, seed: int = 0) -> Iterator[str]:
        # Each language draws its own documents: the same seed would make the content languages
        # parallel, leaking translations of one language's test set into another's training set.
        own_seed = self._synthetic.independent_seed(self.lang, seed)
        return self._synthetic.documents(self.lang, own_seed)

    def draw(self, seed: int, workdir: Path, progress: bool = False, wanted: int = 0) -> Draw:
        stats = DrawStats()
        how = {
            "method": "generator_order",
            "description": (f"documents(lang, seed={seed}) is an endless seeded random stream; "
                            "its documents are taken in order: dev first, then test, then train"),
        }
        return Draw(sampling.stream_batches(self.documents(seed), stats), how, stats, None)


Corpus = LocalCorpus | Mc4Corpus | SyntheticCorpus


def _lacks(corpus: LocalCorpus, needed: int) -> str | None:
    """What ``corpus``'s file lacks for ``needed`` bytes of documents (with separators), or
    None: the first line that is not UTF-8, or the shortfall in bytes. Reads the whole file."""
    if corpus.format not in (".txt", ".txt.gz"):
        return None  # record formats are checked record by record when drawn
    opener = gzip.open if corpus.format.endswith(".gz") else open
    have = 0
    with opener(corpus.path, "rb") as f:
        for number, line in enumerate(f, 1):
            body = line.rstrip(b"\r\n")
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                return (f"UTF-8 text: {corpus.path.name} line {number}, byte {exc.start + 1} is "
                        "not UTF-8")
            have += len(body) + 1 if body else 0
    if have < needed:
        return (f"text: {corpus.path.name} holds {have:,} bytes of documents, the study asks "
                f"for {needed:,} (dev + test + its largest budget)")
    return None


def check_folder(folder: str | os.PathLike, needed: dict[str, int]) -> None:
    """Before a study starts: every language of ``needed`` (language -> bytes of documents,
    separators included, its dev + test + largest budget) has one UTF-8 file in ``folder`` with
    that much text. Raises :class:`XferError` with one line naming the language and what it
    lacks (the first language in ``needed``'s order that fails). ``folder`` may be ``bundled``."""
    folder = resolve_corpus(folder)
    for lang, wanted in needed.items():
        try:
            corpus = LocalCorpus(Path(folder), lang)
        except XferError as exc:
            raise XferError(f"corpus {folder}: language {lang!r} lacks a file ({exc})") from None
        problem = _lacks(corpus, wanted)
        if problem:
            raise XferError(f"corpus {folder}: language {lang!r} lacks {problem}")


def bundled_corpus() -> Path:
    """The folder of the bundled training text: ``<code>.txt.gz`` for ar de en es fi id ja ko
    pt ru zh (about 500 kB of UTF-8 each, one sentence per line)."""
    return _bundled(BUNDLE_DIR / "text")


def bundled_parallel() -> Path:
    """The folder of the bundled FLORES-200 dev + devtest text: ``<code>.txt`` for the same
    eleven languages, 2009 lines each, aligned line by line."""
    return _bundled(BUNDLE_DIR / "parallel" / "flores200")


def _bundled(folder: Path) -> Path:
    if not folder.is_dir():
        raise XferError(f"the bundled corpus is missing from this installation: {folder}")
    return folder


def resolve_corpus(corpus: str | os.PathLike) -> str:
    """``corpus`` with the name ``bundled`` replaced by :func:`bundled_corpus`'s folder."""
    return str(bundled_corpus()) if str(corpus) == BUNDLED else str(corpus)


def open_corpus(corpus: str | os.PathLike, lang: str, *, mc4_files: str | None = None,
                shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER) -> Corpus:
    """The corpus named ``corpus`` ("mc4", "synthetic", "bundled" or a folder) for one language.

    For mC4, ``mc4_files`` (default: the ``XFER_MC4_FILES`` environment variable) is a glob with
    ``{lang}`` that points the loader at local files instead of the Hugging Face Hub."""
    name = str(corpus)
    if name == "mc4":
        return Mc4Corpus(lang, mc4_files or os.environ.get(MC4_FILES_ENV), shuffle_buffer)
    if name == "synthetic":
        return SyntheticCorpus(lang)
    return LocalCorpus(Path(resolve_corpus(name)), lang)
