"""Security (issue 7): no pickled object is ever loaded, a local run's ports are on loopback or
behind a token, cluster.yaml holds no credentials, and config values never reach a shell."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.faults_util import (
    REPO,
    grid_env,
    private_ray_tmp,
    proc_stat,
    processes_under,
    study,
    write_yaml,
)
from xfer.errors import XferError

PWNED = Path("/tmp/xfer-security-pwned")  # a payload that ran would create this


class _Evil:
    """Pickles to a call of os.system: a file that runs code if unpickled freely."""

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {PWNED}",))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real trained checkpoint and copies whose model.pt / trainer.pt hold a pickled object."""
    from xfer.data import prepare
    from xfer.model import MODEL_CONFIGS
    from xfer.training.config import TrainConfig
    from xfer.training.loop import run

    root = tmp_path_factory.mktemp("sec")
    prepare("synthetic", ["base"], [4000], 2000, 2000, 0, root / "data")
    cfg = TrainConfig(kind="scratch", seq_len=64, batch_size=4, micro_batch_size=4, max_steps=2,
                      threads=1)
    result = run(MODEL_CONFIGS["tiny"], cfg, root / "data", "base", 4000, root / "trained")
    good = Path(result.best_checkpoint)
    step = sorted((root / "trained" / "checkpoints").iterdir())[-1]
    out = {"root": root, "data": root / "data", "good": good}
    out["evil_model"] = Path(shutil.copytree(good, root / "evil_model"))
    torch.save({"weight": _Evil()}, out["evil_model"] / "model.pt")
    out["evil_trainer"] = Path(shutil.copytree(step, root / "evil_trainer"))
    torch.save({"optimizer": _Evil()}, out["evil_trainer"] / "trainer.pt")
    return out


def _refused(call: object) -> str:
    PWNED.unlink(missing_ok=True)
    with pytest.raises(XferError) as info:
        call()
    assert not PWNED.exists(), "a checkpoint ran code while loading"
    assert "\n" not in str(info.value)
    return str(info.value)


def test_pickled_checkpoints_are_refused_by_every_loader(checkpoints: dict[str, Path],
                                                         tmp_path: Path) -> None:
    from sweeps.downstream import build_task, check_section
    from xfer import downstream
    from xfer.model import MODEL_CONFIGS
    from xfer.training.checkpoint import load_model
    from xfer.training.config import TrainConfig
    from xfer.training.loop import run

    c = checkpoints
    cfg = TrainConfig(kind="finetune", seq_len=64, batch_size=4, micro_batch_size=4,
                      max_steps=2, threads=1)
    tiny = MODEL_CONFIGS["tiny"]
    assert load_model(c["good"]) is not None  # the clean copy loads
    _refused(lambda: load_model(c["evil_model"]))
    _refused(lambda: run(tiny, cfg, c["data"], "base", 4000, tmp_path / "ft",
                         init_checkpoint=c["evil_model"]))
    _refused(lambda: run(tiny, TrainConfig(kind="scratch", seq_len=64, batch_size=4,
                                           micro_batch_size=4, max_steps=4, threads=1),
                         c["data"], "base", 4000, tmp_path / "resumed",
                         resume_from=c["evil_trainer"]))
    section = check_section({"construct": {"corpus": "synthetic", "premise_lang": "base",
                                           "hypothesis_lang": "twin", "n_train": 8,
                                           "n_validation": 4}, "epochs": 1, "batch_size": 4})
    task = build_task(section.construct, tmp_path / "task")
    dcfg = downstream.DownstreamConfig(task=str(task), epochs=1, batch_size=4, threads=1)
    _refused(lambda: downstream.run(None, dcfg, tmp_path / "ds1",
                                    init_checkpoint=c["evil_model"]))
    _refused(lambda: downstream.run(tiny, dcfg, tmp_path / "ds2", init_checkpoint=c["good"],
                                    resume_from=c["evil_model"]))


