"""Faults in one training run and in dataset preparation, with real processes and SIGKILL.

- A training process killed mid-run resumes from its last checkpoint and ends with exactly the
  perplexities of an uninterrupted run (CPU, one thread: bit-identical).
- A crash between a temp file and its rename (checkpoint directories, ``best``, ``result.json``,
  the manifest, the dataset folder) leaves the previous good state: the next run never reads a
  torn file and ends exactly like an uninterrupted one.
"""

from __future__ import annotations

import filecmp
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import fault_worker
from tests.faults_util import REPO, grid_env, wait_for

METRICS = ("dev_perplexity", "test_perplexity", "dev_bits_per_byte", "test_bits_per_byte",
           "bytes_seen", "steps")


def worker(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.fault_worker", *args]


def run_worker(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(worker(*args), capture_output=True, text=True, cwd=REPO,
                          timeout=timeout, env=grid_env())


def same_result(got: dict, want: dict) -> None:
    assert {k: got[k] for k in METRICS} == {k: want[k] for k in METRICS}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faultdata") / "data"
    fault_worker.prepare_tiny(root)
    return root


@pytest.fixture(scope="module")
def reference(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict]:
    """Uninterrupted runs (3 and 8 epochs), in a worker process like the faulted ones."""
    out = {}
    for epochs in (3, 8):
        proc = run_worker("train", str(data), str(tmp_path_factory.mktemp(f"ref{epochs}")),
                          "--epochs", str(epochs))
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[epochs] = json.loads(proc.stdout)
    return out


def test_sigkill_mid_training_resumes_to_identical_result(data: Path, reference: dict,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(worker("train", str(data), str(out), "--epochs", "8"), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=grid_env())
    try:
        ckpts = out / "checkpoints"
        wait_for(lambda: len(list(ckpts.glob("step-*"))) >= 2, 120, "two step checkpoints",
                 proc, poll=0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "result.json").exists(), "the run finished before it was killed"
    killed_at = max(int(p.name.split("-")[1]) for p in ckpts.glob("step-*"))
    again = run_worker("train", str(data), str(out), "--epochs", "8")
    assert again.returncode == 0, again.stderr[-2000:]
    result = json.loads(again.stdout)
    assert 0 < killed_at < result["steps"]
    same_result(result, reference[8])


# (destination name, which rename of it) -> where the crash lands
CRASH_POINTS = {
    "first step checkpoint": ("step-", 1),
    "a later step checkpoint": ("step-", 4),
    "first best": ("best", 1),
    "best replaced: old moved away, new not in place": ("best", 3),
    "result.json": ("result.json", 1),
}


@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_crash_between_temp_and_rename_of_a_checkpoint(point: str, data: Path, reference: dict,
                                                       tmp_path: Path) -> None:
    name, nth = CRASH_POINTS[point]
    out = tmp_path / "run"
    crashed = run_worker("train", str(data), str(out), "--die-before", name, "--nth", str(nth))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    leftovers = [p.name for p in out.rglob(".*")]
    assert leftovers, "the crash left no temp file: it did not land between temp and rename"
    again = run_worker("train", str(data), str(out))
    assert again.returncode == 0, again.stderr[-2000:]
    same_result(json.loads(again.stdout), reference[3])


DATA_CRASH_POINTS = {
    "manifest written, not renamed": ("manifest.json", 1),
    "language folder complete, not renamed": (fault_worker.LANG, 1),
}


@pytest.mark.parametrize("point", list(DATA_CRASH_POINTS))
def test_crash_between_temp_and_rename_of_a_dataset(point: str, data: Path,
                                                    tmp_path: Path) -> None:
    name, nth = DATA_CRASH_POINTS[point]
    out = tmp_path / "data"
    crashed = run_worker("prepare", str(out), "--die-before", name, "--nth", str(nth))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    assert not (out / fault_worker.LANG).exists(), "a half-made dataset looks finished"
    from xfer.data import load_split
    from xfer.errors import XferError

    with pytest.raises(XferError, match="no prepared dataset"):
        load_split(out, fault_worker.LANG, "train", fault_worker.BUDGET)
    again = run_worker("prepare", str(out))
    assert again.returncode == 0, again.stderr[-2000:]
    for split in ("train.bin", "dev.bin", "test.bin"):
        assert filecmp.cmp(out / fault_worker.LANG / split, data / fault_worker.LANG / split,
                           shallow=False), split
    start = time.time()
    assert len(load_split(out, fault_worker.LANG, "train", fault_worker.BUDGET)) == 8000
    assert time.time() - start < 30
