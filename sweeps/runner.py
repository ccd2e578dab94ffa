"""The driver: run folder, Ray, data preparation tasks, the Tune experiment, results, report.

One run folder per config hash (``<output>/<name>-<hash>``) holds the prepared data, each trial's
working folder, the ledger of finished trials, Ray Tune's experiment folders (one per attempt),
``results.parquet`` and the report. The same command run again resumes: finished trials (in the
ledger) are not run again; unfinished ones find their last checkpoint in their working folder.
"""

from __future__ import annotations

import fcntl
import functools
import json
import math
import os
import pickle
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sweeps.config import StudyConfig
from sweeps.estimate import study_planned_bytes
from sweeps.ledger import Ledger
from sweeps.log import log, show_progress
from sweeps.trials import TrialSpec, build_trials, language_budgets
from xfer.errors import XferError
from xfer.io import atomic_write_bytes
from xfer.training.config import Kind

LOW_DISK_BYTES = 16 * 2**20  # below this much free space a failure is blamed on the disk


@dataclass(frozen=True)
class RunOptions:
    """Command-line choices that do not change results."""

    address: str | None = None
    output: str | None = None
    storage: str | None = None
    max_concurrent: int | None = None
    num_cpus: int | None = None
    dashboard: bool = True
    verbose: int = 0
    command: str | None = None  # the command line, recorded in <run folder>/commands.txt


def run_folder(study: StudyConfig, output: str | None) -> Path:
    """``<output>/<name>-<config hash>``, absolute (Ray workers have other working dirs)."""
    parent = Path(output or study.run.output).expanduser().resolve()
    return parent / f"{study.name}-{study.digest()}"


@contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock: a second driver on the same folder is refused."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise XferError(f"another sweep is running in {run_dir} (its lock is held)") from None
        yield


def save_config(study: StudyConfig, run_dir: Path) -> None:
    """Write the study config into the run folder. The hash in the name pins all but the
    options outside it (the analysis section): those are the latest run's."""
    data = json.dumps(study.to_dict(), indent=1).encode()
    path = run_dir / "config.json"
    if not path.exists() or path.read_bytes() != data:
        atomic_write_bytes(path, data)


COMMANDS_FILE = "commands.txt"


def record_command(run_dir: Path, command: str | None) -> None:
    """Add one line (UTC time, working folder, command) to ``<run>/commands.txt`` (rewritten
    atomically): the first line is the command that started the study, later ones resumed it."""
    if not command:
        return
    path = run_dir / COMMANDS_FILE
    old = path.read_bytes() if path.is_file() else b""
    line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\t{os.getcwd()}\t{command}\n"
    atomic_write_bytes(path, old + line.encode())


def _corpus(study: StudyConfig) -> str:
    """The corpus argument for ``xfer.data.prepare``: a folder made absolute, or a name."""
    path = Path(study.corpus).expanduser()
    return str(path.resolve()) if path.is_dir() else study.corpus


class DataPrep:
    """Data preparation as Ray tasks, one per language; ``ready(lang)`` polls without waiting."""

    def __init__(self, study: StudyConfig, budgets: dict[str, list[int]], root: Path) -> None:
        import ray

        from xfer.data import prepare

        task = ray.remote(num_cpus=1)(prepare)
        self.refs = {lang: task.remote(_corpus(study), [lang], b, study.data.dev_bytes,
                                       study.data.test_bytes, study.data.seed, root)
                     for lang, b in budgets.items()}
        self.done: set[str] = set()

    def ready(self, lang: str) -> bool:
        """True once ``lang`` is prepared; raises the task's error if it failed."""
        import ray

        if lang in self.done:
            return True
        finished, _ = ray.wait([self.refs[lang]], timeout=0)
        if not finished:
            return False
        try:
            ray.get(finished[0])
        except ray.exceptions.RayError as exc:  # the task raised, or its worker died
            cause = getattr(exc, "cause", None)
            cause = cause if isinstance(cause, Exception) else exc
            raise XferError(f"{lang}: {cause}") from None
        self.done.add(lang)
        return True


