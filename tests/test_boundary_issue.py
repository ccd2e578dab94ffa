"""The crafted inputs issue 28 names, one row each (hangs, escapes, allocation before checks,
tracebacks, silent acceptance): each must end in one line with exit 2 and leave every file as
it was, through the same check as ``tests/test_crafted_runfolder.py``; the study-YAML and
manifest rows go through the loaders the commands use, in this process."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.crafted_util import KEY, TALLY, TARGET, table_lines
from tests.test_crafted_runfolder import (  # noqa: F401  template: the module's fixture
    Case,
    edit_json,
    link,
    results_with,
    template,
)
from tests.test_crafted_runfolder import (
    test_crafted_input_is_one_line_and_writes_nothing as check_case,
)
from xfer.errors import XferError

EXPORT = ("export", "{run}", "--trial", KEY, "--out", "{tmp}/outs/model")
GENERATE = ("generate", "{tmp}/export", "--bytes", "2")
TRAIN = ("train", "--data", "{tmp}/nodata", "--lang", "qt", "--budget", "4K", "--threads", "1")
PREP = ("prepare", "--corpus", "synthetic", "--lang", "base", "--budgets", "4K")


def fifo(rel: str, base: str = "run") -> object:
    def craft(run: Path, tmp: Path) -> None:
        path = (run if base == "run" else tmp / "export") / rel
        path.unlink()
        os.mkfifo(path)
    return craft


def header(text: bytes) -> object:
    """A craft writing a safetensors header ``text``, the file kept at its size."""
    def craft(run: Path, tmp: Path) -> None:
        path = tmp / "export" / "model.safetensors"
        raw = struct.pack("<Q", len(text)) + text
        path.write_bytes(raw + b"\0" * max(0, path.stat().st_size - len(raw)))
    return craft


def checkpoints_link(run: Path, tmp: Path) -> None:
    (tmp / "t").mkdir()
    (tmp / "elsewhere").mkdir()
    (tmp / "t" / "checkpoints").symlink_to(tmp / "elsewhere")


def truncated_lid(run: Path, tmp: Path) -> None:
    from xfer.analysis.contamination import default_lid_model

    data = default_lid_model().read_bytes()
    (tmp / "lid.ftz").write_bytes(data[: len(data) // 3])
    (tmp / "lines.txt").write_text("a line of text that is long enough to count\n")


ROW = f"ledger/{KEY}.json"
ISSUE_CASES = [
    # hangs
    Case("export: a FIFO manifest", EXPORT, r"FIFO", fifo(f"data/{TARGET}/manifest.json")),
    Case("export: a FIFO result.json", EXPORT, r"FIFO", fifo(f"trials/{KEY}/result.json")),
    Case("export: a FIFO ledger entry", EXPORT, r"FIFO", fifo(ROW)),
    Case("generate: a FIFO config.json", GENERATE, r"FIFO", fifo("config.json", "export")),
    Case("analyse: --budget 1e999999", ("analyse", "{run}", "--budget", "1e999999"),
         r"2\*\*63-1"),
    Case("analyse: analysis.budget 1e999999 in config.json", ("analyse", "{run}"),
         r"analysis\.budget", edit_json("config.json", lambda d: d["analysis"].update(
             budget="1e999999"))),
    # escapes
    Case("train: --out a symlink", TRAIN + ("--out", "{tmp}/tl"), r"symbolic link",
         link("tl", "outside/t")),
    Case("prepare: --out a symlink", PREP + ("--out", "{tmp}/pl"), r"symbolic link",
         link("pl", "outside/p")),
    Case("train: --out t with t/checkpoints a symlink", TRAIN + ("--out", "{tmp}/t"),
         r"checkpoints is a symbolic link", checkpoints_link),
    Case("analyse: results target ../../evil with --data",
         ("analyse", "{run}", "--data", "{tmp}"), r"target '\.\./\.\./evil'",
         results_with(lambda f: f.assign(target="../../evil"))),
    # allocation before checks
    Case("lid: a truncated --lid-model", ("lid", "{tmp}/lines.txt", "--lid-model",
                                          "{tmp}/lid.ftz"), r"truncated", truncated_lid),
    # tracebacks
    Case("analyse: languages.sources of the wrong type", ("analyse", "{run}"),
         r"languages\.sources must be a list",
         edit_json("config.json", lambda d: d["languages"].update(sources=5))),
    Case("analyse: a seed NaN in the results table", ("analyse", "{run}"), r"seed nan",
         results_with(lambda f: f.assign(seed=float("nan")))),
    Case("analyse: a string seed in the results table", ("analyse", "{run}"), r"seed 'x'",
         results_with(lambda f: f.assign(seed="x"))),
    Case("generate: norm_eps 'abc'", GENERATE, r"norm_eps: expected a number",
         edit_json("config.json", lambda d: d["cfg"].update(norm_eps="abc"), base="export")),
    Case("generate: a header offset of 1e999", GENERATE, r"not a finite number",
         header(b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 1e999]}}')),
    Case("generate: a header nested 100,000 deep", GENERATE, r"nested more than",
         header(b'{"__metadata__": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")),
    Case("train: --beta1 5", TRAIN + ("--out", "{tmp}/t", "--beta1", "5"), r"beta1"),
    Case("analyse: --budget 1e99999999", ("analyse", "{run}", "--budget", "1e99999999"),
         r"2\*\*63-1"),
    # accepted silently
    Case("export: a ledger budget of 2**64", EXPORT, r"budget must be from 0",
         edit_json(ROW, lambda d: d.update(budget=2**64))),
    Case("export: a ledger budget of -5", EXPORT, r"budget must be from 0",
         edit_json(ROW, lambda d: d.update(budget=-5))),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in ISSUE_CASES])
def test_issue_case(case: Case, template: tuple[Path, Path], tmp_path: Path,  # noqa: F811
                    capsys: pytest.CaptureFixture) -> None:
    check_case(case, template, tmp_path, capsys)
    TALLY["the issue's named inputs (commands)"]["one line, exit 2"] += 1


DEFAULT = (Path(__file__).resolve().parents[1] / "sweeps" / "configs" / "default.yaml")
YAML_CASES = {
    "a 3.7 KB alias bomb": ("bomb: &a0 [" + ",".join(["x"] * 9) + "]\n" + "".join(
        f"b{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9)),
        r"alias"),
    "a 5,000-digit integer": ("seeds: [" + "9" * 5000 + "]\n", r"5000 characters"),
    "a 20,000-deep list": ("seeds: " + "[" * 20_000 + "]" * 20_000 + "\n", r"nested more"),
    "peak_flops: 0": ("estimate:\n  peak_flops: 0\n", r"estimate\.peak_flops"),
    "peak_flops: .nan": ("estimate:\n  peak_flops: .nan\n", r"not a finite number"),
    "cpus_per_trial: .nan": ("resources:\n  cpus_per_trial: .nan\n", r"not a finite number"),
    "a duplicate key": ("seeds: [7]\n", r"duplicate key 'seeds'"),
}


@pytest.mark.parametrize("name", sorted(YAML_CASES))
def test_issue_study_yaml(name: str, tmp_path: Path) -> None:
    from sweeps.config import load_config

    text, expect = YAML_CASES[name]
    study = yaml.safe_load(DEFAULT.read_text())
    if name != "a duplicate key":
        for line in text.splitlines():
            study.pop(line.split(":")[0], None)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study) + text)
    with pytest.raises(XferError, match=expect) as info:
        load_config(str(path))
    assert "\n" not in str(info.value)
    TALLY["the issue's named inputs (study YAML)"]["one XferError line"] += 1


def manifest_case(root: Path, name: str) -> None:
    folder = root / "qt"
    splits = json.loads((folder / "manifest.json").read_text())
    if name == "absolute file":
        splits["splits"]["train"]["file"] = "/etc/passwd"
    elif name == "empty splits":
        splits["splits"] = {}
    elif name == "file ../x":
        splits["splits"]["dev"]["file"] = "../x.bin"
    (folder / "manifest.json").write_text(json.dumps(splits))


@pytest.mark.parametrize("name", ["absolute file", "empty splits", "file ../x",
                                  "language folder a symlink out"])
def test_issue_manifests(name: str, tmp_path: Path) -> None:
    from xfer.data.store import load_split

    root, outside = tmp_path / "data", tmp_path / "outside"
    folder = (outside if name.startswith("language") else root) / "qt"
    folder.mkdir(parents=True)
    root.mkdir(exist_ok=True)
    splits = {}
    for split in ("dev", "test", "train"):
        (folder / f"{split}.bin").write_bytes((np.arange(100) % 200).astype(np.uint8).tobytes())
        splits[split] = {"file": f"{split}.bin", "bytes": 100}
    (folder / "manifest.json").write_text(json.dumps({"splits": splits, "budgets": {}}))
    assert load_split(folder.parent, "qt", "dev").size == 100  # unbroken, it loads
    if name.startswith("language"):
        (root / "qt").symlink_to(folder)
    else:
        manifest_case(root, name)
    for split in ("dev", "train"):
        with pytest.raises(XferError) as info:
            load_split(root, "qt", split)
        assert "\n" not in str(info.value)
        TALLY["the issue's named inputs (manifests)"]["one XferError line"] += 1


def test_zz_table_of_kinds_and_outcomes() -> None:
    """Print the table of the cases the boundary tests ran in this session (all of
    tests/test_boundary*.py when run together: ``pytest -s tests/test_boundary*.py``)."""
    print("\n" + "\n".join(table_lines()))
    assert sum(sum(c.values()) for c in TALLY.values()) > 0
