"""Driver-side Tune callback: records finished trials in the ledger and prints study progress
(trials done/total, bytes trained/total, ETA). The same progress goes to a named Ray actor,
``xfer-progress-<run folder name>`` (:class:`ProgressBoard`), so that the Ray dashboard shows it:
each update is a task of that actor named after the progress line and the keys of the running
trials (the dashboard's task list; state API ``/api/v0/tasks``), also printed to its log, and its
state (``get``) holds the counts and the ETA."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from ray.tune import Callback, Stopper

from sweeps.eta import TrialClass, eta_seconds
from sweeps.ledger import Ledger, make_row
from sweeps.log import log
from sweeps.trials import TrialSpec


def checkpoint_uri(checkpoint: object | None) -> str | None:
    """A URI for a persisted ``tune.Checkpoint``: a local path, or ``scheme://path``."""
    if checkpoint is None:
        return None
    path = str(checkpoint.path)
    fs = getattr(checkpoint, "filesystem", None)
    scheme = getattr(fs, "type_name", "local") if fs is not None else "local"
    return path if scheme == "local" or "://" in path else f"{scheme}://{path}"


def last_error_line(trial: object) -> str:
    """The last non-empty line of a failed trial's error (the exception itself)."""
    try:
        text = Path(trial.error_file).read_text() if trial.error_file else ""
    except OSError:
        text = ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "failed"