LOOPBACK = "127.0.0.1"


def system_temp() -> Path:
    """The folder Ray's temp folder goes in, found as Ray finds it (Linux): ``RAY_TMPDIR``,
    else ``TMPDIR``, else /tmp."""
    return Path(os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp")


def private_temp_dir() -> Path:
    """Ray's temp folder for a local instance: ``<RAY_TMPDIR or the system temp
    folder>/xfer-ray-<uid>/ray``. Ray makes every folder it creates mode 0777; the parent
    ``xfer-ray-<uid>`` is the user's alone (0700), so no other user reaches the sessions, logs or
    sockets inside (Ray sets 0777 again on folders it reuses: a mode set on them would not
    last). A parent owned by someone else (or a symlink) is refused."""
    import stat

    parent = system_temp() / f"xfer-ray-{os.getuid()}"
    try:
        parent.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    info = os.lstat(parent)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise XferError(f"{parent} is not a folder of yours: remove it (or set RAY_TMPDIR)")
    if info.st_mode & 0o077:
        os.chmod(parent, 0o700)
    return parent / "ray"


def _single_node() -> None:
    """Make Ray take 127.0.0.1 as this node's address, so that every server of a local
    instance (GCS, raylet, workers, agents, metrics exporters) binds to loopback only: Ray
    binds to the node's address, and its single-node mode (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``,
    the default on Windows and macOS) is what makes that 127.0.0.1. The variable is read when
    Ray is imported (and by Ray's own processes, which inherit it); a process that imported
    Ray before (a test) gets the constant set too."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False


def start_ray(opts: RunOptions, token_file: Path | None = None) -> None:
    """Connect to ``opts.address`` or start a local Ray on 127.0.0.1 only (every port on
    loopback, its temp folder private to the user, dashboard on 127.0.0.1, stats off); for a
    local one, print the dashboard's URL and where its token is."""
    import logging

    if not opts.address:
        _single_node()  # before Ray is imported
    import ray

    if opts.verbose == 0:  # failed trials are reported in one line each by StudyProgress
        logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
        logging.getLogger("ray.train").setLevel(logging.ERROR)
        # nor again by Ray, for the results of trials a stopped experiment never collected
        os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Checkpoints are reported at every evaluation; Tune's snapshot warning is noise here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    level = logging.WARNING if opts.verbose else logging.ERROR
    common = {"configure_logging": True, "logging_level": level,
              "ignore_reinit_error": True, "log_to_driver": opts.verbose >= 2}
    if opts.address:
        ray.init(address=cluster_address(opts.address), **common)
        return
    started = not ray.is_initialized()
    context = ray.init(num_cpus=opts.num_cpus, include_dashboard=opts.dashboard,
                       dashboard_host=LOOPBACK, _node_ip_address=LOOPBACK,
                       _temp_dir=str(private_temp_dir()), **common)
    if started:
        info = context.address_info
        if info.get("node_ip_address") != LOOPBACK:
            ray.shutdown()
            raise XferError(f"the local Ray took {info.get('node_ip_address')} as its address, "
                            f"not {LOOPBACK}; refusing to listen beyond loopback")
    if opts.dashboard and context.dashboard_url and token_file is not None:
        log.info(f"dashboard http://{context.dashboard_url} (sign in with the token in "
              f"{token_file}); for the ray CLI: export RAY_AUTH_MODE=token "
              f"RAY_AUTH_TOKEN_PATH={token_file}")


TOKEN_FILE = "ray_auth_token"


def local_token_auth(run_dir: Path) -> Path | None:
    """Ray's gRPC servers listen on every interface, whatever the node address: a local
    instance therefore requires a token made for it (unless the user chose an auth mode).
    The token goes to ``<run_dir>/ray_auth_token``, readable by the user only (mode 0600), and
    Ray (and the ``ray`` CLI, given ``RAY_AUTH_TOKEN_PATH``) reads it from there. Must run
    before ``ray`` is imported (Ray reads the mode once). Returns the file, or None when the
    user chose an auth mode."""
    if "RAY_AUTH_MODE" in os.environ:
        return None
    import secrets

    path = run_dir / TOKEN_FILE
    atomic_write_bytes(path, secrets.token_hex(16).encode(), mode=0o600)
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)
    os.environ.pop("RAY_AUTH_TOKEN", None)  # it would take precedence over the file
    return path


