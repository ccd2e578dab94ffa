"""Every command against generated hostile files of each kind it reads (issue 28): ledger rows,
results, checkpoint metadata, run and export configs, data manifests, results tables,
safetensors weights, special files (FIFO, folder, device, symbolic links out, sparse and
truncated files). The contract (``tests.crafted_util.run_contract``): exit 0 with a valid
result, or exit 2 with one line; no hang; nothing written outside ``--out``; bounded memory.
The last test prints the table of kinds, cases and outcomes."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.crafted_util import (
    KEY,
    MAX_RSS_GROWTH,
    SPECIALS,
    TARGET,
    copy_run,
    hostile_values,
    make_run_folder,
    make_special,
    mutate_json,
    peak_rss,
    results_table,
    run_contract,
)

CASES = settings(max_examples=8, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])
START_RSS = peak_rss()

# file of the run folder (or export) -> the command that reads it (placeholders filled in)
EXPORT = ("export", "{run}", "--trial", KEY, "--out", "{tmp}/outs/e")
GENERATE_TRIAL = ("generate", "{run}/trials/" + KEY, "--bytes", "2")
GENERATE_EXPORT = ("generate", "{export}", "--bytes", "2")
JSON_FILES = {
    "ledger row": ("run", f"ledger/{KEY}.json", EXPORT),
    "trial result.json": ("run", f"trials/{KEY}/result.json", EXPORT),
    "checkpoint meta.json": ("run", f"trials/{KEY}/best/meta.json", GENERATE_TRIAL),
    "run folder config.json": ("run", "config.json", EXPORT),
    "export config.json": ("export", "config.json", GENERATE_EXPORT),
}
ANALYSE_RUN = ("analyse", "{run}", "--out", "{tmp}/outs/r")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from xfer.model.export import write_export

    root = tmp_path_factory.mktemp("boundary")
    run = make_run_folder(root)
    return run, write_export(run, KEY, root / "export", None)


def fresh(template: tuple[Path, Path], tmp: Path) -> dict[str, Path]:
    """Copies of the run folder and export in an empty ``tmp/case``."""
    case = tmp / "case"
    if case.exists():
        shutil.rmtree(case)
    case.mkdir()
    run = copy_run(template[0], case)
    shutil.copytree(template[1], case / "export")
    return {"run": run, "export": case / "export", "tmp": case}


def argv_of(command: tuple[str, ...], where: dict[str, Path]) -> list[str]:
    return [a.format(**{k: str(v) for k, v in where.items()}) for a in command]


@pytest.mark.parametrize("kind", sorted(JSON_FILES))
@CASES
@given(path_index=st.integers(0, 200), value=hostile_values, delete=st.booleans())
def test_hostile_json_files(kind: str, path_index: int, value: object, delete: bool,
                            template: tuple[Path, Path], tmp_path: Path,
                            capsys: pytest.CaptureFixture) -> None:
    base, rel, command = JSON_FILES[kind]
    where = fresh(template, tmp_path)
    path = where[base] / rel
    path.write_text(mutate_json(path.read_text(), path_index, value, delete))
    run_contract(capsys, where["tmp"], f"JSON: {kind}", *argv_of(command, where))


@settings(CASES, max_examples=3)
@given(path_index=st.integers(0, 200), value=hostile_values, delete=st.booleans())
def test_hostile_run_config_for_analyse(path_index: int, value: object, delete: bool,
                                        template: tuple[Path, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    where = fresh(template, tmp_path)
    path = where["run"] / "config.json"
    data = json.loads(path.read_text())
    data["analysis"] = {"budget": 2000, "interp": "linear", "contamination": False}
    path.write_text(mutate_json(json.dumps(data), path_index, value, delete))
    run_contract(capsys, where["tmp"], "JSON: run folder config.json (analyse)",
                 *argv_of(ANALYSE_RUN, where))


SPECIAL_FILES = {
    "ledger row": ("run", f"ledger/{KEY}.json", EXPORT),
    "trial result.json": ("run", f"trials/{KEY}/result.json", EXPORT),
    "checkpoint meta.json": ("run", f"trials/{KEY}/best/meta.json", EXPORT),
    "checkpoint model.pt": ("run", f"trials/{KEY}/best/model.pt", EXPORT),
    "run folder config.json": ("run", "config.json", EXPORT),
    "data manifest": ("run", f"data/{TARGET}/manifest.json", EXPORT),
    "commands.txt": ("run", "commands.txt", EXPORT),
    "export config.json": ("export", "config.json", GENERATE_EXPORT),
    "export model.safetensors": ("export", "model.safetensors", GENERATE_EXPORT),
    "results.parquet": ("run", "results.parquet", ("analyse", "{run}", "--out", "{tmp}/outs/r")),
}


@pytest.mark.parametrize("special", SPECIALS)
@settings(CASES, max_examples=5)
@given(name=st.sampled_from(sorted(SPECIAL_FILES)))
def test_special_files_in_place_of_each_file(special: str, name: str,
                                             template: tuple[Path, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    base, rel, command = SPECIAL_FILES[name]
    where = fresh(template, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    make_special(where[base] / rel, special, outside)
    rc, line = run_contract(capsys, where["tmp"], f"special file: {special}",
                            *argv_of(command, where))
    if special in ("fifo", "folder", "device", "link out", "sparse 1 TiB"):
        assert rc == 2 or name == "commands.txt", line  # the card notes "not recorded"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files of any permission")
def test_unreadable_folder_is_one_line(template: tuple[Path, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    where = fresh(template, tmp_path)
    (where["run"] / "ledger").chmod(0)
    try:
        run_contract(capsys, where["tmp"], "special file: unreadable folder",
                     *argv_of(("export", "{run}", "--all", "--out", "{tmp}/outs/a"), where))
    finally:
        (where["run"] / "ledger").chmod(0o755)


COLUMN_VALUES = {
    "seed": [float("nan"), "x", 2**64, -1, 1.5],
    "budget": [-5, 1e30, float("inf"), "6M", 2**63],
    "target": ["../../evil", "/etc", "", 5, None],
    "kind": ["evil", 3, None],
    "perplexity": [float("inf"), "abc", -1.0, float("nan")],
}


@CASES
@given(column=st.sampled_from(sorted(COLUMN_VALUES)), pick=st.integers(0, 4),
       row=st.integers(0, 11))
def test_hostile_results_tables(column: str, pick: int, row: int, tmp_path: Path,
                                capsys: pytest.CaptureFixture) -> None:
    case = tmp_path / "case"
    shutil.rmtree(case, ignore_errors=True)
    case.mkdir()
    frame = results_table().astype(object)
    frame.at[row, column] = COLUMN_VALUES[column][pick % len(COLUMN_VALUES[column])]
    frame.to_csv(case / "results.csv", index=False)
    (case / "data").mkdir()
    run_contract(capsys, case, "results table (CSV)", "analyse", case / "results.csv", "--out",
                 case / "outs" / "r", "--data", case / "data")


tensor = st.fixed_dictionaries({
    "dtype": st.sampled_from(["F32", "F16", "I64", "X", 3]),
    "shape": st.one_of(st.lists(st.integers(-2, 2**34), max_size=3), st.just("x")),
    "data_offsets": st.one_of(st.lists(st.integers(-5, 2**62), min_size=2, max_size=2),
                              st.just([0, "1e999"])),
})


@CASES
@given(header=st.dictionaries(st.text(max_size=20), tensor, max_size=4),
       deep=st.integers(0, 3), tail=st.integers(0, 4096), sparse=st.booleans())
def test_hostile_safetensors(header: dict, deep: int, tail: int, sparse: bool,
                             template: tuple[Path, Path], tmp_path: Path,
                             capsys: pytest.CaptureFixture) -> None:
    where = fresh(template, tmp_path)
    text = json.dumps(header)
    if deep:
        text = '{"__metadata__": ' + "[" * (10 ** (deep + 2)) + "]" * (10 ** (deep + 2)) + "}"
    raw = text.encode()
    with open(where["export"] / "model.safetensors", "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw + b"\0" * tail)
        if sparse:
            fh.truncate(fh.tell() + (1 << 36))
    run_contract(capsys, where["tmp"], "safetensors header", *argv_of(GENERATE_EXPORT, where))


def test_sparse_weights_of_a_huge_declared_model_allocate_nothing(
        template: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A config declaring 2.15e9 parameters and a sparse weights file of the right apparent
    size: refused from the bytes on disk, before any tensor is allocated."""
    where = fresh(template, tmp_path)
    config = json.loads((where["export"] / "config.json").read_text())
    config["cfg"].update(d_model=4096, n_layers=10, n_heads=32, d_head=128, d_ff=16384)
    (where["export"] / "config.json").write_text(json.dumps(config))
    with open(where["export"] / "model.safetensors", "r+b") as fh:
        fh.truncate(4 * 2_150_000_000 + 4096)
    before = peak_rss()
    rc, line = run_contract(capsys, where["tmp"], "stored model: sparse, 2.15e9 parameters",
                            *argv_of(GENERATE_EXPORT, where))
    assert rc == 2 and "bytes on disk" in line, line
    assert peak_rss() - before < 256 << 20


def test_memory_stayed_bounded() -> None:
    assert peak_rss() - START_RSS < MAX_RSS_GROWTH, peak_rss() - START_RSS
