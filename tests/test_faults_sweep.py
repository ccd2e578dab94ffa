"""Faults of a whole study (``python -m sweeps.grid`` on a private local Ray), real signals:

- a second driver on the same run folder is refused (lock) while the first finishes: that first,
  uninterrupted run is the reference the other tests compare against;
- SIGKILL of the driver mid-study, same command again: it finishes, no finished trial trains
  again (counted by their result.json/ledger files), results equal the reference;
- SIGKILL of a trial's worker process mid-training: Tune retries the trial from its last
  checkpoint, the study finishes with results equal to the reference;
- storage full (a tiny tmpfs, when this process may mount one): a clear error, and the same
  command finishes after space is freed.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.faults_util import (
    TINY_TRIALS,
    ledger_keys,
    one_error_line,
    private_ray_tmp,
    results_by_key,
    run_dir_of,
    run_grid,
    start_grid,
    study,
    trial_worker_pids,
    wait_for,
    write_yaml,
)

# Pretrains long enough (~400 steps, a checkpoint every 4) to be caught mid-training.
STUDY = study(name="faults", budgets={"pretrain": "100K"},
              train={"pretrain": {"checkpoint_every": 4}})
PRETRAIN = "pretrain-base-100K-s0"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """An uninterrupted study; meanwhile a second driver on its run folder must be refused."""
    tmp = tmp_path_factory.mktemp("reference")
    config, out = write_yaml(tmp / "study.yaml", STUDY), tmp / "runs"
    with private_ray_tmp() as ray_tmp:
        first = start_grid(config, out, tmp / "first.log", ray_tmp=ray_tmp)
        try:
            wait_for(lambda: out.is_dir() and any(out.iterdir()) and
                     (run_dir_of(out) / "config.json").exists(), 120, "first driver started",
                     first)
            second = run_grid(config, out, ray_tmp=ray_tmp, timeout=120)
            assert second.returncode != 0
            assert "another sweep is running" in one_error_line(second.stderr)
            assert first.wait(timeout=400) == 0, (tmp / "first.log").read_text()[-3000:]
        finally:
            first.kill()
            first.wait()
    results = results_by_key(run_dir_of(out))
    assert len(results) == TINY_TRIALS
    return results


@pytest.mark.slow
def test_second_driver_refused_and_reference_complete(reference: dict[str, float]) -> None:
    assert all(p > 1 for p in reference.values())


@pytest.mark.slow
def test_sigkill_driver_then_rerun(reference: dict[str, float], tmp_path: Path) -> None:
    config, out = write_yaml(tmp_path / "study.yaml", STUDY), tmp_path / "runs"
    with private_ray_tmp() as ray_tmp:
        driver = start_grid(config, out, tmp_path / "killed.log", ray_tmp=ray_tmp)
        try:
            wait_for(lambda: out.is_dir() and any(out.iterdir()) and
                     len(ledger_keys(run_dir_of(out))) >= 2, 300, "two finished trials", driver)
            driver.send_signal(signal.SIGKILL)
            driver.wait(timeout=30)
        finally:
            driver.kill()
            driver.wait()
    run_dir = run_dir_of(out)
    done_before = ledger_keys(run_dir)
    assert 2 <= len(done_before) < TINY_TRIALS, "the study ended before the kill"
    finished = {p: p.stat().st_mtime_ns for p in (run_dir / "trials").glob("*/result.json")}
    ledgered = {p: p.stat().st_mtime_ns for p in (run_dir / "ledger").glob("*.json")}
    with private_ray_tmp() as ray_tmp:
        again = run_grid(config, out, ray_tmp=ray_tmp)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"{len(done_before)}/{TINY_TRIALS} trials already finished" in again.stdout
    # no finished trial ran again: its result.json and ledger entry are untouched
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    assert {p: p.stat().st_mtime_ns for p in ledgered} == ledgered
    assert len(ledger_keys(run_dir)) == TINY_TRIALS
    assert results_by_key(run_dir) == reference


@pytest.mark.slow
def test_sigkill_trial_worker_is_retried_from_checkpoint(reference: dict[str, float],
                                                         tmp_path: Path) -> None:
    config, out = write_yaml(tmp_path / "study.yaml", STUDY), tmp_path / "runs"
    with private_ray_tmp() as ray_tmp:
        driver = start_grid(config, out, tmp_path / "grid.log", ray_tmp=ray_tmp)
        try:
            ckpts = lambda: list((run_dir_of(out) / "trials" / PRETRAIN /  # noqa: E731
                                  "checkpoints").glob("step-*")) if out.is_dir() and \
                any(out.iterdir()) else []
            wait_for(ckpts, 300, f"{PRETRAIN} wrote a checkpoint", driver, poll=0.02)
            pids = wait_for(lambda: trial_worker_pids(ray_tmp, PRETRAIN), 30,
                            f"the worker of {PRETRAIN}", driver, poll=0.02)
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            killed_after = max(int(p.name.split("-")[1]) for p in ckpts())
            assert driver.wait(timeout=400) == 0, (tmp_path / "grid.log").read_text()[-3000:]
        finally:
            driver.kill()
            driver.wait()
    run_dir = run_dir_of(out)
    assert not (run_dir / "trials" / PRETRAIN / "result.json").stat().st_size == 0
    log = (tmp_path / "grid.log").read_text()
    assert killed_after >= 4
    assert results_by_key(run_dir) == reference, log[-3000:]


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


@pytest.mark.slow
def test_storage_full_then_freed(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "300k"):
        pytest.skip("cannot mount a tmpfs here (needs root); disk-full not simulated")
    try:
        config = write_yaml(tmp_path / "study.yaml", study(name="full"))
        with private_ray_tmp() as ray_tmp:
            full = run_grid(config, mnt / "runs", ray_tmp=ray_tmp)
        assert full.returncode != 0
        assert "No space left on device" in one_error_line(full.stderr)
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        with private_ray_tmp() as ray_tmp:
            again = run_grid(config, mnt / "runs", ray_tmp=ray_tmp)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert len(results_by_key(run_dir_of(mnt / "runs"))) == TINY_TRIALS
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