def cluster_address(address: str) -> str:
    """``auto`` as the cluster to join: ``RAY_ADDRESS`` (set for a ``ray job submit`` driver),
    else the address ``ray start``/``ray up`` recorded on this machine
    (``<RAY_TMPDIR or /tmp/ray>/ray_current_cluster``); other addresses are returned as given.
    Unlike Ray's own ``auto`` it never joins a Ray found only by its processes (another user's
    local study)."""
    if address != "auto":
        return address
    found = os.environ.get("RAY_ADDRESS") or _recorded_address()
    if not found or found == "auto":
        raise XferError("--address auto: no Ray cluster is running on this machine (start one "
                        "with `ray start --head` or `ray up`, or give --address HOST:PORT)")
    return found


def _recorded_address() -> str | None:
    """The GCS address ``ray start`` wrote into Ray's temp folder, or None."""
    try:
        return (system_temp() / "ray" / "ray_current_cluster").read_text().strip() or None
    except OSError:
        return None


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail in one line when no cluster is found (``auto``) or nothing listens at its
    ``host:port`` (Ray itself retries for minutes, printing each try); ``ray://...`` is left
    to Ray.
    ``timeout_s``: seconds to wait for the TCP connection."""
    import socket

    resolved = cluster_address(address)
    host, sep, port = resolved.rpartition(":")
    if not sep or not port.isdigit() or "/" in host or not host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        shown = address if resolved == address else f"{address} ({resolved})"
        raise XferError(f"no Ray cluster at {shown}: {why}") from None


def concurrency(study: StudyConfig, opts: RunOptions) -> int:
    """Trials at once: the option, the config, else what the cluster's CPUs/GPUs/TPUs fit."""
    import ray

    if opts.max_concurrent or study.resources.max_concurrent:
        return max(1, opts.max_concurrent or study.resources.max_concurrent)
    have = ray.cluster_resources()
    need = study.resources.per_trial()  # all of a trial's workers
    fits = [have.get(key, 0) / n for key, n in need.items() if n]
    return max(1, math.floor(min(fits))) if fits else 1


