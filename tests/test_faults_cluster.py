"""Fault 2 of issue #7: a whole worker node dies mid-study (``ray stop`` on the second node of a
two-node local cluster); the study finishes on the remaining node.

The cluster is the one of ``tests/test_sweep_cluster.py``: ``ray start --head`` and
``ray start --address`` on 127.0.0.1, one CPU each, each node with its own ``--temp-dir``, token
authentication. The study is ``tests/faults_util.py``'s tiny one (8 trials), with a checkpoint
every 4 steps so that any trial without a parent can be caught mid-training.

Why not the literal ``ray stop``: it ends every Ray process *on the machine* (found by process
name), and on loopback both nodes (and other people's Ray) share the machine. The test does what
``ray stop`` does, restricted to the worker node's processes (those naming its temp dir in their
command line, the raylet among them, and all their descendants: trial workers, agents), with
``stop_nodes`` of ``tests/test_sweep_cluster.py``: SIGTERM to the raylet, up to ``ray stop``'s
grace period, SIGKILL; then the same for the node's other processes.

It does so while a trial is training on the worker node: a process of that node (a child of its
raylet) whose working directory is the trial's (Ray Tune runs each trial in
``working_dirs/<key>``), once the trial has written a checkpoint and before its result. The
raylet, ended by SIGTERM, unregisters itself; were it to need SIGKILL, the GCS's health checks
(shortened below, ``RAY_health_check_*``, from a check every 3 s, 5 failures in a row) notice the
dead node within a few seconds. The trial's actor dies with its node; Tune retries the trial
(``run.max_failures``, default 2) on the head node, from its last checkpoint in the run folder
(shared: same machine).

Reference: the killed trial trained in one go outside Ray (same code, config, seed, data and
threads as ``sweeps.trainable``), in a separate process on the CPU the dead node leaves free,
while the study finishes. On CPU its test perplexity must be identical. (An uninterrupted run of
the whole study would double the test's time; the other trials were not interrupted.)"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from sweeps.config import load_config
from sweeps.trials import TrialSpec, build_trials
from tests.faults_util import (
    TINY_TRIALS,
    alive,
    ledger_keys,
    run_dir_of,
    start_grid,
    study,
    wait_for,
    write_yaml,
)
from tests.test_sweep_cluster import (
    cluster_env,
    node_processes,
    start_cluster,
    stop_nodes,
)

# faults_util's tiny study; every trial without a parent is catchable mid-training (a checkpoint
# every 4 steps: pretrains ~200, scratch runs 16-62).
STUDY = study(name="nodekill", budgets={"pretrain": "50K"},
              train={"pretrain": {"checkpoint_every": 4}, "scratch": {"checkpoint_every": 4}})
# A dead raylet noticed within ~3-5 s (a check every second, 2 s to answer, 3 misses in a row).
HEALTH_CHECKS = {"RAY_health_check_initial_delay_ms": "1000",
                 "RAY_health_check_period_ms": "1000",
                 "RAY_health_check_timeout_ms": "2000",
                 "RAY_health_check_failure_threshold": "3"}


def node_id(temp_dir: Path) -> str:
    """The Ray node id of the node started with ``--temp-dir temp_dir`` (its raylet's log)."""
    text = (temp_dir / "session_latest" / "logs" / "raylet.out").read_text()
    found = re.search(r"node_id=([0-9a-f]{56})", text)
    assert found, f"no node id in {temp_dir}/session_latest/logs/raylet.out"
    return found.group(1)


def trial_on_node(temp_dir: Path, out: Path, keys: set[str]) -> str | None:
    """One of ``keys`` now training on the node of ``temp_dir``: a process of that node in the
    trial's working directory, the trial with a checkpoint written and no result yet."""
    if not out.is_dir() or not any(out.iterdir()):
        return None
    trials = run_dir_of(out) / "trials"
    for pid in node_processes([temp_dir]):
        try:
            key = Path(os.readlink(f"/proc/{pid}/cwd")).name
        except OSError:
            continue
        if key in keys and not (trials / key / "result.json").exists() and \
                any((trials / key / "checkpoints").glob("step-*")):
            return key
    return None


def uninterrupted_perplexity(config: Path, key: str, data_dir: Path, out_dir: Path) -> float:
    """Test perplexity of trial ``key`` (one without a parent) trained in one go, outside Ray,
    as ``sweeps.trainable.train_trial`` trains it."""
    from xfer.model import ModelConfig
    from xfer.training.config import TrainConfig
    from xfer.training.loop import run

    loaded = load_config(str(config))
    study = loaded.to_dict()
    (trial,) = [t for t in build_trials(loaded) if t.key == key]
    cfg = dataclasses.replace(TrainConfig.from_dict(study["train"][trial.kind]), seed=trial.seed,
                              threads=int(study["resources"]["cpus_per_trial"]))
    result = run(ModelConfig.from_dict(study["model"]), cfg, data_dir, trial.lang, trial.budget,
                 out_dir)
    return result.to_dict()["test_perplexity"]


def failures_of(run_dir: Path) -> dict[str, str]:
    """Trial key -> Tune's error file (one ``Failure # n`` section per failed attempt)."""
    return {p.parent.name: p.read_text() for p in (run_dir / "tune").glob("attempt-*/*/error.txt")}


@pytest.mark.slow
def test_worker_node_stopped_mid_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_yaml(tmp_path / "study.yaml", STUDY)
    trials: list[TrialSpec] = build_trials(load_config(str(config)))
    assert len(trials) == TINY_TRIALS
    # short paths: Ray's unix sockets live under the temp dir (108-character limit)
    root = Path(tempfile.mkdtemp(prefix="xk", dir="/tmp"))
    head_dir, worker_dir = root / "h", root / "w"
    auth, env = cluster_env(**HEALTH_CHECKS)
    for name, value in auth.items():  # for the driver: faults_util passes os.environ on
        monkeypatch.setenv(name, value)
    out, log = tmp_path / "runs", tmp_path / "grid.log"
    driver = None
    spawn = multiprocessing.get_context("spawn")  # no fork of this process; torch set up there
    try:
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            address = start_cluster(head_dir, worker_dir, env)
            head, worker = node_id(head_dir), node_id(worker_dir)
            driver = start_grid(config, out, log, "--address", address)
            victim = wait_for(
                lambda: trial_on_node(worker_dir, out, {t.key for t in trials if not t.parent}),
                300, "a trial training on the worker node", driver, poll=0.1)
            run_dir = run_dir_of(out)
            done_before = ledger_keys(run_dir)
            step = max(p.name for p in (run_dir / "trials" / victim).glob("checkpoints/step-*"))
            killed_at = time.time()
            ended = stop_nodes([worker_dir])  # ``ray stop`` on the worker node
            assert not alive(ended)
            reference = pool.submit(uninterrupted_perplexity, config, victim, run_dir / "data",
                                    tmp_path / "reference" / victim)
            assert driver.wait(timeout=300) == 0, log.read_text()[-3000:]
            expected = reference.result(timeout=120)
    finally:
        if driver is not None:
            driver.kill()
            driver.wait()
        ended = stop_nodes([head_dir, worker_dir])
        shutil.rmtree(root, ignore_errors=True)
    assert not alive(ended)
    grid_log = log.read_text()
    results = pd.read_parquet(run_dir / "results.parquet")
    assert sorted(results.key) == sorted(t.key for t in trials), grid_log[-3000:]
    assert (run_dir / "report" / "report.md").is_file()
    # the killed trial, and only it, failed once (its node died) and was retried on the head
    failures = failures_of(run_dir)
    assert list(failures) == [victim], failures
    assert failures[victim].count("Failure # ") == 1, failures[victim]
    assert "its node has died" in failures[victim], failures[victim]
    assert victim not in done_before
    # after the kill every trial finished on the head node
    row = results.set_index("key")
    for key in row.index:
        if key not in done_before or row.loc[key, "ended_at"] >= killed_at:
            assert row.loc[key, "node"] == head, (key, row.loc[key, "node"], head, worker)
    assert set(results.node) <= {head, worker}
    # and the retried trial's result is exactly that of an uninterrupted run
    assert row.loc[victim, "perplexity"] == expected, (victim, row.loc[victim, "perplexity"])
    per_node = results.node.map({head: "head", worker: "worker"}).value_counts().to_dict()
    print(f"killed {victim} after its {step}; {len(done_before)} trials done before; "
          f"trials finished per node: {per_node}")
