"""The progress line's ETA (sweeps.eta) on crafted ledgers: classes timed by their finished
trials, untimed classes by planned bytes, running trials credited, spread over the slots."""

from __future__ import annotations

import pytest

from sweeps.eta import eta_seconds

CLASSES = {"p0": ("pretrain", 100, None), "p1": ("pretrain", 100, None),
           "f0": ("finetune", 10, None), "f1": ("finetune", 10, None), "s0": ("scratch", 10, None)}
PLANNED = {"p0": 1000, "p1": 1000, "f0": 400, "f1": 400, "s0": 400}


def row(started: float, ended: float) -> dict:
    return {"started_at": started, "ended_at": ended}


def test_nothing_finished_means_no_eta() -> None:
    assert eta_seconds(PLANNED, CLASSES, {}, {"p0": 0.0}, 5.0, 2) is None


def test_classes_are_timed_by_their_finished_trials_else_by_planned_bytes() -> None:
    rows = {"p0": row(0, 100), "f0": row(100, 110)}  # 100 s per 1000 bytes; f0 early-stopped
    # p1: 100 s (its class), f1: 10 s (its class, not 400 bytes' 40 s), s0: 400 x 110/1400 s
    left = [100.0, 10.0, 400 * 110 / 1400]
    assert eta_seconds(PLANNED, CLASSES, rows, {}, 110.0, 1) == pytest.approx(sum(left))
    # spread over slots, but no less than the longest trial left (p1: 100 s)
    assert eta_seconds(PLANNED, CLASSES, rows, {}, 110.0, 2) == pytest.approx(100.0)
    rows["p1"] = row(110, 210)
    # s0 now at 210 s per 2400 planned bytes: 35 s, the longest of f1 (10 s) and s0
    assert eta_seconds(PLANNED, CLASSES, rows, {}, 210.0, 2) == pytest.approx(400 * 210 / 2400)
    assert eta_seconds(PLANNED, CLASSES, rows, {}, 210.0, 1) == pytest.approx(10 + 35)


def test_running_trials_are_credited_with_their_age() -> None:
    rows = {"p0": row(0, 100), "f0": row(100, 110), "s0": row(100, 130)}
    running = {"p1": 110.0, "f1": 110.0}
    # at 140: p1 has 70 s left, f1 is past its class's 10 s (0 left)
    assert eta_seconds(PLANNED, CLASSES, rows, running, 140.0, 2) == pytest.approx(70.0)
    done = {k: row(0, 1) for k in PLANNED}
    assert eta_seconds(PLANNED, CLASSES, done, {}, 140.0, 2) == 0.0
