"""A tiny study run folder built by hand in well under a second (no Ray, no training): one
scratch trial with a 16-wide model, its ledger row, result and best checkpoint, a results table
the analysis accepts, config.json and a data manifest. The crafted-run-folder and CLI fuzz tests
copy it and break one thing at a time. The boundary's property tests (issue 28) also use the
contract below: on a hostile input a command exits 0, or exits 2 with one line; it never hangs,
writes nothing outside its ``--out`` and keeps memory bounded; outcomes are tallied per kind."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import torch
from hypothesis import strategies as st

from xfer.cli import main as xfer_main

KEY = "scratch-qt-1K-s0"  # the one language-model trial
SOURCE, TARGET = "qs", "qt"  # codes no lang2vec entry has: distances are skipped with a note
RUN_NAME = "study-0123456789"


def tiny_model_config() -> dict:
    """A ByteLM config of 16 dimensions, one layer (about 5k parameters)."""
    from xfer.model import ModelConfig

    return ModelConfig(name="t16", d_model=16, n_layers=1, n_heads=1, d_head=16,
                       d_ff=32).to_dict()


def results_table() -> pd.DataFrame:
    """Scratch and finetune rows of one target at three budgets (bytes), two seeds."""
    rows = []
    for seed in (0, 1):
        for budget, scratch, finetune in ((1000, 9.0, 8.0), (2000, 8.0, 7.5), (4000, 7.0, 6.8)):
            for kind, init, source, ppl in (("scratch", "scratch", None, scratch),
                                            ("finetune", SOURCE, SOURCE, finetune)):
                rows.append({"kind": kind, "init": init, "source": source, "target": TARGET,
                             "budget": budget, "seed": seed, "perplexity": ppl + 0.1 * seed,
                             "dev_perplexity": ppl + 0.1 * seed,
                             "key": f"{kind}-{init}-{TARGET}-{budget}-s{seed}"})
    return pd.DataFrame(rows)


def make_run_folder(parent: Path) -> Path:
    """``parent/study-0123456789``: a run folder ``xfer export``, ``xfer generate`` (its trial
    folder) and ``xfer analyse`` accept as it is."""
    from xfer.model import ByteLM, ModelConfig
    from xfer.training.checkpoint import save_checkpoint
    from xfer.training.config import TrainConfig

    run = parent / RUN_NAME
    torch.manual_seed(0)
    model = ByteLM(ModelConfig.from_dict(tiny_model_config()))
    train = TrainConfig(kind="scratch", seq_len=16, batch_size=2, micro_batch_size=2).to_dict()
    trial = run / "trials" / KEY
    save_checkpoint(trial / "best", model, {"model": model.cfg.to_dict(), "train": train,
                                            "lang": TARGET, "state": {"best_step": 3},
                                            "init": None})
    result = {"test_perplexity": 9.5, "test_bits_per_byte": 3.2, "dev_perplexity": 9.4,
              "dev_bits_per_byte": 3.2, "bytes_seen": 96, "steps": 3}
    (trial / "result.json").write_text(json.dumps(result))
    (run / "ledger").mkdir()
    row = {"kind": "scratch", "init": "scratch", "source": None, "target": TARGET,
           "budget": 1000, "seed": 0, "key": KEY}
    (run / "ledger" / f"{KEY}.json").write_text(json.dumps(row))
    study = {"name": "study", "corpus": str(parent), "languages": {
        "sources": [SOURCE], "targets": [TARGET], "extra_pairs": []}, "analysis": {}}
    (run / "config.json").write_text(json.dumps(study))
    (run / "data" / TARGET).mkdir(parents=True)
    (run / "data" / TARGET / "manifest.json").write_text("{}")
    (run / "commands.txt").write_text("2026-12-04T00:00:00\t/tmp\tpython -m sweeps.grid\n")
    results_table().to_parquet(run / "results.parquet", index=False)
    return run


def copy_run(template: Path, parent: Path) -> Path:
    """A copy of the template run folder under ``parent`` (same folder name)."""
    return Path(shutil.copytree(template, parent / template.name, symlinks=True))


def xfer(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    """``xfer ARGV`` in this process: exit status, stdout, stderr."""
    capsys.readouterr()
    try:
        rc = xfer_main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` (symlinks not followed) -> (kind, size, mtime_ns)."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
        out[str(path.relative_to(root))] = (kind, st.st_size if kind == "file" else 0,
                                            st.st_mtime_ns if kind == "file" else 0)
    return out


# ---- the boundary's contract (issue 28) ----
TALLY: dict[str, Counter] = defaultdict(Counter)  # kind of input -> outcome -> cases
MAX_RSS_GROWTH = 1 << 30  # bytes the test process's peak memory may grow over one module
COMMAND_SECONDS = 30  # a command on a hostile input taking longer than this is a hang


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so no handler of the command swallows it."""


