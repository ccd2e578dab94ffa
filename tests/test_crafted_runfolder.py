"""Crafted run folders, exports and values (issue 22), one row each: the folder as broken, the
command, the one-line error expected. Every row must exit non-zero with exactly that one line on
stderr, no traceback, and leave every file under the test's folder as it was (no partial output,
no temp folder, nothing written through a symlink). The run folder is built by hand
(``tests.crafted_util``), so the whole table runs in seconds."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.crafted_util import KEY, copy_run, make_run_folder, snapshot, xfer

Craft = Callable[[Path, Path], None]  # (run folder, test folder) -> None


@dataclass(frozen=True)
class Case:
    """One crafted input: what to break, the command (``{run}``, ``{tmp}``, ``{export}``
    placeholders), and the regex its one error line must match."""

    name: str
    argv: tuple[str, ...]
    expect: str
    craft: Craft | None = None


def edit_json(rel: str, change: Callable[[dict], None], base: str = "run") -> Craft:
    """A craft that loads the JSON file ``rel`` (under the run folder or the export), applies
    ``change`` and writes it back."""
    def craft(run: Path, tmp: Path) -> None:
        path = (run if base == "run" else tmp / "export") / rel
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return craft


def write(rel: str, data: bytes | Callable[[bytes], bytes], base: str = "run") -> Craft:
    """A craft that writes ``data`` (or ``data(old bytes)``) to ``rel``."""
    def craft(run: Path, tmp: Path) -> None:
        path = (run if base == "run" else tmp / "export") / rel
        path.write_bytes(data(path.read_bytes()) if callable(data) else data)
    return craft


def link(rel: str, target: str, move: bool = False) -> Craft:
    """A craft that makes ``rel`` (under the test folder) a symlink to ``target`` (under it
    too), moving what was at ``rel`` there first when ``move``."""
    def craft(run: Path, tmp: Path) -> None:
        (tmp / target).parent.mkdir(parents=True, exist_ok=True)
        if move:
            shutil.move(tmp / rel, tmp / target)
        elif not (tmp / target).exists() and not target.endswith("missing"):
            (tmp / target).mkdir()
        (tmp / rel).symlink_to(tmp / target)
    return craft


def results_with(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Craft:
    def craft(run: Path, tmp: Path) -> None:
        path = run / "results.parquet"
        change(pd.read_parquet(path)).to_parquet(path, index=False)
    return craft


def with_lr(frame: pd.DataFrame) -> pd.DataFrame:
    """Two lr variants per row; every variant of the first cell has no dev perplexity."""
    frame = pd.concat([frame.assign(lr=1e-3), frame.assign(lr=1e-2)], ignore_index=True)
    first = (frame["key"] == frame["key"].iloc[0])
    frame.loc[first, "dev_perplexity"] = float("nan")
    return frame


def meta(change: Callable[[dict], None]) -> Craft:
    return edit_json(f"trials/{KEY}/best/meta.json", change)


def set_path(data: dict, dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        data = data[part]
    data[last] = value


def remove_path(data: dict, dotted: str) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        data = data[part]
    del data[last]


TRIAL = f"{{run}}/trials/{KEY}"
EXPORT = ("export", "{run}", "--trial", KEY, "--out", "{tmp}/outs/model")
EXPORT_ALL = ("export", "{run}", "--all", "--out", "{tmp}/outs/models")
TRAIN = ("train", "--data", "{tmp}/nodata", "--lang", "qt", "--budget", "4K", "--threads", "1")
PREP = ("prepare", "--corpus", "synthetic", "--budgets", "4K", "--out", "{tmp}/prep")
ROW = {"kind": "scratch", "source": None, "target": "qt", "budget": 1, "seed": 0}

CASES = [
    # writes outside where they should
    Case("export --all: a ledger file named ...json", EXPORT_ALL, r"ledger entry '\.\.\.json'",
         write("ledger/...json", json.dumps(ROW).encode())),
    Case("export: trial key with a path", ("export", "{run}", "--trial", "../x", "--out",
                                           "{tmp}/outs/m"), r"--trial: '\.\./x'"),
    Case("export: --out a symlink to an empty folder", EXPORT[:-1] + ("{tmp}/outlink",),
         r"symbolic link", link("outlink", "outside/empty")),
    Case("export: --out a symlink to nothing", EXPORT[:-1] + ("{tmp}/outlink",),
         r"symbolic link", link("outlink", "outside/missing")),
    Case("export: trial folder a symlink out of the run folder", EXPORT, r"leads outside",
         link(f"study-0123456789/trials/{KEY}", f"outside/{KEY}", move=True)),
    Case("export: ledger row key is not its file name", EXPORT, r"its key 'other'",
         edit_json(f"ledger/{KEY}.json", lambda d: d.update(key="other"))),
    Case("export: ledger row budget 1e30", EXPORT, r"budget must be int",
         edit_json(f"ledger/{KEY}.json", lambda d: d.update(budget=1e30))),
    Case("analyse: a symlinked RUN/report", ("analyse", "{run}"), r"symbolic link",
         link("study-0123456789/report", "outside/report")),
    Case("analyse: language code ../../evil in config.json", ("analyse", "{run}"),
         r"languages\.targets: '\.\./\.\./evil'",
         edit_json("config.json", lambda d: d["languages"].update(targets=["../../evil"]))),
    Case("prepare: --lang ../esc", PREP + ("--lang", "../esc"), r"--lang: '\.\./esc'"),
    # tracebacks instead of one line: corrupt or crafted files
    Case("export: model.pt truncated", EXPORT, r"model\.pt",
         write(f"trials/{KEY}/best/model.pt", lambda b: b[: len(b) // 2])),
    Case("export: model.pt random bytes", EXPORT, r"model\.pt is corrupt",
         write(f"trials/{KEY}/best/model.pt", lambda b: os.urandom(len(b)))),
    Case("export: meta.json d_model 2**40", EXPORT, r"parameters",
         meta(lambda d: set_path(d, "model.d_model", 2**40))),
    Case("export: meta.json without train.seq_len", EXPORT, r"'train\.seq_len'",
         meta(lambda d: remove_path(d, "train.seq_len"))),
    Case("export: meta.json seq_len 'abc'", EXPORT, r"train\.seq_len must be int",
         meta(lambda d: set_path(d, "train.seq_len", "abc"))),
    Case("export: result.json corrupt", EXPORT, r"result\.json",
         write(f"trials/{KEY}/result.json", b"{oops")),
    Case("generate: model.safetensors truncated", ("generate", "{export}"), r"truncated",
         write("model.safetensors", lambda b: b[: len(b) // 2], base="export")),
    Case("generate: export config.json d_model 2**40", ("generate", "{export}"), r"parameters",
         edit_json("config.json", lambda d: set_path(d, "cfg.d_model", 2**40), base="export")),
    Case("generate: export config.json seq_len 'abc'", ("generate", "{export}"),
         r"xfer\.seq_len must be an integer",
         edit_json("config.json", lambda d: set_path(d, "xfer.seq_len", "abc"), base="export")),
    Case("generate: model.pt random bytes", ("generate", TRIAL), r"model\.pt is corrupt",
         write(f"trials/{KEY}/best/model.pt", lambda b: os.urandom(len(b)))),
    Case("generate: meta.json without train.seq_len", ("generate", TRIAL), r"train\.seq_len",
         meta(lambda d: remove_path(d, "train.seq_len"))),
    Case("generate: meta.json seq_len 'abc'", ("generate", TRIAL), r"train\.seq_len",
         meta(lambda d: set_path(d, "train.seq_len", "abc"))),
    Case("train: corrupt result.json in --out", TRAIN + ("--out", "{tmp}/trained"),
         r"result\.json", lambda run, tmp: (tmp / "trained").mkdir() or
         (tmp / "trained" / "result.json").write_text("{oops")),
    Case("train: --out an existing file", TRAIN + ("--out", "{tmp}/afile"),
         r"not a folder", lambda run, tmp: (tmp / "afile").write_text("mine")),
    Case("analyse: junk downstream.parquet", ("analyse", "{run}"), r"downstream\.parquet",
         write("downstream.parquet", b"not parquet at all")),
    Case("analyse: junk results.parquet", ("analyse", "{run}"), r"results\.parquet",
         write("results.parquet", b"PAR1 junk")),
    Case("analyse: --out an existing file", ("analyse", "{run}", "--out", "{tmp}/afile"),
         r"not a folder", lambda run, tmp: (tmp / "afile").write_text("mine")),
    Case("analyse: --out a folder of other files", ("analyse", "{run}", "--out", "{tmp}/mine"),
         r"not an empty folder", lambda run, tmp: (tmp / "mine").mkdir() or
         (tmp / "mine" / "notes.txt").write_text("mine")),
    Case("analyse: lr variants, one cell without dev perplexity", ("analyse", "{run}"),
         r"no lr variant of the cell", results_with(with_lr)),
    # numeric ranges
    Case("analyse: budget 1e30 in results", ("analyse", "{run}"), r"budget 1e\+30",
         results_with(lambda f: f.assign(budget=f["budget"].astype(float).where(
             f.index != 0, 1e30)))),
    Case("analyse: --budget 1e30", ("analyse", "{run}", "--budget", "1e30"), r"2\*\*63"),
    Case("analyse: analysis.budget 'abc' in config.json", ("analyse", "{run}"),
         r"analysis\.budget", edit_json("config.json", lambda d: d["analysis"].update(
             budget="abc"))),
    Case("generate: --temperature 1e-38", ("generate", "{export}", "--temperature", "1e-38"),
         r"--temperature"),
    Case("generate: --temperature nan", ("generate", "{export}", "--temperature", "nan"),
         r"--temperature"),
    Case("generate: --seed 10**23", ("generate", "{export}", "--seed", str(10**23)), r"--seed"),
    Case("generate: --bytes 10**11", ("generate", "{export}", "--bytes", str(10**11)),
         r"--bytes"),
    Case("train: --budget 1e30", TRAIN + ("--out", "{tmp}/t") + ("--budget", "1e30"),
         r"--budget"),
    Case("train: --threads 10**20", TRAIN + ("--out", "{tmp}/t", "--threads", str(10**20)),
         r"threads must be at most"),
    Case("train: --seq-len 10**9", TRAIN + ("--out", "{tmp}/t", "--seq-len", str(10**9)),
         r"seq_len must be at most"),
    Case("generate: meta.json seq_len 10**9", ("generate", TRIAL), r"train\.seq_len must be",
         meta(lambda d: set_path(d, "train.seq_len", 10**9))),
    Case("train: --lang a/b", TRAIN + ("--out", "{tmp}/t", "--lang", "a/b"), r"--lang"),
    Case("prepare: --budgets 1e30", PREP + ("--lang", "base", "--budgets", "1e30"),
         r"--budgets"),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run folder, its trial's export) made once; each case breaks copies of them."""
    from xfer.model.export import write_export

    root = tmp_path_factory.mktemp("crafted")
    run = make_run_folder(root)
    export = write_export(run, KEY, root / "export", None)
    return run, export