# ---- listening sockets of a started local Ray, as ``python -m sweeps.grid`` starts it

def _socket_inodes(pid: int) -> set[str]:
    found = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                found.add(target[8:-1])
    except OSError:
        pass
    return found


def _address(table: str, hexaddr: str) -> tuple[str, int]:
    ip, port = hexaddr.split(":")
    raw = bytes.fromhex(ip)
    if table == "tcp":
        return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port, 16)
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, raw), int(port, 16)


def listening(pids: list[int]) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every TCP socket in LISTEN state owned by ``pids`` (Linux)."""
    owner = {inode: pid for pid in pids for inode in _socket_inodes(pid)}
    out = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in owner:
                out.append((*_address(table, f[1]), owner[f[9]]))
    return out


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(e.split("=", 1) for e in raw.decode(errors="replace").split("\0") if "=" in e)


def _auth_mode(pid: int) -> str | None:
    """``RAY_AUTH_MODE`` in the environment ``pid`` was started with.

    Ray's agents and workers retitle themselves (``ray::DashboardAgent``; setproctitle moves
    the environment to the heap and writes the title over argv *and* the old environment), so
    ``/proc/PID/environ`` then starts with NULs and has lost its first variables; which ones
    depends on where the raylet put ``RAY_AUTH_MODE`` in the block. That was this test's flake.
    For such a process the mode is read from its parent (the raylet), whose environment it
    was started with (Ray adds only its own ids)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    mode = _environ(pid).get("RAY_AUTH_MODE")
    if mode is None and raw.startswith(b"\0"):  # overwritten by the process title
        stat = proc_stat(pid)
        return _auth_mode(int(stat[1])) if stat and int(stat[1]) > 1 else None
    return mode


LOOPBACK = {"127.0.0.1", "::1"}
START = ("import sys, time; from pathlib import Path; import sweeps.runner as r; "
         "r.show_progress(); token = r.local_token_auth(Path(sys.argv[1])); "
         "r.start_ray(r.RunOptions(num_cpus=1, dashboard=True), token); "
         "import os; print('mode', os.environ['RAY_AUTH_MODE'], flush=True); time.sleep(180)")


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A local Ray started as ``python -m sweeps.grid`` starts it (token file in a run folder,
    dashboard on): its driver, private temp dir, run folder and what the driver printed."""
    run_dir = tmp_path_factory.mktemp("run")
    with private_ray_tmp() as ray_tmp:
        env = {k: v for k, v in grid_env(ray_tmp).items() if not k.startswith("RAY_AUTH_")}
        proc = subprocess.Popen([sys.executable, "-c", START, str(run_dir)], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, text=True)
        try:
            lines = []
            while not (lines and lines[-1].startswith("mode ")):
                line = proc.stdout.readline()
                assert line, f"the driver ended (rc {proc.wait()}) after: {lines}"
                lines.append(line.strip())
            yield {"proc": proc, "ray_tmp": ray_tmp, "run_dir": run_dir, "lines": lines}
        finally:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_local_ray_listens_on_loopback_or_behind_a_token(local_ray: dict) -> None:
    """The dashboard (HTTP) binds 127.0.0.1; Ray's gRPC servers listen on every interface
    (Ray has no switch for that), so each non-loopback listener must be a process that requires
    the run's token (``RAY_AUTH_MODE=token``)."""
    proc = local_ray["proc"]
    assert local_ray["lines"][-1] == "mode token"
    time.sleep(2)
    socks = listening([proc.pid, *processes_under([local_ray["ray_tmp"]])])
    dashboards = [(a, p) for a, p, pid in socks if "dashboard/dashboard.py" in
                  Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]
    # the driver set the mode at run time (its /proc environ predates that): it said so
    modes = {pid: "token" if pid == proc.pid else _auth_mode(pid) for _, _, pid in socks}
    assert socks
    exposed = [(a, p, pid) for a, p, pid in socks if a not in LOOPBACK]
    unauthenticated = [s for s in exposed if modes[s[2]] != "token"]
    assert not unauthenticated, f"listening on all interfaces without a token: {unauthenticated}"
    assert any(a in LOOPBACK for a, _ in dashboards), dashboards  # its HTTP port


