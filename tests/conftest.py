"""Shared test fixtures."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_corpus() -> Path:
    """The real multilingual text bundled in the package, shared by the tests (``xfer/data/
    corpus``: ``text/<code>.txt.gz`` and ``parallel/flores200/<code>.txt``)."""
    from xfer.data.corpora import bundled_corpus, bundled_parallel

    root = bundled_corpus().parent
    assert bundled_parallel().parent.parent == root
    return root


@dataclass(frozen=True)
class TinyRun:
    """A finished tiny study: its config file, output parent, run folder and first run."""

    config: Path
    out: Path
    run_dir: Path
    first: subprocess.CompletedProcess


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """One real tiny study (``faults_util.TINYRUN``: 3 languages, 15 trials) through
    ``python -m sweeps.grid`` on local Ray, run once per session. test_sweep_run checks it and
    then interrupts and resumes one trial (leaving the folder equivalent); test_export exports
    and samples its models and reads its TensorBoard files."""
    from tests.faults_util import TINYRUN, run_grid, write_yaml

    tmp = tmp_path_factory.mktemp("tinyrun")
    config, out = write_yaml(tmp / "study.yaml", TINYRUN), tmp / "runs"
    first = run_grid(config, out, timeout=400)
    (run_dir,) = out.iterdir()
    return TinyRun(config, out, run_dir, first)
