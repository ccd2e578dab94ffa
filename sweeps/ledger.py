"""The run folder's record of finished trials, and the results table built from it.

A trial counts as finished exactly when ``<run>/ledger/<key>.json`` exists; each is written
atomically (temp name, then rename) by the driver when Tune reports the trial complete, so a
killed driver never loses a finished trial and never sees a half-written one. An entry whose
name is not a valid trial key (``xfer.schema.NAME_PATTERN``), whose ``key`` is not its name, or
whose kind, budget or seed is out of range (:func:`valid_row`) is not a finished trial: it runs
again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sweeps.trials import TrialSpec
from xfer.boundary import list_names, read_json
from xfer.errors import XferError
from xfer.io import atomic_write, atomic_write_bytes
from xfer.kinds import Kind
from xfer.schema import NAME_PATTERN, check_name

# Columns of the results table, in order (one row per trial).
COLUMNS = ["kind", "init", "source", "target", "budget", "seed", "perplexity", "dev_perplexity",
           "bits_per_byte", "dev_bits_per_byte", "bytes_seen", "steps", "stopped_early", "wall_s",
           "checkpoint", "key", "node", "started_at", "ended_at", "lr"]
# Columns of the downstream table (one row per downstream trial; accuracy 0..1).
DOWNSTREAM_COLUMNS = ["kind", "init", "source", "target", "seed", "accuracy", "accuracy_before",
                      "best_epoch", "steps", "wall_s", "checkpoint", "key", "node", "started_at",
                      "ended_at"]


def make_row(trial: TrialSpec, metrics: dict, checkpoint: str | None) -> dict:
    """A results-table row from a trial and its final metrics (see :data:`COLUMNS`)."""
    if trial.kind == Kind.DOWNSTREAM:
        return {"kind": trial.kind, "init": trial.init, "source": trial.source,
                "target": trial.lang, "budget": 0, "seed": int(trial.seed),
                "accuracy": metrics.get("accuracy"),
                "accuracy_before": metrics.get("accuracy_before"),
                "best_epoch": metrics.get("best_epoch"), "steps": metrics.get("steps"),
                "wall_s": metrics.get("wall_s"), "checkpoint": checkpoint, "key": trial.key,
                "node": metrics.get("node_id"), "started_at": metrics.get("started_at"),
                "ended_at": metrics.get("ended_at")}
    return {
        "kind": trial.kind, "init": trial.init,
        "source": trial.source if trial.kind == Kind.FINETUNE else
        (trial.lang if trial.kind == Kind.PRETRAIN else None),
        "target": trial.lang, "budget": int(trial.budget), "seed": int(trial.seed),
        "perplexity": metrics.get("test_perplexity"),
        "dev_perplexity": metrics.get("dev_perplexity"),
        "bits_per_byte": metrics.get("test_bits_per_byte"),
        "dev_bits_per_byte": metrics.get("dev_bits_per_byte"),
        "bytes_seen": metrics.get("bytes_seen"), "steps": metrics.get("steps"),
        "stopped_early": metrics.get("stopped_early"),  # False: ran to its step cap or epochs
        "wall_s": metrics.get("wall_s"), "checkpoint": checkpoint, "key": trial.key,
        "node": metrics.get("node_id"),
        "started_at": metrics.get("started_at"), "ended_at": metrics.get("ended_at"),
        "lr": trial.lr,
    }


def valid_row(row: object, key: str) -> bool:
    """Whether ``row`` (a ledger file's JSON) can stand for finished trial ``key``: its key, a
    known kind, budget and seed integers from 0 to 2**63-1, a checkpoint string or null."""
    if not isinstance(row, dict) or row.get("key") != key or row.get("kind") not in set(Kind):
        return False
    counts = [row.get("budget"), row.get("seed")]
    names = [row.get("source"), row.get("target")]
    return all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63
               for v in counts) and isinstance(row.get("checkpoint"), str | None) and all(
        v is None or (isinstance(v, str) and NAME_PATTERN.fullmatch(v)) for v in names)


class Ledger:
    """Finished trials of one run folder: ``key -> row``."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir / "ledger"
        self.rows: dict[str, dict] = {}
        self.checkpoint_of: dict[str, str] = {}  # key -> checkpoint URI (the searcher reads it)
        if self.dir.is_dir() and not self.dir.is_symlink():
            for key in list_names(self.dir, "ledger", ".json"):
                try:  # a regular file within its size, depth and number limits
                    row = read_json(self.dir / f"{key}.json", finite=False)  # NaN metrics
                except XferError:
                    continue  # unreadable entry: the trial simply runs again
                if valid_row(row, key):
                    self._add(row)

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def record(self, row: dict) -> None:
        """Add one finished trial (atomically on disk, then in memory)."""
        atomic_write_bytes(self.dir / f"{check_name(row['key'], 'trial key')}.json",
                           json.dumps(row, indent=1, default=str).encode())
        self._add(row)

    def _add(self, row: dict) -> None:
        self.rows[row["key"]] = row
        if row.get("checkpoint"):
            self.checkpoint_of[row["key"]] = row["checkpoint"]

    def table(self) -> pd.DataFrame:
        """The results table (one row per finished training trial, :data:`COLUMNS`)."""
        rows = [self.rows[k] for k in sorted(self.rows) if self.rows[k].get("kind") !=
                Kind.DOWNSTREAM]
        frame = pd.DataFrame(rows, columns=COLUMNS)
        return frame.astype({"budget": "int64", "seed": "int64"})

    def downstream_rows(self) -> list[dict]:
        """Finished downstream trials (their own table: accuracy, not perplexity)."""
        return [self.rows[k] for k in sorted(self.rows) if self.rows[k].get("kind") ==
                Kind.DOWNSTREAM]


def write_results(frame: pd.DataFrame, path: Path) -> Path:
    """Save the results table as Parquet atomically."""
    if frame.empty:
        raise XferError("no trial finished: nothing to write to the results table")
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    return path