def _get(url: str, token: str | None = None) -> int:
    import urllib.error
    import urllib.request

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
def test_dashboard_of_a_local_run_opens_with_its_token(local_ray: dict) -> None:
    """The driver prints the dashboard's URL and the token file (mode 0600, in the run
    folder); the dashboard's API answers with that token and refuses without it, and the
    ``ray`` CLI given ``RAY_AUTH_TOKEN_PATH`` lists the cluster's jobs."""
    token_file = local_ray["run_dir"] / "ray_auth_token"
    (line,) = [x for x in local_ray["lines"] if x.startswith("[xfer] dashboard ")]
    url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
    assert str(token_file) in line and f"RAY_AUTH_TOKEN_PATH={token_file}" in line
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert _get(f"{url}/api/jobs/") == 401
    assert _get(f"{url}/api/jobs/", "0" * len(token)) == 403
    assert _get(f"{url}/api/jobs/", token) == 200
    env = {**grid_env(), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)}
    env.pop("RAY_AUTH_TOKEN", None)
    done = subprocess.run([str(Path(sys.executable).with_name("ray")), "job", "list",
                           "--address", url], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_runner_binds_dashboard_to_loopback() -> None:
    """The ``ray.init`` of a local instance names 127.0.0.1 for the dashboard (source check,
    beside the socket test above)."""
    text = (REPO / "sweeps" / "runner.py").read_text()
    assert re.search(r'dashboard_host="127\.0\.0\.1"', text)
    assert "0.0.0.0" not in text


# ---- cluster.yaml and shells

CREDENTIAL = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key|access[_-]?key|"
                        r"private[_-]?key|credentials?)\s*[:=]\s*\S|AKIA[0-9A-Z]{16}|"
                        r"-----BEGIN [A-Z ]*PRIVATE KEY-----|ghp_[A-Za-z0-9]{20,}|"
                        r"\"type\":\s*\"service_account\"")


def test_cluster_yaml_holds_no_credentials() -> None:
    import yaml

    text = (REPO / "cluster.yaml").read_text()
    settings = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert not CREDENTIAL.search(settings), CREDENTIAL.search(settings)
    cfg = yaml.safe_load(text)
    assert set(cfg["auth"]) <= {"ssh_user"}, cfg["auth"]  # no ssh_private_key, no passwords
    assert "Credentials:" in text and "Application Default Credentials" in text


SHELL = re.compile(r"shell\s*=\s*True|os\.system\(|os\.popen\(|subprocess\.getoutput|"
                   r"subprocess\.getstatusoutput|commands\.getoutput|pty\.spawn")


def test_no_shell_in_the_code() -> None:
    hits = [f"{p.relative_to(REPO)}:{n}" for folder in ("xfer", "sweeps")
            for p in sorted((REPO / folder).rglob("*.py"))
            for n, line in enumerate(p.read_text().splitlines(), 1) if SHELL.search(line)]
    assert not hits, hits


def test_yaml_values_with_shell_syntax_stay_inert(tmp_path: Path) -> None:
    payload = f"$(touch {PWNED}); touch {PWNED} `touch {PWNED}`"
    config = write_yaml(tmp_path / "s.yaml", study(
        model={"name": payload},
        downstream={"construct": {"corpus": "synthetic", "premise_lang": "base",
                                  "hypothesis_lang": "twin"}}))
    PWNED.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-m", "sweeps.grid", "--config", str(config),
                           "--dry-run"], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env=grid_env())
    assert done.returncode == 0, done.stderr[-2000:]
    assert payload in done.stdout  # printed as text
    assert not PWNED.exists()
