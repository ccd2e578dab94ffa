"""`xfer prepare` as a user runs it: exit codes, one-line errors, summary, idempotence."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("xfer")
XFER = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "xfer.cli"]


def xfer(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([*XFER, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_corpus: Path) -> Path:
    root = tmp_path_factory.mktemp("cli_corpus")
    for lang in ("fi", "id"):
        with gzip.open(shared_corpus / "text" / f"{lang}.txt.gz", "rt", encoding="utf-8") as f:
            lines = [next(f) for _ in range(1500)]
        (root / f"{lang}.txt").write_text("".join(lines), encoding="utf-8")
    return root


def _args(corpus: Path, out: Path, *extra: str, budgets: str = "10K,30K") -> list[str]:
    return ["prepare", "--corpus", str(corpus), "--lang", "fi", "--lang", "id", "--budgets",
            budgets, "--dev-bytes", "3K", "--test-bytes", "3K", "--seed", "5", "--out", str(out),
            *extra]


def test_prepare_then_rerun(corpus: Path, tmp_path: Path):
    first = xfer(*_args(corpus, tmp_path))
    assert first.returncode == 0, first.stderr
    assert [line.split(":")[0] for line in first.stdout.splitlines()] == [
        str(tmp_path / "fi"), str(tmp_path / "id")]
    assert "train 30,000 bytes" in first.stdout
    assert (tmp_path / "id" / "train.bin").stat().st_size == 30_000
    stamp = (tmp_path / "fi" / "train.bin").stat().st_mtime_ns
    again = xfer(*_args(corpus, tmp_path))
    assert again.returncode == 0 and again.stdout == first.stdout
    assert (tmp_path / "fi" / "train.bin").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("case, message", [
    ("missing", "corpus folder not found"),
    ("unknown_lang", "unknown language 'zz'"),
    ("budgets", "budgets must strictly increase"),
    ("budget_name", "not a byte count"),
    ("too_small", "were asked for"),
    ("settings", "different settings"),
    ("mc4_lang", "unknown language 'fi-xx' for corpus mc4"),
])
def test_bad_input_is_one_line_exit_2(case, message, corpus: Path, tmp_path: Path):
    args = _args(corpus, tmp_path / "out")
    if case == "missing":
        args[2] = str(tmp_path / "nowhere")
    elif case == "unknown_lang":
        args[4] = "zz"
    elif case == "budgets":
        args = _args(corpus, tmp_path / "out", budgets="30K,10K")
    elif case == "budget_name":
        args = _args(corpus, tmp_path / "out", budgets="10K,lots")
    elif case == "too_small":
        args = _args(corpus, tmp_path / "out", budgets="10K,50M")
    elif case == "settings":
        assert xfer(*args).returncode == 0
        args[args.index("--seed") + 1] = "6"
    elif case == "mc4_lang":
        args[2], args[4] = "mc4", "fi-xx"
    result = xfer(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xfer prepare: error: "), result.stderr
    assert message in lines[0]
    leftovers = [p.name for p in (tmp_path / "out").glob(".*")] if case != "settings" else []
    assert not leftovers
