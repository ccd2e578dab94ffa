"""A real two-node Ray cluster on loopback (``ray start --head`` + ``ray start --address``), a
tiny study through ``python -m sweeps.grid --address ...``, trials placed on both nodes.

Each node gets its own ``--temp-dir`` so that teardown can find exactly the processes this test
started (by their command lines, and their descendants) and end them by pid, as ``ray stop``
does; ``ray stop`` itself would end every Ray process on the machine, other people's included."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from tests.faults_util import REPO, alive, end_pids, proc_stat, processes_under
from tests.test_sweep_run import STUDY, run_grid, write_study

RAY = str(Path(sys.executable).with_name("ray"))
NODE_MEMORY = 2 * 1024**3
OBJECT_STORE = 200 * 1024**2
RAY_STOP_GRACE_S = 16 / 3  # ``ray stop``: --grace-period 16 s, shared by its 3 process groups


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 right now."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def node_args(temp_dir: Path, ports: list[int]) -> list[str]:
    """Options every node of the test cluster gets: one CPU, explicit memory, own ports."""
    names = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port"]
    args = ["--num-cpus", "1", "--memory", str(NODE_MEMORY), "--object-store-memory",
            str(OBJECT_STORE), "--temp-dir", str(temp_dir), "--disable-usage-stats"]
    for name, port in zip(names, ports, strict=True):
        args += [name, str(port)]
    return args


def _parents() -> dict[int, int]:
    """pid -> parent pid of every live process (Linux /proc)."""
    out = {}
    for entry in Path("/proc").iterdir():
        stat = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None:
            out[int(entry.name)] = int(stat[1])
    return out


def node_processes(temp_dirs: list[Path]) -> list[int]:
    """Every process of our nodes: those naming a node's temp dir in their command line (raylet,
    GCS, log monitor, ...) and all their descendants. Workers and agents are the raylet's
    children; their titles (``ray::...``) no longer name the temp dir, and the agents survive
    their raylet (orphaned, ignoring SIGTERM), so they must be found before anything is ended."""
    found = set(processes_under(temp_dirs))
    parents = _parents()
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return sorted(found)


def stop_nodes(temp_dirs: list[Path], grace: float = RAY_STOP_GRACE_S) -> list[int]:
    """``ray stop`` restricted to our nodes' processes (:func:`node_processes`), in its order:
    raylets, then everything else but the GCS, then the GCS; each group SIGTERM, up to
    ``grace`` seconds, then SIGKILL. Returns the pids it ended."""
    pids = node_processes(temp_dirs)
    names = {}
    for pid in pids:
        try:
            names[pid] = Path(os.readlink(f"/proc/{pid}/exe")).name
        except OSError:
            names[pid] = ""
    raylets = [p for p in pids if names[p] == "raylet"]
    gcs = [p for p in pids if names[p] == "gcs_server"]
    for group in (raylets, [p for p in pids if p not in raylets + gcs], gcs):
        end_pids(group, grace)
    return pids


def start_cluster(head_dir: Path, worker_dir: Path, env: dict[str, str]) -> str:
    """``ray start --head`` on 127.0.0.1 and one worker node joining it, each with one CPU and
    its own temp dir and ports; returns the cluster address (``127.0.0.1:<GCS port>``)."""
    gcs, client, *ports = free_ports(14)
    subprocess.run([RAY, "start", "--head", "--port", str(gcs), "--node-ip-address",
                    "127.0.0.1", "--include-dashboard", "false", "--ray-client-server-port",
                    str(client), *node_args(head_dir, ports[:6])],
                   check=True, env=env, capture_output=True, timeout=120)
    subprocess.run([RAY, "start", "--address", f"127.0.0.1:{gcs}", "--node-ip-address",
                    "127.0.0.1", *node_args(worker_dir, ports[6:12])],
                   check=True, env=env, capture_output=True, timeout=120)
    return f"127.0.0.1:{gcs}"


def cluster_env(**extra: str) -> tuple[dict[str, str], dict[str, str]]:
    """Token authentication with a token made for this cluster, to give to every process:
    returns (the auth variables, the environment for ``ray start``)."""
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    return auth, {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **auth, **extra}


@pytest.mark.slow
def test_two_node_cluster_runs_a_study_on_both_nodes(tmp_path: Path) -> None:
    # short paths: Ray's unix sockets live under the temp dir (108-character limit)
    root = Path(tempfile.mkdtemp(prefix="xr", dir="/tmp"))
    head_dir, worker_dir = root / "h", root / "w"
    auth, env = cluster_env()
    try:
        address = start_cluster(head_dir, worker_dir, env)
        study = {**STUDY, "name": "twonode",
                 "languages": {"sources": ["base", "twin"], "targets": ["base", "twin"]},
                 "budgets": {"pretrain": "20K", "finetune": ["4K"], "scratch": ["2K", "8K"]}}
        out = tmp_path / "runs"
        done = run_grid(write_study(tmp_path, study), out, "--address", address,
                        env=auth)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "up to 2 at once" in done.stdout
        (run_dir,) = out.iterdir()
        results = pd.read_parquet(run_dir / "results.parquet")
        assert len(results) == 2 + 4 + 2
        assert results.node.nunique() == 2, results[["key", "node"]]
        assert (run_dir / "report" / "report.md").is_file()
    finally:
        ended = stop_nodes([head_dir, worker_dir])
        shutil.rmtree(root, ignore_errors=True)
    assert not alive(ended) and not processes_under([head_dir, worker_dir])


@pytest.mark.parametrize("recorded", [None, "127.0.0.1:{port}"])
def test_address_auto_without_a_cluster_is_one_line(tmp_path: Path,
                                                    recorded: str | None) -> None:
    """``--address auto`` with no cluster on this machine (none recorded by ``ray start``, no
    RAY_ADDRESS), or one recorded whose GCS is gone: exit 2, one line on stderr, naming what
    was looked for, and no run folder made (before: 37 lines of Ray's retries and a traceback).
    Ray processes of other people's local studies are not joined."""
    ray_tmp = tmp_path / "raytmp"
    ray_tmp.mkdir()
    if recorded:
        (ray_tmp / "ray").mkdir()
        (ray_tmp / "ray" / "ray_current_cluster").write_text(
            recorded.format(port=free_ports(1)[0]))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-m", "sweeps.grid", "--config", str(write_study(tmp_path)),
         "--output", str(tmp_path / "runs"), "--address", "auto"], capture_output=True,
        text=True, cwd=REPO, timeout=120,
        env={**env, "RAY_TMPDIR": str(ray_tmp), "RAY_USAGE_STATS_ENABLED": "0"})
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = done.stderr.splitlines()
    why = "Connection refused" if recorded else "no Ray cluster is running on this machine"
    assert line.startswith("python -m sweeps.grid: error: ") and why in line, line
    assert not (tmp_path / "runs").exists()
