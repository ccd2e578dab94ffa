"""Data layer: budgets, nesting, determinism, disjoint splits, formats, repair, idempotence."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xfer.data import iter_documents, load_split, open_corpus, prepare, read_manifest
from xfer.errors import XferError

LINES = 3000  # documents per test language (~380 KB of English)


def _lines(shared_corpus: Path, lang: str, n: int = LINES) -> list[str]:
    with gzip.open(shared_corpus / "text" / f"{lang}.txt.gz", "rt", encoding="utf-8") as f:
        return [next(f).rstrip("\n") for _ in range(n)]


@pytest.fixture(scope="module")
def en_lines(shared_corpus: Path) -> list[str]:
    return _lines(shared_corpus, "en")


@pytest.fixture(scope="module")
def folder(tmp_path_factory, shared_corpus: Path, en_lines: list[str]) -> Path:
    """en in every local format (same documents, different files), plus ja as plain text."""
    root = tmp_path_factory.mktemp("corpus")
    formats = {}
    for fmt in ("txt", "txt.gz", "jsonl", "parquet"):
        sub = root / fmt
        sub.mkdir()
        formats[fmt] = sub
    text = "\n".join(en_lines) + "\n"
    (formats["txt"] / "en.txt").write_text(text, encoding="utf-8")
    (formats["txt"] / "ja.txt").write_text("\n".join(_lines(shared_corpus, "ja")) + "\n",
                                           encoding="utf-8")
    with gzip.open(formats["txt.gz"] / "en.txt.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    (formats["jsonl"] / "en.jsonl").write_text(
        "".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(en_lines)),
        encoding="utf-8")
    pq.write_table(pa.table({"text": en_lines}), formats["parquet"] / "en.parquet")
    return root


def _prep(corpus, out: Path, budgets=(20_000, 60_000), seed=0, dev=5_000, test=5_000,
          langs=("en",), **kw) -> Path:
    return prepare(str(corpus), list(langs), list(budgets), dev, test, seed, out, **kw)[0]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_exact_bytes_nesting_and_manifest(folder: Path, tmp_path: Path):
    ds = _prep(folder / "txt", tmp_path, budgets=["20K", "60K"])
    m = read_manifest(tmp_path, "en")
    assert (ds / "train.bin").stat().st_size == 60_000
    assert (ds / "dev.bin").stat().st_size == 5_000 and (ds / "test.bin").stat().st_size == 5_000
    full = load_split(tmp_path, "en", "train")
    small = load_split(tmp_path, "en", "train", 20_000)
    assert small.size == 20_000 and np.array_equal(small, full[:20_000])  # 20K ⊂ 60K
    for budget in (20_000, 60_000):
        rec = m["budgets"][str(budget)]
        prefix = full[:budget].tobytes()
        assert rec["bytes"] == budget
        assert rec["sha256"] == hashlib.sha256(prefix).hexdigest()
        assert rec["documents"] == len(list(iter_documents(full[:budget])))
    for split in ("dev", "test", "train"):
        assert m["splits"][split]["sha256"] == _sha(ds / f"{split}.bin")
    assert m["sampling"]["method"] == "exact_permutation"
    assert m["seed"] == 0 and m["command"].startswith("xfer prepare --corpus ")
    assert m["invalid_utf8_lines"] == 0 and m["empty_documents_skipped"] == 0
    with pytest.raises(XferError, match="budget 30000 not prepared"):
        load_split(tmp_path, "en", "train", 30_000)
    with pytest.raises(XferError, match="no prepared dataset"):
        load_split(tmp_path, "de", "dev")


def test_random_order_without_replacement_and_disjoint_splits(folder: Path, tmp_path: Path,
                                                              en_lines: list[str]):
    _prep(folder / "txt", tmp_path, budgets=[100_000], dev=10_000, test=10_000)
    docs = {s: list(iter_documents(load_split(tmp_path, "en", s)))
            for s in ("dev", "test", "train")}
    whole = {s: d[:-1] for s, d in docs.items()}  # the last document of each split may be cut
    source = set(en_lines)
    for split, items in whole.items():
        assert set(items) <= source, split
        assert len(set(items)) == len(items), f"{split}: a document drawn twice"
    assert not set(docs["dev"]) & set(docs["train"])
    assert not set(docs["test"]) & set(docs["train"])
    assert not set(docs["dev"]) & set(docs["test"])
    assert docs["dev"][:20] != en_lines[:20]  # drawn at random, not in file order


def test_determinism_and_seed(folder: Path, tmp_path: Path):
    a = _prep(folder / "txt", tmp_path / "a", seed=7)
    b = _prep(folder / "txt", tmp_path / "b", seed=7)
    c = _prep(folder / "txt", tmp_path / "c", seed=8)
    for split in ("dev", "test", "train"):
        assert _sha(a / f"{split}.bin") == _sha(b / f"{split}.bin")
        assert _sha(a / f"{split}.bin") != _sha(c / f"{split}.bin")


def test_every_local_format_gives_the_same_dataset(folder: Path, tmp_path: Path):
    shas = {fmt: _sha(_prep(folder / fmt, tmp_path / fmt.replace(".", "_")) / "train.bin")
            for fmt in ("txt", "txt.gz", "jsonl", "parquet")}
    assert len(set(shas.values())) == 1, shas


def test_second_run_does_nothing_and_other_settings_are_refused(folder: Path, tmp_path: Path):
    ds = _prep(folder / "txt", tmp_path, langs=("en", "ja"))
    before = {p.name: p.stat().st_mtime_ns for p in ds.iterdir()}
    assert _prep(folder / "txt", tmp_path) == ds
    assert {p.name: p.stat().st_mtime_ns for p in ds.iterdir()} == before
    with pytest.raises(XferError, match="different settings: budgets"):
        _prep(folder / "txt", tmp_path, budgets=(20_000, 50_000))
    with pytest.raises(XferError, match="different settings: seed"):
        _prep(folder / "txt", tmp_path, seed=1)
    (tmp_path / "fr").mkdir()
    (folder / "txt" / "fr.txt").write_text("bonjour\n" * 10_000, encoding="utf-8")
    try:
        with pytest.raises(XferError, match="has no manifest.json"):
            _prep(folder / "txt", tmp_path, langs=("fr",))
    finally:
        (folder / "txt" / "fr.txt").unlink()


def test_invalid_utf8_empty_lines_and_crlf_are_repaired_and_counted(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    good = [f"line number {i} é".encode() for i in range(40)]
    bad = [b"bad \xff\xfe byte %d" % i for i in range(7)]
    lines = good[:10] + bad + good[10:] + [b"", b"", b"\r"]  # CRLF lines, three empty
    (src / "xx.txt").write_bytes(b"\n".join(x if x.endswith(b"\r") else x + b"\r"
                                            for x in lines) + b"\n")
    ds = _prep(src, tmp_path / "out", langs=("xx",), budgets=[400], dev=100, test=100)
    m = read_manifest(tmp_path / "out", "xx")
    assert m["invalid_utf8_lines"] == 7
    assert m["empty_documents_skipped"] == 3
    raw = b"".join((ds / f"{s}.bin").read_bytes() for s in ("dev", "test", "train"))
    assert b"\r" not in raw and b"\xff\xff" not in raw
    docs = list(iter_documents(load_split(tmp_path / "out", "xx", "train")))
    assert all("\ufffd" not in d or d.startswith("bad ") for d in docs)


@pytest.mark.parametrize("case, message", [
    ("missing_folder", "corpus folder not found"),
    ("unknown_lang", "unknown language 'zz'"),
    ("too_small", r"holds [0-9,]+ bytes of documents .* = 1,010,000 bytes were asked for"),
    ("not_increasing", "budgets must strictly increase"),
    ("only_empty", "holds 0 bytes"),
    ("bad_json", r"en\.jsonl:2: not valid JSON"),
    ("no_text_field", r"en\.jsonl:1: record has no string field 'text'"),
    ("parquet_no_text", "no 'text' column"),
    ("mc4_unknown_lang", "unknown language 'xx' for corpus mc4"),
    ("synthetic_unknown_lang", "unknown language 'nope' for corpus synthetic"),
])
def test_bad_inputs_raise_one_line_and_leave_nothing(case, message, folder: Path,
                                                     tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    corpus, lang, budgets = str(src), "en", [20_000]
    if case == "missing_folder":
        corpus = str(tmp_path / "nowhere")
    elif case == "unknown_lang":
        corpus, lang = str(folder / "txt"), "zz"
    elif case == "too_small":
        corpus, budgets = str(folder / "txt"), [1_000_000]
    elif case == "not_increasing":
        corpus, budgets = str(folder / "txt"), [20_000, 10_000]
    elif case == "only_empty":
        (src / "en.txt").write_text("\n\n\n", encoding="utf-8")
    elif case == "bad_json":
        (src / "en.jsonl").write_text('{"text": "ok"}\n{"text": \n', encoding="utf-8")
    elif case == "no_text_field":
        (src / "en.jsonl").write_text('{"body": "ok"}\n', encoding="utf-8")
    elif case == "parquet_no_text":
        pq.write_table(pa.table({"body": ["a", "b"]}), src / "en.parquet")
    elif case == "mc4_unknown_lang":
        corpus, lang = "mc4", "xx"
    elif case == "synthetic_unknown_lang":
        corpus, lang = "synthetic", "nope"
    out = tmp_path / "out"
    with pytest.raises(XferError, match=message) as exc:
        prepare(corpus, [lang], budgets, 5_000, 5_000, 0, out)
    assert "\n" not in str(exc.value)
    assert not out.exists() or not any(out.iterdir()), "a failed run left files behind"


def test_open_corpus_reads_documents_in_file_order(folder: Path, en_lines: list[str]):
    for fmt in ("txt", "txt.gz", "jsonl", "parquet"):
        docs = open_corpus(str(folder / fmt), "en").documents()
        assert [next(docs) for _ in range(3)] == en_lines[:3], fmt


def test_output_is_exactly_the_seeded_permutation_however_it_is_bucketed(
        folder: Path, tmp_path: Path, en_lines: list[str], monkeypatch):
    from xfer.data import gather
    from xfer.data.sampling import permutation

    reference = _prep(folder / "txt", tmp_path / "ref", seed=11)
    expected = b"".join(en_lines[i].encode() + b"\xff" for i in permutation(len(en_lines), 11))
    got = b"".join((reference / f"{s}.bin").read_bytes() for s in ("dev", "test", "train"))
    assert expected.startswith(got[:5_000])  # dev = the first 5,000 bytes of the order
    # tiny reads, buckets, batches and slack: many chunks, buckets and rounds, same bytes
    for name, value in [("READ_CHUNK", 4096), ("BUCKET_BYTES", 8192), ("BATCH_BYTES", 1000),
                        ("SLACK", 0.3), ("SLACK_BYTES", 0)]:
        monkeypatch.setattr(gather, name, value)
    small = _prep(folder / "txt.gz", tmp_path / "small", seed=11)
    for split in ("dev", "test", "train"):
        assert _sha(small / f"{split}.bin") == _sha(reference / f"{split}.bin")