def format_duration(seconds: float) -> str:
    """``1h02m``, ``4m05s`` or ``12s``."""
    s = int(round(max(0.0, seconds)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def format_bytes(n: float) -> str:
    """Decimal kB/MB/GB for progress lines."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


BOARD_PREFIX = "xfer-progress-"


class ProgressBoard:
    """The study's progress where the dashboard sees it: a Ray actor (no CPU) named
    ``xfer-progress-<run folder name>`` whose repr names the study, whose log (the dashboard's
    actor logs) gets one line per update, and whose :meth:`get` returns the latest state."""

    def __init__(self, study: str) -> None:
        self.study = study
        self.state: dict = {"study": study}

    def update(self, state: dict) -> None:
        """Keep ``state`` (trials done, running, total, ETA seconds, running keys, line) and log
        its line."""
        self.state = {"study": self.study, **state}
        running = ", ".join(state.get("running_keys", [])) or "none"
        print(f"[xfer] {state.get('line', '')} | running: {running}", flush=True)

    def get(self) -> dict:
        """The latest state."""
        return self.state

    def __repr__(self) -> str:
        return f"xfer study {self.study}"


def start_board(study: str) -> object | None:
    """The study's :class:`ProgressBoard` actor (replacing one of the same name left by an
    earlier driver), or None when Ray is not running or refuses it (progress then stays on the
    terminal only)."""
    try:
        import ray

        if not ray.is_initialized():
            return None
        name = BOARD_PREFIX + study
        try:
            ray.kill(ray.get_actor(name))
        except ValueError:
            pass
        return ray.remote(num_cpus=0)(ProgressBoard).options(name=name).remote(study)
    except Exception:  # noqa: BLE001 - the board is optional
        return None


class StudyProgress(Callback):
    """Writes each completed trial to the ledger and prints a progress line.

    Args:
        ledger: the run folder's ledger (finished trials, shared with the searcher).
        planned: key -> bytes the trial will train on (budget x epochs), for every trial.
        classes: key -> the trial's cost class, whose finished trials time the others
            (:mod:`sweeps.eta`).
        slots: trials that run at once.
        every_s: print a progress line at least this often while trials run.
    """

    def __init__(self, ledger: Ledger, planned: dict[str, int],
                 classes: dict[str, TrialClass], slots: int, every_s: float = 30.0) -> None:
        self.ledger, self.planned, self.every_s = ledger, planned, every_s
        self.classes, self.slots = classes, slots
        self.started: dict[str, float] = {}  # key -> when its current attempt started
        self.start = time.time()
        self.live_bytes: dict[str, float] = {}
        self.last_print = 0.0
        self.running = 0
        self.errors: dict[str, str] = {}  # key -> last line of its error
        self.failures = 0  # trial attempts that failed, retried or not
        self.board: object | None = None
        self.board_started = False

    def _bytes_done(self) -> float:
        done = sum(self.planned.get(k, 0) for k in self.ledger.rows)
        return done + sum(v for k, v in self.live_bytes.items() if k not in self.ledger.rows)

    def line(self) -> str:
        """One progress line."""
        total_trials = len(self.planned)
        done_trials = sum(1 for k in self.planned if k in self.ledger.rows)
        done_bytes = self._bytes_done()
        total_bytes = sum(self.planned.values())
        now = time.time()
        elapsed = now - self.start
        left = eta_seconds(self.planned, self.classes, self.ledger.rows, self.started, now,
                           self.slots)
        eta = "?" if left is None else format_duration(left)
        return (f"trials {done_trials}/{total_trials} done, {self.running} running"
                f" | bytes {format_bytes(done_bytes)}/{format_bytes(total_bytes)}"
                f" | elapsed {format_duration(elapsed)} | ETA {eta}")

    def _print(self) -> None:
        self.last_print = time.time()
        line = self.line()
        log.info(line)
        self._post(line)

    def _post(self, line: str) -> None:
        """Send the progress to the dashboard's :class:`ProgressBoard` (started on first use)."""
        if not self.board_started:
            self.board_started = True
            self.board = start_board(self.ledger.dir.parent.name)
        if self.board is None:
            return
        left = eta_seconds(self.planned, self.classes, self.ledger.rows, self.started,
                           time.time(), self.slots)
        state = {"done": sum(1 for k in self.planned if k in self.ledger.rows),
                 "running": self.running, "total": len(self.planned), "eta_s": left,
                 "elapsed_s": time.time() - self.start, "running_keys": sorted(self.started),
                 "failures": self.failures, "line": line}
        running = ", ".join(state["running_keys"]) or "none"
        try:  # the task's name is the line: the dashboard's task list shows it
            self.board.update.options(name=f"{line} | running: {running}").remote(state)
        except Exception:  # noqa: BLE001 - the board is optional
            self.board = None

    def on_trial_start(self, iteration: int, trials: list, trial: object, **info: object) -> None:
        self.started[trial.config["trial"]["key"]] = time.time()
        self.running = sum(1 for t in trials if t.status == "RUNNING")
        self._post(self.line())

    def on_trial_result(self, iteration: int, trials: list, trial: object, result: dict,
                        **info: object) -> None:
        key = trial.config["trial"]["key"]
        seen = float(result.get("bytes_seen", 0) or 0)
        self.live_bytes[key] = min(seen, self.planned.get(key, seen))

    def on_trial_complete(self, iteration: int, trials: list, trial: object,
                          **info: object) -> None:
        key = trial.config["trial"]["key"]
        self.live_bytes.pop(key, None)
        self.started.pop(key, None)
        if key not in self.ledger and trial.last_result.get("final") == 1:
            spec = TrialSpec.from_dict(trial.config["trial"])
            best = checkpoint_uri(trial.checkpoint) or trial.last_result.get("best_checkpoint")
            self.ledger.record(make_row(spec, trial.last_result, best))
            self._print()

    def on_trial_recover(self, iteration: int, trials: list, trial: object,
                         **info: object) -> None:
        self.failures += 1

    def on_trial_error(self, iteration: int, trials: list, trial: object,
                       **info: object) -> None:
        self.failures += 1
        key = trial.config["trial"]["key"]
        self.live_bytes.pop(key, None)
        self.started.pop(key, None)
        self.errors[key] = last_error_line(trial)
        log.info("trial %s failed (retries exhausted): %s; details in %s", key, self.errors[key],
                 trial.error_file or trial.path)

    def on_step_end(self, iteration: int, trials: list, **info: object) -> None:
        self.running = sum(1 for t in trials if t.status == "RUNNING")
        if self.started and time.time() - self.last_print >= self.every_s:
            self._print()


class DiskFullStop(Stopper):
    """Ends the experiment once a trial has failed while the run folder's disk has less than
    ``low_bytes`` free: every retry would fail on its next write, each after starting a
    worker; the driver then names the full disk in one line (rerun once there is room)."""

    def __init__(self, progress: StudyProgress, folder: Path, low_bytes: int) -> None:
        self.progress, self.folder, self.low_bytes = progress, folder, low_bytes

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return bool(self.progress.failures) and self.full()

    def full(self) -> bool:
        """Whether the run folder's disk has less than ``low_bytes`` free."""
        return shutil.disk_usage(self.folder).free < self.low_bytes
