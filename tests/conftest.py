"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

REPO = Path(__file__).resolve().parents[1]
SHARED_CORPUS = REPO.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def shared_corpus() -> Path:
    """The real multilingual text beside the checkout (``../shared/corpus``)."""
    if not SHARED_CORPUS.is_dir():
        pytest.fail(f"shared corpus not found at {SHARED_CORPUS}")
    return SHARED_CORPUS