@contextmanager
def deadline(seconds: int = COMMAND_SECONDS) -> Iterator[None]:
    """Fail with :class:`Hang` when the block runs longer than ``seconds``."""
    def on_alarm(*_: object) -> None:
        raise Hang(f"no answer within {seconds} s (a hang)")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def peak_rss() -> int:
    """This process's peak resident memory so far (bytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_contract(capsys: pytest.CaptureFixture, root: Path, kind: str, *argv: object,
                 outs: str = "outs") -> tuple[int, str]:
    """Run ``xfer ARGV`` in this process under the contract; tally the outcome under
    ``kind``; (exit status, the error line or stdout)."""
    before = snapshot(root)
    with deadline():
        rc, out, err = xfer(capsys, *argv)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err + out, err[-2000:]
    changed = {k for k, v in snapshot(root).items() if before.get(k) != v}
    if rc == 0:
        assert all(k.startswith(outs) for k in changed), f"written outside --out: {changed}"
        TALLY[kind]["valid result (exit 0)"] += 1
        return rc, out
    assert rc == 2, (rc, err[-500:])
    assert len(lines) == 1, err[-2000:]
    assert lines[0].startswith(f"xfer {argv[0]}: error: "), lines[0]
    assert not changed, f"a refused input left files: {changed}"
    TALLY[kind]["one line, exit 2"] += 1
    return rc, lines[0]


RAW = "@@raw@@"  # a placeholder replaced by a raw JSON token after json.dumps
RAW_TOKENS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "9" * 5000, "1e-999",
              "[" * 100_000 + "]" * 100_000, "2e308", "18446744073709551616"]
hostile_values = st.one_of(
    st.sampled_from([None, True, False, -5, -1, 0, 2**63, 2**64, 10**30, 1.5, -0.0, "",
                     "../../evil", "/etc/passwd", "a/b", "..", ".", "abc", [], {}, [[[]]],
                     {"a": {"b": {}}}, "x" * 300]),
    st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10),
    st.sampled_from(RAW_TOKENS).map(lambda t: (RAW, t)))


def leaf_paths(data: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a parsed JSON document (mappings and lists), the root excluded."""
    paths = []
    items = data.items() if isinstance(data, dict) else enumerate(data) \
        if isinstance(data, list) else []
    for key, value in items:
        paths.append((*prefix, key))
        paths.extend(leaf_paths(value, (*prefix, key)))
    return paths


def mutate_json(text: str, path_index: int, value: object, delete: bool) -> str:
    """``text`` (a JSON document) with the value at one key path replaced by ``value`` (or
    the key deleted); a ``(RAW, token)`` value is written as the raw token."""
    data = json.loads(text)
    paths = leaf_paths(data)
    if not paths:
        return json.dumps(value if not isinstance(value, tuple) else RAW)
    path = paths[path_index % len(paths)]
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = RAW if isinstance(value, tuple) else value
    out = json.dumps(data)
    if isinstance(value, tuple):
        out = out.replace(json.dumps(RAW), value[1], 1)
    return out


def table_lines() -> list[str]:
    """The tally as a Markdown table: kind, generated cases, outcomes."""
    rows = ["| kind of input | generated cases | outcomes |", "|---|---:|---|"]
    for kind in sorted(TALLY):
        counts = TALLY[kind]
        outcomes = "; ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        rows.append(f"| {kind} | {sum(counts.values())} | {outcomes} |")
    return rows


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


SPECIALS = ["fifo", "folder", "device", "link out", "dangling link", "sparse 1 TiB",
            "truncated", "empty"]


def make_special(path: Path, special: str, outside: Path) -> None:
    """Replace ``path`` (a file, or nothing) by a special file of kind ``special``
    (:data:`SPECIALS`); links out point into ``outside``."""
    old = path.read_bytes() if path.is_file() else b""
    path.unlink(missing_ok=True)
    if special == "fifo":
        os.mkfifo(path)
    elif special == "folder":
        path.mkdir()
    elif special == "device":
        path.symlink_to("/dev/zero")
    elif special == "link out":
        target = outside / f"{path.name}.outside"
        target.write_bytes(old)
        path.symlink_to(target)
    elif special == "dangling link":
        path.symlink_to(outside / "missing")
    elif special == "sparse 1 TiB":
        with open(path, "wb") as fh:
            fh.write(old[:64])
            fh.truncate(1 << 40)
    elif special == "truncated":
        path.write_bytes(old[: len(old) // 2])
    elif special == "empty":
        path.write_bytes(b"")
