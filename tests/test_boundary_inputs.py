"""Study YAML and dataset manifests as classes of hostile inputs (issue 28), in this process
(load_config, load_split: a valid value or one XferError line, in bounded time), and a few
commands end to end in a subprocess with a timeout: a FIFO never blocks, an alias bomb never
expands, and memory stays bounded (a budget of 10**999999: tests/test_boundary_issue.py)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.crafted_util import TALLY, hostile_values, make_run_folder, mutate_json
from xfer.errors import XferError

REPO = Path(__file__).resolve().parents[1]
CASES = settings(max_examples=25, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])
DEFAULT_YAML = (REPO / "sweeps" / "configs" / "default.yaml").read_text(encoding="utf-8")
YAML_VALUES = ["9" * 5000, ".nan", ".inf", "0", "-1", "1e999999", "[" * 20_000 + "]" * 20_000,
               "{a: 1, a: 2}", "&x [*x]", "../../evil", "[[[[[]]]]]", "~", "'6M'", "1e99999999",
               "!!python/object:os.system x"]


@pytest.fixture(scope="module")
def warm() -> None:
    """Load the default study once: the lazy imports it triggers are not timed."""
    from sweeps.config import load_config

    load_config("default")


def tally(kind: str, accepted: bool) -> None:
    TALLY[kind]["valid result" if accepted else "one XferError line"] += 1


@CASES
@given(line=st.integers(0, 200), value=st.sampled_from(YAML_VALUES),
       extra=st.sampled_from(["", "seeds: [9]\n", "estimate:\n  peak_flops: .nan\n",
                              "resources:\n  cpus_per_trial: .nan\n",
                              "bomb: " + "&a [x, x, x, x, x, x, x, x, x]\n"]))
def test_hostile_study_yaml(line: int, value: str, extra: str, tmp_path: Path,
                            warm: None) -> None:
    """default.yaml with one value replaced and, sometimes, a duplicate or hostile key
    appended: loaded into a StudyConfig or refused with one line, within 2 s."""
    from sweeps.config import load_config

    if not TALLY["study YAML"]:  # the unbroken study loads
        (tmp_path / "ok.yaml").write_text(DEFAULT_YAML, encoding="utf-8")
        assert load_config(str(tmp_path / "ok.yaml")).name == "default"
    lines = DEFAULT_YAML.splitlines()
    values = [i for i, text in enumerate(lines) if ": " in text and not text.lstrip()
              .startswith("#") and not text.rstrip().endswith(":")]
    i = values[line % len(values)]
    key = lines[i].split(": ")[0]
    lines[i] = f"{key}: {value}"
    path = tmp_path / "study.yaml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    start = time.perf_counter()
    try:
        study = load_config(str(path))
    except XferError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path)), str(exc)
        tally("study YAML", False)
    else:
        assert extra == "", "a duplicate, unknown or non-finite key was accepted"
        assert study.to_dict()["name"]
        tally("study YAML", True)
    assert time.perf_counter() - start < 10.0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared dataset root with one language, ``qt`` (1000-byte train, 100-byte dev/test)."""
    from xfer.data.prepare import FORMAT

    root = tmp_path_factory.mktemp("dataset")
    folder = root / "qt"
    folder.mkdir()
    splits = {}
    for split, size in (("dev", 100), ("test", 100), ("train", 1000)):
        (folder / f"{split}.bin").write_bytes((np.arange(size) % 200).astype(np.uint8).tobytes())
        splits[split] = {"file": f"{split}.bin", "bytes": size}
    manifest = {"format": FORMAT, "splits": splits, "budgets": {"500": {"bytes": 500}}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    from xfer.data.store import load_split

    assert load_split(root, "qt", "train", 500).size == 500  # the unbroken dataset loads
    return root


@CASES
@given(path_index=st.integers(0, 100), value=hostile_values, delete=st.booleans(),
       split=st.sampled_from(["dev", "train"]), budget=st.sampled_from([None, 500]))
def test_hostile_manifests(path_index: int, value: object, delete: bool, split: str,
                           budget: int | None, dataset: Path) -> None:
    from xfer.data.store import load_split

    manifest = dataset / "qt" / "manifest.json"
    good = manifest.read_text()
    manifest.write_text(mutate_json(good, path_index, value, delete))
    try:
        data = load_split(dataset, "qt", split, budget if split == "train" else None)
    except XferError as exc:
        assert "\n" not in str(exc)
        tally("dataset manifest", False)
    else:
        assert data.dtype == np.uint8 and 0 < data.size <= 1000
        assert Path(data.filename).parent == dataset / "qt"  # never a file outside
        tally("dataset manifest", True)
    finally:
        manifest.write_text(good)


# ---- end to end: subprocesses with a timeout and a memory measure ----
def run_command(*argv: str, timeout: int = 120) -> tuple[subprocess.CompletedProcess, int]:
    """(the finished command, its peak resident memory in bytes)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("XFER_DEBUG", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return proc, max(peak, before) * 1024


def assert_one_line(proc: subprocess.CompletedProcess, prog: str, kind: str) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    TALLY[kind]["one line, exit 2 (subprocess)"] += 1
    return lines[0]


def test_end_to_end_fifo_and_alias_bomb(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path)
    os.unlink(run / "config.json")
    os.mkfifo(run / "config.json")
    proc, peak = run_command("-m", "xfer.cli", "export", str(run), "--trial",
                          "scratch-qt-1K-s0", "--out", str(tmp_path / "e"))
    assert "FIFO" in assert_one_line(proc, "xfer export", "end to end: FIFO config.json")
    assert peak < 2 << 30, peak
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text('lol0: &a0 ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"lol{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10)))
    assert len(bomb.read_bytes()) < 4000
    proc, _ = run_command("-m", "sweeps.grid", "--config", str(bomb), "--dry-run")
    assert "alias" in assert_one_line(proc, "python -m sweeps.grid",
                                      "end to end: YAML alias bomb --dry-run")
    assert not (tmp_path / "e").exists()
