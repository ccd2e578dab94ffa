"""Streamed corpora: mC4 through `datasets` on local files (offline), and generated languages."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

os.environ["HF_DATASETS_OFFLINE"] = "1"  # before `datasets` is imported anywhere
os.environ["HF_HUB_OFFLINE"] = "1"

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import pytest  # noqa: E402

from xfer.data import iter_documents, load_split, prepare, read_manifest  # noqa: E402
from xfer.errors import XferError  # noqa: E402


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    # datasets sleeps 5 s after streaming parquet (a guard for apache/arrow#45214 at shutdown)
    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)


@pytest.fixture(scope="module")
def de_lines(shared_corpus: Path) -> list[str]:
    with gzip.open(shared_corpus / "text" / "de.txt.gz", "rt", encoding="utf-8") as f:
        return [next(f).rstrip("\n") for _ in range(1500)]


@pytest.fixture(scope="module")
def mc4_files(tmp_path_factory, de_lines: list[str]) -> Path:
    """de in the mC4 record format, two gzipped json-lines shards (as allenai/c4 stores it),
    and the same documents as two parquet shards."""
    root = tmp_path_factory.mktemp("mc4")
    half = len(de_lines) // 2
    for i, part in enumerate((de_lines[:half], de_lines[half:])):
        with gzip.open(root / f"c4-de.tfrecord-{i:05d}-of-00002.json.gz", "wt") as f:
            for n, text in enumerate(part):
                f.write(json.dumps({"text": text, "timestamp": "2020-01-01T00:00:00Z",
                                    "url": f"https://example.org/{i}/{n}"}) + "\n")
        pq.write_table(pa.table({"text": part}), root / f"pq-de-{i}.parquet")
    return root


def _mc4(files: str, out: Path, seed: int = 0, budgets=(10_000, 30_000), buffer=500) -> Path:
    return prepare("mc4", ["de"], list(budgets), 4_000, 4_000, seed, out, mc4_files=files,
                   shuffle_buffer=buffer)[0]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_mc4_code_path_on_local_files(mc4_files: Path, tmp_path: Path, de_lines: list[str]):
    pattern = str(mc4_files / "c4-{lang}.tfrecord-*.json.gz")
    a = _mc4(pattern, tmp_path / "a")
    b = _mc4(pattern, tmp_path / "b")
    c = _mc4(pattern, tmp_path / "c", seed=1)
    for split in ("dev", "test", "train"):
        assert _sha(a / f"{split}.bin") == _sha(b / f"{split}.bin")  # byte-identical rerun
    assert _sha(a / "train.bin") != _sha(c / "train.bin")
    m = read_manifest(tmp_path / "a", "de")
    assert m["sampling"]["method"] == "shuffle_buffer" and m["sampling"]["buffer_documents"] == 500
    assert m["corpus"]["kind"] == "mc4" and len(m["corpus"]["files"]) == 2
    assert (a / "train.bin").stat().st_size == 30_000 and (a / "dev.bin").stat().st_size == 4_000
    train = load_split(tmp_path / "a", "de", "train")
    assert m["budgets"]["10000"]["sha256"] == hashlib.sha256(train[:10_000].tobytes()).hexdigest()
    docs = {s: list(iter_documents(load_split(tmp_path / "a", "de", s)))
            for s in ("dev", "test", "train")}
    assert set(docs["train"][:-1]) <= set(de_lines)
    assert not (set(docs["dev"]) | set(docs["test"])) & set(docs["train"])
    assert docs["dev"][:10] != de_lines[:10]  # shuffled, not stream order


def test_mc4_parquet_shards_use_the_same_loader(mc4_files: Path, tmp_path: Path):
    ds = _mc4(str(mc4_files / "pq-{lang}-*.parquet"), tmp_path)
    assert (ds / "train.bin").stat().st_size == 30_000
    assert read_manifest(tmp_path, "de")["corpus"]["files"][0].endswith(".parquet")


@pytest.mark.parametrize("case, message", [
    ("no_files", "no mC4 files for 'de' match"),
    ("too_small", r"ran out after [0-9,]+ bytes .* were asked for"),
    ("no_text", "has no string 'text'"),
    ("hub_offline", "cannot open mC4 for 'de'"),
])
def test_mc4_bad_inputs(case, message, mc4_files: Path, tmp_path: Path):
    pattern, budgets = str(mc4_files / "c4-{lang}.tfrecord-*.json.gz"), (10_000,)
    if case == "no_files":
        pattern = str(tmp_path / "c4-{lang}-*.json.gz")
    elif case == "too_small":
        budgets = (10_000_000,)
    elif case == "no_text":
        (tmp_path / "c4-de.json").write_text('{"body": "x"}\n', encoding="utf-8")
        pattern = str(tmp_path / "c4-{lang}.json")
    elif case == "hub_offline":
        pattern = None
    out = tmp_path / "out"
    with pytest.raises(XferError, match=message) as exc:
        _mc4(pattern, out, budgets=budgets)
    assert "\n" not in str(exc.value)
    assert not out.exists() or not any(out.iterdir())


def test_synthetic_corpus_is_prepared_like_any_other(tmp_path: Path):
    from xfer.data import synthetic

    lang = synthetic.DEFAULT_LANGUAGES[0]
    a = prepare("synthetic", [lang], [5_000, 20_000], 2_000, 2_000, 3, tmp_path / "a")[0]
    b = prepare("synthetic", [lang], [5_000, 20_000], 2_000, 2_000, 3, tmp_path / "b")[0]
    assert _sha(a / "train.bin") == _sha(b / "train.bin")
    m = read_manifest(tmp_path / "a", lang)
    assert m["sampling"]["method"] == "generator_order"
    assert m["corpus"]["description"] == synthetic.describe(lang)
    assert (a / "train.bin").stat().st_size == 20_000
    docs = {s: set(iter_documents(load_split(tmp_path / "a", lang, s)))
            for s in ("dev", "test", "train")}
    assert len(docs["train"]) > 10 and not docs["dev"] & docs["train"]


def _folder_study(tmp_path: Path, folder: Path) -> Path:
    """A small study on ``folder`` (en, ru sources; es target; budgets of kB)."""
    config = tmp_path / "study.yaml"
    config.write_text(f"""name: corpuscheck
