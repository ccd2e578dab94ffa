"""A real two-node Ray cluster on loopback (``ray start --head`` + ``ray start --address``), a
tiny study through ``python -m sweeps.grid --address ...``, trials placed on both nodes.

Each node gets its own ``--temp-dir`` so that teardown can find exactly the processes this test
started (by their command lines) and end them by pid; ``ray stop`` would end every Ray process
on the machine, other people's included."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.test_sweep_run import STUDY, run_grid, write_study

RAY = str(Path(sys.executable).with_name("ray"))
NODE_MEMORY = 2 * 1024**3
OBJECT_STORE = 200 * 1024**2


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


def processes_under(temp_dirs: list[Path]) -> list[int]:
    """Pids of processes whose command line names one of our nodes' temp dirs (Linux /proc)."""
    marks = [str(d).encode() for d in temp_dirs]
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if any(m in cmd for m in marks):
            found.append(int(entry.name))
    return found


def stop_nodes(temp_dirs: list[Path]) -> None:
    """End the processes our ``ray start`` calls launched, by pid: TERM, then KILL."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        for pid in processes_under(temp_dirs):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + wait
        while processes_under(temp_dirs) and time.time() < deadline:
            time.sleep(0.2)


@pytest.mark.slow
def test_two_node_cluster_runs_a_study_on_both_nodes(tmp_path: Path) -> None:
    # short paths: Ray's unix sockets live under the temp dir (108-character limit)
    root = Path(tempfile.mkdtemp(prefix="xr", dir="/tmp"))
    head_dir, worker_dir = root / "h", root / "w"
    # token authentication, with a token made for this cluster and given to every process
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **auth}
    gcs, client, *ports = free_ports(14)
    try:
        subprocess.run([RAY, "start", "--head", "--port", str(gcs), "--node-ip-address",
                        "127.0.0.1", "--include-dashboard", "false", "--ray-client-server-port",
                        str(client), *node_args(head_dir, ports[:6])],
                       check=True, env=env, capture_output=True, timeout=120)
        subprocess.run([RAY, "start", "--address", f"127.0.0.1:{gcs}", "--node-ip-address",
                        "127.0.0.1", *node_args(worker_dir, ports[6:12])],
                       check=True, env=env, capture_output=True, timeout=120)
        study = {**STUDY, "name": "twonode",
                 "languages": {"sources": ["base", "twin"], "targets": ["base", "twin"]},
                 "budgets": {"pretrain": "20K", "finetune": ["4K"], "scratch": ["2K", "8K"]}}
        out = tmp_path / "runs"
        done = run_grid(write_study(tmp_path, study), out, "--address", f"127.0.0.1:{gcs}",
                        env=auth)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "up to 2 at once" in done.stdout
        (run_dir,) = out.iterdir()
        results = pd.read_parquet(run_dir / "results.parquet")
        assert len(results) == 2 + 4 + 2
        assert results.node.nunique() == 2, results[["key", "node"]]
        assert (run_dir / "report" / "report.md").is_file()
    finally:
        stop_nodes([head_dir, worker_dir])
        shutil.rmtree(root, ignore_errors=True)
    assert not processes_under([head_dir, worker_dir])
