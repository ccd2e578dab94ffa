"""Helpers for the fault-injection and bad-input tests: tiny study configs, the real
``python -m sweeps.grid`` / ``xfer`` commands as subprocesses, waiting for on-disk progress, and
ending exactly the processes a test started (by pid, found through a private Ray temp dir)."""

from __future__ import annotations

import copy
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
XFER = str(Path(sys.executable).with_name("xfer"))
LANGS = ["base", "twin"]  # two of xfer.data.synthetic.DEFAULT_LANGUAGES

TINY_STUDY: dict = {
    "name": "faults", "corpus": "synthetic",
    "languages": {"sources": LANGS, "targets": LANGS},
    "budgets": {"pretrain": "20K", "finetune": ["4K"], "scratch": ["2K", "8K"]},
    "data": {"dev_bytes": "2K", "test_bytes": "2K"},
    "model": {"preset": "tiny", "d_model": 32, "n_layers": 1, "n_heads": 1, "d_head": 32,
              "d_ff": 64},
    "train": {"seq_len": 64, "batch_size": 4, "micro_batch_size": 4,
              "pretrain": {"lr": 3.0e-3, "epochs": 1},
              "scratch": {"lr": 3.0e-3, "epochs": 2},
              "finetune": {"lr": 1.0e-3, "epochs": 2}},
    "resources": {"cpus_per_trial": 1},
    "analysis": {"contamination": False},
}
TINY_TRIALS = 2 + 2 * 2 + 2  # pretrains + scratch (lang x budget) + finetunes


def study(**changes: object) -> dict:
    """A deep copy of :data:`TINY_STUDY` with top-level sections replaced or merged:
    ``study(train={"pretrain": {...}})`` merges one level deep into dict sections."""
    out = copy.deepcopy(TINY_STUDY)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            for sub, subval in value.items():
                if isinstance(subval, dict) and isinstance(out[key].get(sub), dict):
                    out[key][sub] = {**out[key][sub], **subval}
                else:
                    out[key][sub] = subval
        else:
            out[key] = value
    return out


# the tests' shared finished study (conftest.tiny_run): three languages, 15 trials
TINYRUN_LANGS = ["base", "twin", "relative"]
# keeps finished trials' step checkpoints: test_sweep_run rewinds one trial to its first epoch's
TINYRUN = study(name="tinyrun", languages={"sources": TINYRUN_LANGS, "targets": TINYRUN_LANGS},
                budgets={"pretrain": "40K"}, run={"keep_step_checkpoints": True})