corpus: {folder}
languages: {{sources: [en, ru], targets: [es]}}
budgets: {{pretrain: 20K, finetune: [2K], scratch: [1K, 4K]}}
data: {{dev_bytes: 2K, test_bytes: 2K}}
run: {{output: {tmp_path / "runs"}}}
""")
    return config


@pytest.mark.parametrize("case, message", [
    ("missing", "language 'ru' lacks a file"),
    ("not_utf8", "language 'es' lacks UTF-8 text: es.txt line 3, byte 4 is not UTF-8"),
    ("too_small", "language 'en' lacks text: en.txt holds 1,001 bytes of documents, the study "
                  "asks for 24,000"),
])
def test_bad_corpus_folder_stops_before_any_trial(case: str, message: str, tmp_path: Path,
                                                   capsys) -> None:
    from sweeps.grid import main

    folder = tmp_path / "text"
    folder.mkdir()
    line = "uma frase de exemplo com algumas palavras\n"
    for lang in ("en", "ru", "es"):
        (folder / f"{lang}.txt").write_text(line * 1000)
    if case == "missing":
        (folder / "ru.txt").unlink()
    elif case == "not_utf8":
        (folder / "es.txt").write_bytes(line.encode() * 2 + b"caf\xe9\n" + line.encode() * 900)
    else:
        (folder / "en.txt").write_text("x" * 1000 + "\n")
    config = _folder_study(tmp_path, tmp_path / "elsewhere")  # --corpus overrides it
    (tmp_path / "elsewhere").mkdir()
    assert main(["--config", str(config), "--corpus", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "runs").exists()  # no run folder, no trial