def run_trials(study: StudyConfig, run_dir: Path, ledger: Ledger, trials: list[TrialSpec],
               todo: list[TrialSpec], opts: RunOptions,
               token_file: Path | None = None) -> tuple[dict[str, str], int]:
    """Run ``todo`` (of the study's ``trials``) as one Tune experiment; returns the keys of
    trials that failed and the number of trials that could run at once."""
    from ray import tune
    from ray.tune.error import TuneError

    from sweeps.progress import DiskFullStop, StudyProgress
    from sweeps.searcher import DependencySearcher
    from sweeps.trainable import train_trial, trial_placement

    downstream = None
    if study.downstream is not None and any(t.kind == Kind.DOWNSTREAM for t in todo):
        # the task, built once here
        downstream = study.downstream.resolved(run_dir).to_dict()
    start_ray(opts, token_file)
    data = DataPrep(study, language_budgets(study, trials), run_dir / "data")
    max_conc = concurrency(study, opts)
    # Tune allows one pending trial with a custom searcher; ours releases only ready trials,
    # up to max_conc at once, so let Tune start them all.
    os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(max_conc)
    searcher = DependencySearcher(
        todo, ledger.checkpoint_of,
        make_config=lambda t, ckpt: {"trial": t.to_dict(), "init_checkpoint": ckpt},
        data_ready=data.ready, max_concurrent=max_conc, finished=ledger.rows)
    progress = StudyProgress(ledger, {t.key: study_planned_bytes(study, t) for t in trials},
                             {t.key: t.cost_class for t in trials}, max_conc)
    disk = DiskFullStop(progress, run_dir, LOW_DISK_BYTES)
    name_of = lambda trial: trial.config["trial"]["key"]  # noqa: E731
    storage = opts.storage or study.run.storage or str(run_dir / "tune")
    tuner = tune.Tuner(
        tune.with_resources(train_trial, functools.partial(trial_placement, study.resources)),
        param_space={"study": study.to_dict(), "run_dir": str(run_dir),
                     "downstream": downstream, "tune_checkpoints": "://" in storage},
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1, reuse_actors=True,
                                    trial_name_creator=name_of, trial_dirname_creator=name_of),
        run_config=tune.RunConfig(
            name=time.strftime("attempt-%Y%m%d-%H%M%S"),
            storage_path=storage,
            failure_config=tune.FailureConfig(max_failures=study.run.max_failures),
            stop=disk,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[progress], verbose=opts.verbose))
    log.info(f"{len(todo)} trials to run, up to {max_conc} at once")
    failed: dict[str, str] = {}
    try:
        tuner.fit()
    except (OSError, EOFError, pickle.UnpicklingError, UnicodeDecodeError, TuneError) as exc:
        # Tune's own files failed (disk full; a torn error file it unpickles when it builds its
        # results): when trials failed too, or the disk is full, they are the report; anything
        # else (a bug) raises as it is
        if not (searcher.failed or progress.errors or disk.full()):
            raise
        failed["(ray tune)"] = f"{type(exc).__name__}: {exc}"
    failed.update(searcher.failed)
    failed.update(progress.errors)
    for trial in todo:  # ended by DiskFullStop (else each is in the ledger or failed)
        if trial.key not in ledger and trial.key not in failed:
            failed[trial.key] = ("stopped: the run folder's disk is full" if disk.full() else
                                 "not finished")
    for key, why in sorted(failed.items()):
        log.info(f"not finished: {key}: {why}")
    return failed, max_conc


def run_study(study: StudyConfig, opts: RunOptions) -> int:
    """Run (or resume) the whole study and write its report; returns the exit status."""
    show_progress()
    started = time.time()
    run_dir = run_folder(study, opts.output)
    if opts.address:
        check_address(opts.address)  # before the run folder is made
    with locked(run_dir):
        save_config(study, run_dir)
        record_command(run_dir, opts.command)
        ledger = Ledger(run_dir)
        trials = build_trials(study)
        todo = [t for t in trials if t.key not in ledger]
        log.info(f"run folder {run_dir}")
        log.info(f"{len(trials) - len(todo)}/{len(trials)} trials already finished")
        failed: dict[str, str] = {}
        slots = 1
        if todo:
            token_file = None if opts.address else local_token_auth(run_dir)
            failed, slots = run_trials(study, run_dir, ledger, trials, todo, opts, token_file)
        from sweeps.results import finish

        try:
            if ledger.rows:
                finish(study, run_dir, ledger, started, slots)
        except XferError:
            if not failed:
                raise
    if failed:
        raise XferError(failure_summary(failed, run_dir))
    return 0


def failure_summary(failed: dict[str, str], run_dir: Path) -> str:
    """One line for trials that did not finish, naming a full disk when that is the cause."""
    causes = {k: w for k, w in failed.items() if not w.startswith("skipped")} or failed
    key = min(causes)
    why = causes[key]
    free = shutil.disk_usage(run_dir).free
    disk = (f"; No space left on device: {run_dir} has {free:,} bytes free"
            if free < LOW_DISK_BYTES else "")
    return (f"{len(failed)} trials did not finish (first: {key}: {why}){disk}; "
            f"run the same command again to continue")
