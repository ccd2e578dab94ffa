"""The Ray dashboard names the work: a tiny study's trial actors carry their trial keys (class
``StudyTrial``, repr = the key) and the study's progress (trials done, running, ETA) is on a named
actor, read through the dashboard's REST state API with the token the driver prints."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from faults_util import (
    grid_env,
    lines_until_study_done,
    private_ray_tmp,
    study,
    study_then_wait,
    write_yaml,
)

from sweeps.trials import build_trials

KEY = re.compile(r"^(pretrain|scratch|finetune)-[a-z0-9]+(-[a-z0-9]+)?-[0-9.]+[KMG]?-s\d+$")


def _get(url: str, token: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        return reply.read()


@pytest.fixture(scope="module")
def dashboard_study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A tiny study through ``python -m sweeps.grid`` with the dashboard on, left running
    after the study so that its dashboard can be asked; yields its URL, token and trial keys."""
    tmp = tmp_path_factory.mktemp("dash")
    config = write_yaml(tmp / "study.yaml", study(name="dashnames"))
    with private_ray_tmp() as ray_tmp:
        env = {k: v for k, v in grid_env(ray_tmp).items() if not k.startswith("RAY_AUTH_")}
        argv = ["--config", str(config), "--output", str(tmp / "runs"), "--num-cpus", "2"]
        proc = study_then_wait(argv, env, 120)
        try:
            lines = lines_until_study_done(proc)
            assert lines[-1] == "study done 0", lines[-12:]
            (line,) = [x for x in lines if x.startswith("[xfer] dashboard ")]
            url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
            token = Path(re.search(r"RAY_AUTH_TOKEN_PATH=(\S+)", line).group(1)).read_text()
            from sweeps.config import load_config

            keys = {t.key for t in build_trials(load_config(config))}
            yield {"url": url, "token": token.strip(), "keys": keys, "ray_tmp": ray_tmp,
                   "run": next((tmp / "runs").glob("dashnames-*"))}
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()


def _actors(study: dict) -> list[dict]:
    reply = json.loads(_get(f"{study['url']}/api/v0/actors?detail=1&limit=10000",
                            study["token"]))
    return reply["data"]["result"]["result"]


def _board_tasks(study: dict, want: str) -> tuple[dict, list[str]]:
    """The progress actor and the names of its tasks, once one holds ``want`` (task events
    reach the dashboard within seconds; up to 60 s)."""
    name = f"xfer-progress-{study['run'].name}"
    (board,) = [a for a in _actors(study) if a.get("name") == name]
    deadline = time.time() + 60
    while True:
        reply = json.loads(_get(
            f"{study['url']}/api/v0/tasks?detail=1&limit=10000&filter_keys=actor_id"
            f"&filter_predicates=%3D&filter_values={board['actor_id']}", study["token"]))
        names = [t["name"] for t in reply["data"]["result"]["result"]]
        if any(want in n for n in names) or time.time() > deadline:
            return board, names
        time.sleep(2)


@pytest.mark.slow
def test_trial_actors_carry_their_trial_keys(dashboard_study: dict) -> None:
    actors = _actors(dashboard_study)
    trials = [a for a in actors if a["class_name"] == "StudyTrial"]
    assert trials, [(a["class_name"], a.get("repr_name")) for a in actors]
    assert not [a for a in actors if "ImplicitFunc" in a["class_name"]
                or a.get("repr_name") == "train_trial"]
    for actor in trials:  # each is named after the first trial it ran (Tune reuses actors)
        assert actor["repr_name"] in dashboard_study["keys"], actor["repr_name"]
    # every trial ran under its key: the progress tasks list it as running, and the log lines
    # of the worker that ran it carry it (Ray's log prefix token, then one line of ours)
    _, names = _board_tasks(dashboard_study, "done")
    shown = {k for n in names for k in n.split("| running: ")[-1].split(", ")}
    assert dashboard_study["keys"] <= shown, dashboard_study["keys"] - shown
    logs = "".join(p.read_text(errors="replace")
                   for p in dashboard_study["ray_tmp"].glob("xfer-ray-*/ray/session_*/logs/"
                                                             "worker-*.out"))
    for key in dashboard_study["keys"]:
        assert f":actor_name:{key}\n[xfer] trial {key} started" in logs, key


@pytest.mark.slow
def test_study_progress_is_on_a_named_actor(dashboard_study: dict) -> None:
    total = len(dashboard_study["keys"])
    board, names = _board_tasks(dashboard_study, f"trials {total}/{total} done")
    assert board["state"] == "ALIVE" and board["class_name"] == "ProgressBoard"
    assert board["repr_name"] == f"xfer study {dashboard_study['run'].name}"
    assert any(f"trials {total}/{total} done" in n for n in names), names
    assert any(re.search(r"trials \d+/\d+ done, \d+ running .*\| ETA \S+ \| running: \S+", n)
               for n in names), names
