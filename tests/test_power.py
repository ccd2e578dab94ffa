"""bench/power.py on a run folder of a simulated default study: the model it estimates and the
power it prints, through the package's own functions; a missing run is a one-line error."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest

from xfer.analysis import calibration as cal

POWER = runpy.run_path(str(Path(__file__).parents[1] / "bench" / "power.py"))
SOURCES = {"lex25": 4.4, "lex50": 4.7, "lex100": 5.1, "script25": 4.5, "twin": 5.9,
           "alien": 6.0}


def run_folder(tmp_path: Path, n_seeds: int = 5) -> Path:
    """A run folder of a simulated study: config.json and results.parquet."""
    run = tmp_path / "default-x"
    run.mkdir()
    config = {"corpus": "synthetic", "languages": {"sources": list(SOURCES),
                                                   "targets": ["base"]}}
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    table = cal.simulate_results(np.random.default_rng(0), SOURCES, n_seeds)
    table.assign(kind=np.where(table["init"] == "scratch", "scratch", "finetune")).to_parquet(
        run / "results.parquet")
    return run


def test_the_model_is_estimated_from_the_run(tmp_path: Path) -> None:
    truth, points, sources, noise = POWER["estimate"]([run_folder(tmp_path, 8)])
    assert truth.reference == "base" and noise["finetune_budget"] == cal.FINETUNE_BUDGET
    assert list(points) == pytest.approx(cal.BUDGETS.tolist())
    assert list(points.values()) == pytest.approx(cal.true_curve().tolist(), rel=0.03)
    assert sources == pytest.approx(SOURCES, rel=0.05)
    assert all(0.005 < sd < 0.04 for sd in noise["sigma_scratch"])  # simulated: 0.02
    assert 0.025 < noise["sigma_finetune"] < 0.055 and noise["sigma_seed"] < 0.03  # 0.04, 0


def test_seed_split_by_hand() -> None:
    """Two seeds x two sources, log perplexities [[1, 2], [3, 6]]: residual mean square 1 (one
    degree of freedom), seeds' mean square 2·(1.5² + 1.5²)/1 = 9: shared σ √((9 − 1)/2) = 2."""
    import pandas as pd

    rest, seed = POWER["seed_split"](pd.DataFrame([[1.0, 2.0], [3.0, 6.0]]))
    assert (rest, seed) == pytest.approx((1.0, 2.0))


def test_power_prints_the_share_recovered(tmp_path: Path, capsys) -> None:
    assert POWER["main"]([str(run_folder(tmp_path)), "--studies", "4", "--seeds", "5"]) == 0
    out = capsys.readouterr().out
    assert "5 seeds, 4 studies: every axis recovered" in out
    assert "lexicon" in out and "script" in out


def test_no_run_is_a_one_line_error(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert POWER["main"]([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no run folder" in err[0]
    assert POWER["main"]([str(run_folder(tmp_path)), "--seeds", "1"]) == 2