def write_yaml(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


@contextmanager
def private_ray_tmp() -> Iterator[Path]:
    """A short private ``RAY_TMPDIR`` (Ray's unix sockets have a 108-character limit); on exit
    every process whose command line names it is ended by pid, then the folder is removed."""
    root = Path(tempfile.mkdtemp(prefix="xf", dir="/tmp"))
    try:
        yield root
    finally:
        end_processes_under([root])
        shutil.rmtree(root, ignore_errors=True)


def grid_env(ray_tmp: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    if ray_tmp is not None:
        env["RAY_TMPDIR"] = str(ray_tmp)
    return env


def grid_argv(config: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sweeps.grid", "--config", str(config), "--output", str(out),
            "--no-dashboard", *extra]


def run_grid(config: Path, out: Path, *extra: str, ray_tmp: Path | None = None,
             timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m sweeps.grid`` to the end (2 local CPUs unless ``extra`` says otherwise)."""
    if "--address" not in extra and "--num-cpus" not in extra:
        extra = ("--num-cpus", "2", *extra)
    return subprocess.run(grid_argv(config, out, *extra), capture_output=True, text=True,
                          cwd=REPO, timeout=timeout, env=grid_env(ray_tmp))


def start_grid(config: Path, out: Path, log: Path, *extra: str,
               ray_tmp: Path | None = None) -> subprocess.Popen:
    """Start ``python -m sweeps.grid`` in the background (its own session), output to ``log``."""
    if "--address" not in extra and "--num-cpus" not in extra:
        extra = ("--num-cpus", "2", *extra)
    fh = open(log, "w")
    return subprocess.Popen(grid_argv(config, out, *extra), stdout=fh, stderr=subprocess.STDOUT,
                            cwd=REPO, env=grid_env(ray_tmp), start_new_session=True)


def wait_for(check: Callable[[], object], timeout: float, what: str,
             proc: subprocess.Popen | None = None, poll: float = 0.05) -> object:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds or if
    ``proc`` ends first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended (rc {proc.returncode}) before: {what}")
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for: {what}")


def processes_under(marks: list[Path]) -> list[int]:
    """Pids of processes whose command line or environment names one of ``marks`` (Linux)."""
    needles = [str(m).encode() for m in marks]
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if any(n in blob for n in needles):
            found.append(int(entry.name))
    return found


def proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state, parent pid, ...), or
    None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (zombies, whoever has to reap them, count as ended)."""
    return [pid for pid in pids if (stat := proc_stat(pid)) is not None and stat[0] != "Z"]


def end_pids(pids: list[int], grace: float) -> None:
    """SIGTERM ``pids``, wait up to ``grace`` seconds, SIGKILL the rest (as ``ray stop``)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for pid in alive(pids):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + wait
        while alive(pids) and time.time() < deadline:
            time.sleep(0.1)


def end_processes_under(marks: list[Path]) -> None:
    """TERM, then KILL, the processes :func:`processes_under` finds (twice: a process started
    while the first ones ended is caught by the second pass)."""
    for _ in range(2):
        end_pids(processes_under(marks), grace=8.0)


def trial_worker_pids(ray_tmp: Path, key: str) -> list[int]:
    """Processes of our private Ray whose working directory is trial ``key``'s (Ray Tune runs
    each trial in ``.../working_dirs/<trial name>``; our trial names are the keys)."""
    pids = []
    for pid in processes_under([ray_tmp]):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if Path(cwd).name == key:
            pids.append(pid)
    return pids


def run_dir_of(out: Path) -> Path:
    """The single run folder under ``out``."""
    (run_dir,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return run_dir


def ledger_keys(run_dir: Path) -> set[str]:
    return {p.stem for p in (run_dir / "ledger").glob("*.json")}


def results_by_key(run_dir: Path) -> dict[str, float]:
    """Test perplexity per trial key from ``results.parquet``."""
    import pandas as pd

    frame = pd.read_parquet(run_dir / "results.parquet")
    return dict(zip(frame["key"], frame["perplexity"], strict=True))


def one_error_line(stderr: str, prog: str = "python -m sweeps.grid") -> str:
    """The one line a failed command printed (no traceback)."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), stderr[-3000:]
    return lines[0]


def tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """The scalars of the event files in ``log_dir``, read back by TensorBoard's own reader
    (which drops what a resumed writer's ``purge_step`` superseded): tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def xfer(*argv: str, timeout: int = 120, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """The ``xfer`` console script as a subprocess."""
    return subprocess.run([XFER, *argv], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=grid_env())


# ---- a fork server: each bad-input row runs in its own fresh process (real exit status, real
# stderr, real uncaught-exception traceback) without paying for importing torch/pandas each time.

ENTRY_POINTS = {"xfer": "xfer.cli", "grid": "sweeps.grid"}


def _serve_one(request: dict) -> dict:
    """Fork; the child runs one command's ``main(argv)`` as the interpreter would run the script
    (uncaught exceptions print a traceback and exit 1); the parent collects its output."""
    import importlib
    import traceback

    out_path = Path(request["cwd"]) / ".fork-out"
    err_path = Path(request["cwd"]) / ".fork-err"
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.chdir(request["cwd"])
            out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(out, 1)
            os.dup2(err, 2)
            sys.argv = [request["entry"], *request["argv"]]
            module = importlib.import_module(ENTRY_POINTS[request["entry"]])
            try:
                code = module.main(request["argv"])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # noqa: BLE001 - exactly what the interpreter would print
                traceback.print_exc()
                code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(int(code or 0))
    _, status = os.waitpid(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    result = {"rc": rc, "stdout": out_path.read_text(errors="replace"),
              "stderr": err_path.read_text(errors="replace")}
    out_path.unlink(missing_ok=True)
    err_path.unlink(missing_ok=True)
    return result


def serve() -> None:
    """Read one JSON request per line on stdin, answer one JSON line per request on stdout."""
    import json

    import sweeps.grid  # noqa: F401 - preload what the commands import
    import xfer.cli  # noqa: F401
    for name in ("xfer.data.cli", "xfer.training.cli", "xfer.analysis.analyse",
                 "xfer.analysis.contamination", "xfer.analysis.similarity", "xfer.analysis.premium",
                 "sweeps.config",
                 "sweeps.dryrun", "xfer.model", "pandas"):
        __import__(name)
    for line in sys.stdin:
        print(json.dumps(_serve_one(json.loads(line))), flush=True)


class ForkServer:
    """Client of :func:`serve` running in a subprocess."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.faults_util"], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env or grid_env())

    def run(self, entry: str, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
        import json

        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"entry": entry, "argv": argv, "cwd": str(cwd)}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        return subprocess.CompletedProcess(argv, answer["rc"], answer["stdout"], answer["stderr"])

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


if __name__ == "__main__":
    serve()


def study_then_wait(argv: list[str], env: dict[str, str], wait_s: int) -> subprocess.Popen:
    """``python -m sweeps.grid ARGV`` in a driver that prints ``study done RC`` when the study
    ends and then stays up ``wait_s`` seconds (its Ray, dashboard included, with it)."""
    code = ("import sys, time; import sweeps.grid as g; rc = g.main(sys.argv[1:]); "
            f"print('study done', rc, flush=True); time.sleep({int(wait_s)})")
    return subprocess.Popen([sys.executable, "-c", code, *argv], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, text=True)


def lines_until_study_done(proc: subprocess.Popen) -> list[str]:
    """The driver's stdout lines (stripped) up to its ``study done RC`` line."""
    lines: list[str] = []
    while not (lines and lines[-1].startswith("study done")):
        line = proc.stdout.readline()
        assert line, f"the driver ended (rc {proc.wait()}) after: {lines}"
        lines.append(line.strip())
    return lines