def fill(arg: str, where: dict[str, Path]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(where[m.group(1)]), arg)


def prepare_case(template: tuple[Path, Path], tmp: Path) -> dict[str, Path]:
    run = copy_run(template[0], tmp)
    shutil.copytree(template[1], tmp / "export")
    return {"run": run, "tmp": tmp, "export": tmp / "export"}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_crafted_input_is_one_line_and_writes_nothing(case: Case, template: tuple[Path, Path],
                                                      tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    where = prepare_case(template, tmp_path)
    if case.craft:
        case.craft(where["run"], tmp_path)
    before = snapshot(tmp_path)
    rc, out, err = xfer(capsys, *(fill(a, where) for a in case.argv))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc != 0, f"exit 0; stdout: {out[-300:]}"
    assert "Traceback" not in err + out
    assert len(lines) == 1, err
    assert lines[0].startswith(f"xfer {case.argv[0]}: error: "), lines[0]
    assert re.search(case.expect, lines[0]), f"{lines[0]!r} does not match {case.expect!r}"
    assert snapshot(tmp_path) == before, "files changed"


def test_table_counts_rows() -> None:
    assert len({c.name for c in CASES}) == len(CASES)
    print(f"crafted cases: {len(CASES)}")


def test_good_folder_exports_analyses_and_replaces_stale_files(
        template: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The template is good (so the rows fail for their one fault); a rerun's report folder
    holds no file of the earlier one; ``export --all`` writes only under its ``--out``."""
    where = prepare_case(template, tmp_path)
    run = where["run"]
    before = snapshot(tmp_path)
    rc, out, err = xfer(capsys, "export", run, "--all", "--out", tmp_path / "outs" / "models")
    assert rc == 0, err
    changed = {k for k, v in snapshot(tmp_path).items() if before.get(k) != v}
    assert changed and all(k.startswith("outs") for k in changed), changed
    assert {p.name for p in (tmp_path / "outs" / "models").iterdir()} == {KEY}
    (run / "report").mkdir()
    (run / "report" / "report.md").write_text("old")
    (run / "report" / "ground_truth_old.csv").write_text("stale")
    rc, out, err = xfer(capsys, "analyse", run)
    assert rc == 0, err
    assert not (run / "report" / "ground_truth_old.csv").exists()
    assert (run / "report" / "report.md").read_text() != "old"
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_generate_takes_non_utf8_prompt_bytes(template: tuple[Path, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    """A prompt of bytes that are not UTF-8 (argv surrogate escapes) is sampled from as bytes."""
    where = prepare_case(template, tmp_path)
    prompt = os.fsdecode(b"\xff\xfeab")
    rc, out, err = xfer(capsys, "generate", where["export"], "--prompt", prompt, "--bytes", "4")
    assert rc == 0, err
    assert out.startswith("\ufffd\ufffdab")


def test_lid_model_in_a_run_folders_config_is_ignored(template: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    from xfer.analysis.runfolder import analysis_inputs

    run = prepare_case(template, tmp_path)["run"]
    edit_json("config.json", lambda d: d["analysis"].update(
        lid_model="/etc/passwd", contamination=True))(run, tmp_path)
    assert analysis_inputs(run).lid_model is None
    assert analysis_inputs(run, lid_model=Path("given.ftz")).lid_model == Path("given.ftz")


def test_sweep_ledger_keeps_only_valid_rows(tmp_path: Path) -> None:
    """A resumed study reads its ledger: entries of bad names, keys, kinds or out-of-range
    budgets are not finished trials (they run again) instead of breaking the results table."""
    from sweeps.ledger import Ledger

    (tmp_path / "ledger").mkdir()
    good = {"kind": "scratch", "key": "scratch-a-1K-s0", "budget": 1000, "seed": 0,
            "checkpoint": None}
    entries = {"scratch-a-1K-s0": good, "..": {**good, "key": ".."},
               "x": {**good, "key": "y"}, "big": {**good, "key": "big", "budget": 1e30},
               "kind": {**good, "key": "kind", "kind": "evil"}}
    for name, row in entries.items():
        (tmp_path / "ledger" / f"{name}.json").write_text(json.dumps(row))
    (tmp_path / "ledger" / "link.json").symlink_to(tmp_path / "ledger" / "scratch-a-1K-s0.json")
    ledger = Ledger(tmp_path)
    assert set(ledger.rows) == {"scratch-a-1K-s0"}
    assert ledger.table()["budget"].tolist() == [1000]
