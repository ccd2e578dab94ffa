"""Driver-side Tune callback: records finished trials in the ledger and prints study progress
(trials done/total, bytes trained/total, ETA)."""

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
        log.info(self.line())

    def on_trial_start(self, iteration: int, trials: list, trial: object, **info: object) -> None:
        self.started[trial.config["trial"]["key"]] = time.time()

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
