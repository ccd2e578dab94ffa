"""``prepare``: a corpus -> per-language dev/test/train byte files and a manifest, once.

Layout per language: ``<out>/<lang>/{manifest.json, train.bin, dev.bin, test.bin}``. Each .bin
holds raw UTF-8 bytes (uint8) with 0xFF after every document (see :mod:`xfer.data.vocab` for why:
0xFF never occurs in valid UTF-8, and uint8 files are half the size of uint16 ids). Budget b is
exactly the first b bytes of train.bin. Everything is built in a hidden temporary folder beside
the target and renamed into place only when complete.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

import xfer
from xfer.boundary import read_json_object
from xfer.boundary.outputs import check_out, clean_stale, temp_prefix
from xfer.data.corpora import DEFAULT_SHUFFLE_BUFFER, Corpus, Draw, open_corpus
from xfer.data.store import MANIFEST, SPLITS
from xfer.data.vocab import DOC_SEPARATOR
from xfer.data.writer import SplitWriter
from xfer.errors import XferError
from xfer.io import atomic_write_bytes
from xfer.memory import keep_freed_memory
from xfer.units import format_budget, parse_budgets, parse_bytes

FORMAT = "xfer-dataset/1"


def creation_command(corpus: str, langs: Sequence[str], budgets: Sequence[int], dev_bytes: int,
                     test_bytes: int, seed: int, out: Path, mc4_files: str | None = None) -> str:
    """The ``xfer prepare`` command line equivalent to a :func:`prepare` call."""
    parts = ["xfer", "prepare", "--corpus", str(corpus)]
    for lang in langs:
        parts += ["--lang", lang]
    parts += ["--budgets", ",".join(str(b) for b in budgets), "--dev-bytes", str(dev_bytes),
              "--test-bytes", str(test_bytes), "--seed", str(seed), "--out", str(out)]
    if mc4_files:
        parts += ["--mc4-files", mc4_files]
    return shlex.join(parts)


def _settings(source: Corpus, lang: str, budgets: list[int], dev_bytes: int, test_bytes: int,
              seed: int) -> dict:
    return {"format": FORMAT, "corpus": source.identity(), "lang": lang, "budgets": budgets,
            "dev_bytes": dev_bytes, "test_bytes": test_bytes, "seed": seed}


def _check_existing(folder: Path, settings: dict) -> None:
    """Accept an existing dataset made with the same settings; refuse anything else."""
    path = folder / MANIFEST
    if not path.exists():
        raise XferError(f"{folder} exists but has no {MANIFEST}: not a finished xfer dataset "
                        "(remove it or choose another --out)")
    old = read_json_object(path, f"{path}", "settings", kind="manifest")["settings"]
    if not isinstance(old, dict):
        raise XferError(f"{path} is not a valid xfer manifest")
    if old != settings:
        diff = [f"{k} {old.get(k)!r} (asked {settings[k]!r})" for k in settings
                if old.get(k) != settings[k]]
        raise XferError(f"{folder} was prepared with different settings: {'; '.join(diff)}; "
                        "choose another --out or remove it")
    for split in SPLITS:
        if not (folder / f"{split}.bin").is_file():
            raise XferError(f"{folder} is incomplete: {split}.bin missing (remove the folder)")


def _fill(draw: Draw, writers: list[SplitWriter]) -> None:
    """Feed drawn documents to the writers in order (dev, test, train) until all are full."""
    current = 0
    for batch in draw.batches:
        start: int | None = 0
        while current < len(writers):
            start = writers[current].feed(batch, start)
            if start is None:
                break
            current += 1
        if current == len(writers):
            break
    draw.batches.close()  # type: ignore[attr-defined]


def _too_small(source: Corpus, lang: str, have: int, wanted: int, dev: int, test: int,
               biggest: int, exact: bool) -> XferError:
    how = "holds" if exact else "ran out after"
    return XferError(f"corpus {source.identity().get('path', source.identity()['kind'])} for "
                     f"{lang!r} {how} {have:,} bytes of documents (with separators) but dev "
                     f"{dev:,} + test {test:,} + largest budget {biggest:,} = {wanted:,} bytes "
                     "were asked for")


def _build(source: Corpus, lang: str, budgets: list[int], dev_bytes: int, test_bytes: int,
           seed: int, folder: Path, command: str, progress: bool) -> dict:
    wanted = dev_bytes + test_bytes + budgets[-1]
    draw = source.draw(seed, folder, progress, wanted)
    if draw.available_bytes is not None and draw.available_bytes < wanted:
        raise _too_small(source, lang, draw.available_bytes, wanted, dev_bytes, test_bytes,
                         budgets[-1], exact=True)
    bar = tqdm(total=wanted, desc=f"prepare {lang}", unit="B", unit_scale=True,
               disable=None if progress else True)
    limits = {"dev": [dev_bytes], "test": [test_bytes], "train": budgets}
    writers = [SplitWriter(folder / f"{s}.bin", limits[s], bar.update) for s in SPLITS]
    try:
        _fill(draw, writers)
    finally:
        bar.close()
        for w in writers:
            w.close()
    if not writers[-1].full:
        got = sum(w.written for w in writers)
        raise _too_small(source, lang, got, wanted, dev_bytes, test_bytes, budgets[-1], False)
    splits = {s: {"file": f"{s}.bin", **w.records[-1]}
              for s, w in zip(SPLITS, writers, strict=True)}
    return {
        "format": FORMAT,
        "lang": lang,
        "settings": _settings(source, lang, budgets, dev_bytes, test_bytes, seed),
        "seed": seed,
        "command": command,
        "corpus": source.describe(),
        "sampling": draw.sampling,
        "storage": {"dtype": "uint8", "content": "UTF-8 bytes", "document_separator": DOC_SEPARATOR,
                    "note": "0xFF after every document; the last document of a split or budget "
                            "prefix may be cut; budget b = the first b bytes of train.bin"},
        "splits": splits,
        "budgets": {str(b): {"name": format_budget(b), **rec}
                    for b, rec in zip(budgets, writers[-1].records, strict=True)},
        "invalid_utf8_lines": draw.stats.invalid_utf8_lines,
        "invalid_utf8_handling": "replaced with U+FFFD, counted per document (line)",
        "empty_documents_skipped": draw.stats.empty_documents,
        "xfer_version": xfer.__version__,
    }


def prepare_language(source: Corpus, lang: str, budgets: list[int], dev_bytes: int,
                     test_bytes: int, seed: int, out: Path, command: str,
                     progress: bool = False) -> Path:
    """Prepare one language (see :func:`prepare`); returns ``out/lang``."""
    final = out / lang
    settings = _settings(source, lang, budgets, dev_bytes, test_bytes, seed)
    if final.is_symlink():
        raise XferError(f"{final} is a symbolic link; a dataset folder holds only its own files")
    clean_stale(out, lang)  # what an interrupted run left
    if final.exists():
        _check_existing(final, settings)
        return final
    out.mkdir(parents=True, exist_ok=True)
    keep_freed_memory()  # large arrays come and go in every round: no page faults each time
    staging = Path(tempfile.mkdtemp(prefix=temp_prefix(lang), dir=out))
    try:
        manifest = _build(source, lang, budgets, dev_bytes, test_bytes, seed, staging, command,
                          progress)
        for leftover in staging.iterdir():  # spilled corpora, buckets of an unfinished round
            if leftover.name not in {MANIFEST, *(f"{s}.bin" for s in SPLITS)}:
                leftover.unlink()
        text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        atomic_write_bytes(staging / MANIFEST, text.encode("utf-8"))
        staging.chmod(0o755)  # mkdtemp makes it private
        try:
            os.rename(staging, final)
        except OSError:  # someone finished the same folder meanwhile
            _check_existing(final, settings)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def prepare(corpus: str | os.PathLike, langs: Sequence[str], budgets: Sequence[int | str],
            dev_bytes: int | str, test_bytes: int | str, seed: int, out: Path,
            progress: bool = False, *, mc4_files: str | None = None,
            shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER) -> list[Path]:
    """Build ``out/<lang>/`` for each language: dev.bin (``dev_bytes``), test.bin
    (``test_bytes``) and train.bin (the largest budget, bytes), with a manifest.

    Documents are drawn in a seeded random order without replacement: dev first, then test,
    then train, so dev/test never overlap any budget and each budget is a prefix of the next.
    Idempotent: a folder already made with the same settings is left as it is; one made with
    different settings raises :class:`XferError`. Returns the language folders. Building a
    folder applies :func:`xfer.memory.keep_freed_memory` to this process."""
    corpus = str(corpus)
    budgets = parse_budgets(list(budgets))
    dev_bytes, test_bytes = parse_bytes(dev_bytes), parse_bytes(test_bytes)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise XferError(f"seed must be a non-negative integer: {seed!r}")
    langs = list(langs)
    if not langs:
        raise XferError("no language given")
    if len(set(langs)) != len(langs):
        raise XferError(f"a language is given twice: {', '.join(langs)}")
    out = check_out(Path(out), "--out")  # not a symbolic link, not a file
    sources = [open_corpus(corpus, lang, mc4_files=mc4_files, shuffle_buffer=shuffle_buffer)
               for lang in langs]  # check every language before writing anything
    command = creation_command(corpus, langs, budgets, dev_bytes, test_bytes, seed, out, mc4_files)
    return [prepare_language(src, lang, budgets, dev_bytes, test_bytes, seed, out, command,
                             progress) for src, lang in zip(sources, langs, strict=True)]
