"""The ``xfer`` commands under generated values (hypothesis): whatever the options and whatever a
run folder's ledger is named, a command exits 0, or exits 2 with exactly one line
``xfer <command>: error: ...`` and no traceback, and writes nothing outside its output folder.
The examples are derandomised (the same every run) and few, so the file runs in seconds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.crafted_util import KEY, copy_run, make_run_folder, snapshot, xfer
from xfer.model.generate import MAX_BYTES

FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

# an option's value as typed: numbers of every size, floats with inf/nan, any text
numbers = st.one_of(st.integers().map(str), st.floats().map(repr), st.text(max_size=12))
# a prompt: any text, lone surrogates, or bytes that are not UTF-8 (argv surrogate escapes)
prompts = st.one_of(st.text(max_size=20), st.characters(categories=["Cs"]),
                    st.binary(max_size=20).map(os.fsdecode))
names = st.one_of(st.text(max_size=20), st.sampled_from(["..", ".", "a/b", "../x", KEY, ""]))


def few_bytes(text: str) -> bool:
    """A --bytes value that is refused, or samples at most 4 bytes (keeps examples fast)."""
    try:
        return not 4 < int(text) <= MAX_BYTES
    except ValueError:
        return True


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a run folder, an export of its trial), shared by every example (only read)."""
    from xfer.model.export import write_export

    root = tmp_path_factory.mktemp("fuzz")
    run = make_run_folder(root)
    return run, write_export(run, KEY, root / "export", None)


def check(rc: int, err: str, command: str) -> None:
    """Exit 0, or 2 with one ``xfer <command>: error:`` line; never a traceback."""
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if rc == 0:
        return
    assert rc == 2, (rc, err)
    assert len(lines) == 1, err
    assert lines[0].startswith(f"xfer {command}: error: "), lines[0]


@FUZZ
@given(n=numbers.filter(few_bytes), temperature=numbers, seed=numbers, prompt=prompts)
def test_generate_options(folders: tuple[Path, Path], capsys: pytest.CaptureFixture, n: str,
                          temperature: str, seed: str, prompt: str) -> None:
    before = snapshot(folders[1].parent)
    rc, _, err = xfer(capsys, "generate", folders[1], "--bytes", n, "--temperature",
                      temperature, "--seed", seed, f"--prompt={prompt}")
    check(rc, err, "generate")
    assert snapshot(folders[1].parent) == before


@FUZZ
@given(trial=names, ledger=st.lists(names, max_size=3))
def test_export_names(folders: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory,
                      capsys: pytest.CaptureFixture, trial: str, ledger: list[str]) -> None:
    """``--trial`` any name; the ledger holds files of any name beside the real one."""
    tmp = tmp_path_factory.mktemp("export")
    run = copy_run(folders[0], tmp)
    for name in ledger:
        if name and "/" not in name and "\0" not in name and name not in (".", ".."):
            row = {"kind": "scratch", "source": None, "target": "qt", "budget": 1, "seed": 0}
            (run / "ledger" / f"{name}.json").write_text(json.dumps(row))
    before = snapshot(tmp)
    for argv in (("--trial", trial), ("--all",)):
        if "\0" in trial:
            continue
        out = tmp / "outs" / "model"
        rc, _, err = xfer(capsys, "export", run, *argv, "--out", out)
        check(rc, err, "export")
        changed = {k for k, v in snapshot(tmp).items() if before.get(k) != v}
        assert all(k.startswith("outs") for k in changed), changed
        assert rc != 0 or out.is_dir()
        assert not [p for p in out.parent.iterdir() if p.name.startswith(".")] \
            if out.parent.is_dir() else True


@FUZZ
@given(budget=numbers, column=st.lists(st.one_of(st.integers(-2**63, 2**63 - 1), st.floats()),
                                       min_size=1, max_size=3))
def test_analyse_budgets(folders: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory,
                         capsys: pytest.CaptureFixture, budget: str, column: list) -> None:
    """``--budget`` any value; the results table's first budgets any numbers."""
    import pandas as pd

    tmp = tmp_path_factory.mktemp("analyse")
    run = copy_run(folders[0], tmp)
    frame = pd.read_parquet(run / "results.parquet")
    frame["budget"] = frame["budget"].astype(float)
    for i, value in enumerate(column):
        frame.loc[i, "budget"] = float(value)
    frame.to_parquet(run / "results.parquet", index=False)
    before = snapshot(tmp)
    rc, _, err = xfer(capsys, "analyse", run, f"--budget={budget}")
    check(rc, err, "analyse")
    changed = {k for k, v in snapshot(tmp).items() if before.get(k) != v}
    assert all(k.startswith(f"{run.name}/report") for k in changed), changed


@FUZZ
@given(lang=names, budget=numbers)
def test_train_and_prepare_values(tmp_path_factory: pytest.TempPathFactory,
                                  capsys: pytest.CaptureFixture, lang: str, budget: str) -> None:
    """Language codes and budgets of ``xfer train`` and ``xfer prepare``; both stop before any
    work (train's --out is a file, prepare's budgets come after a bad split size)."""
    if "\0" in lang:
        return
    tmp = tmp_path_factory.mktemp("train")
    (tmp / "afile").write_text("mine")
    before = snapshot(tmp)
    rc, _, err = xfer(capsys, "train", "--data", tmp / "none", f"--lang={lang}",
                      f"--budget={budget}", "--out", tmp / "afile")
    check(rc, err, "train")
    assert rc != 0
    rc, _, err = xfer(capsys, "prepare", "--corpus", "synthetic", f"--lang={lang}",
                      f"--budgets={budget}", "--dev-bytes", "0", "--out", tmp / "prep")
    check(rc, err, "prepare")
    assert rc != 0
    assert snapshot(tmp) == before
