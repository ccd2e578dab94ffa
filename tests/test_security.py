"""Security (issues 7, 22): no pickled object is ever loaded, a local study listens on 127.0.0.1
only and keeps Ray's temp folder private, cluster.yaml holds no credentials, and config values
never reach a shell."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.faults_util import (
    REPO,
    grid_env,
    lines_until_study_done,
    private_ray_tmp,
    proc_stat,
    processes_under,
    study,
    study_then_wait,
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


# ---- a real local study (``python -m sweeps.grid``): its sockets and Ray's temp folder

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
    """(address, port) of a /proc/net/tcp{,6} entry; an IPv4-mapped IPv6 address
    (``::ffff:127.0.0.1``, where Ray's gRPC servers bind) is written as IPv4."""
    ip, port = hexaddr.split(":")
    raw = bytes.fromhex(ip)
    if table == "tcp":
        return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port, 16)
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    if raw[:12] == b"\0" * 10 + b"\xff\xff":
        return socket.inet_ntop(socket.AF_INET, raw[12:]), int(port, 16)
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


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (Ray's GCS, raylet, agents and workers descend
    from the driver that started them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) is not None:
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _name(pid: int) -> str:
    """The program and first argument of ``pid`` (``python .../dashboard/dashboard.py``)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2]
    except OSError:
        return "?"
    return " ".join(a.decode(errors="replace") for a in argv).strip()


@pytest.fixture(scope="module")
def local_study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A real tiny study through ``python -m sweeps.grid`` on a local Ray (dashboard on, its
    own token), kept running for a while after the study (so its dashboard can be asked). Every
    0.3 s while the study runs, the listening sockets of the driver, its descendant processes
    (GCS, raylet, agents, trial workers) and any process naming the private RAY_TMPDIR are
    recorded, and the modes of Ray's temp folders; ``seen``: {(address, port): process}."""
    tmp = tmp_path_factory.mktemp("sec-study")
    config = write_yaml(tmp / "study.yaml", study(name="secstudy"))
    with private_ray_tmp() as ray_tmp:
        ray_tmp.chmod(0o1777)  # open to all, as /tmp is: only xfer's own folder may guard it
        env = {k: v for k, v in grid_env(ray_tmp).items() if not k.startswith("RAY_AUTH_")}
        argv = ["--config", str(config), "--output", str(tmp / "runs"), "--num-cpus", "2"]
        proc = study_then_wait(argv, env, 180)
        seen: dict[tuple[str, int], str] = {}
        modes: set[tuple[str, int]] = set()
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.3):
                pids = {*descendants(proc.pid), *processes_under([ray_tmp])}
                for address, port, pid in listening(sorted(pids)):
                    seen.setdefault((address, port), f"{_name(pid)} (pid {pid})")
                for folder in ray_tmp.glob("xfer-ray-*/ray/session_2*"):
                    for path in (folder.parents[1], folder):
                        with contextlib.suppress(OSError):
                            modes.add((str(path), path.stat().st_mode & 0o777))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            lines = lines_until_study_done(proc)
            time.sleep(1)
            stop.set()
            sampler.join()
            yield {"proc": proc, "ray_tmp": ray_tmp, "lines": lines, "seen": seen,
                   "modes": modes}
        finally:
            stop.set()
            proc.kill()
            proc.wait()
            proc.stdout.close()


@pytest.mark.slow
def test_a_local_study_listens_on_loopback_only(local_study: dict) -> None:
    """Every port any process of a local study listens on (GCS, raylet, trial workers,
    dashboard, dashboard agent, metrics exporters, runtime-env agent) is on 127.0.0.1."""
    assert local_study["lines"][-1] == "study done 0", local_study["lines"][-12:]
    seen = local_study["seen"]
    names = " ".join(seen.values())
    for part in ("gcs_server", "raylet", "ray::", "dashboard"):
        assert part in names, f"no listening socket of {part} seen: {seen}"
    exposed = {k: v for k, v in seen.items() if k[0] != "127.0.0.1"}
    assert not exposed, f"listening beyond 127.0.0.1: {exposed}"


@pytest.mark.slow
def test_rays_temp_folder_of_a_local_study_is_private(local_study: dict) -> None:
    """Ray makes its folders 0777; a local study's live under ``xfer-ray-<uid>``, 0700 at every
    moment sampled, so no other user reaches the session folder (its logs, sockets, spilled
    objects). As root, another user (nobody) is refused for real."""
    modes = local_study["modes"]
    parents = {m for p, m in modes if Path(p).name.startswith("xfer-ray-")}
    assert parents == {0o700}, modes
    parent = local_study["ray_tmp"] / f"xfer-ray-{os.getuid()}"
    assert parent.stat().st_mode & 0o777 == 0o700 and parent.stat().st_uid == os.getuid()
    (session,) = (parent / "ray").glob("session_2*")
    assert any(Path(p) == session for p, _ in modes), modes
    if os.getuid() == 0 and shutil.which("setpriv"):
        other = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "ls", str(session / "logs")], capture_output=True, text=True)
        assert other.returncode != 0 and "Permission denied" in other.stderr, other


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
def test_dashboard_of_a_local_run_opens_with_its_token(local_study: dict) -> None:
    """The driver prints the dashboard's URL and the token file (mode 0600, in the run
    folder); the dashboard's API answers with that token and refuses without it, and the
    ``ray`` CLI given ``RAY_AUTH_TOKEN_PATH`` lists the cluster's jobs."""
    (line,) = [x for x in local_study["lines"] if x.startswith("[xfer] dashboard ")]
    url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
    token_file = Path(re.search(r"RAY_AUTH_TOKEN_PATH=(\S+)", line).group(1))
    assert token_file.name == "ray_auth_token" and token_file.parent.name.startswith("secstudy-")
    assert f"the token in {token_file}" in line
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


def test_runner_binds_ray_to_loopback() -> None:
    """The ``ray.init`` of a local instance names 127.0.0.1 for the node and the dashboard
    (source check, beside the socket test above)."""
    text = (REPO / "sweeps" / "runner.py").read_text()
    assert 'LOOPBACK = "127.0.0.1"' in text
    assert "dashboard_host=LOOPBACK, _node_ip_address=LOOPBACK" in text
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
