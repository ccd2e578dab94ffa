"""The lr search: every scratch run and finetune once per lr, the best dev perplexity chosen."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sweeps.config import config_from_dict
from sweeps.trials import build_trials, count_by_kind
from tests.faults_util import study
from tests.test_sweep_run import run_grid, write_study
from xfer.analysis.tuning import choose_by_dev, chosen_markdown
from xfer.errors import XferError

TUNED = study(name="tuned", languages={"sources": ["base"], "targets": ["twin"]},
              lr_search=[1.0e-7, 3.0e-3])


def test_lr_search_multiplies_scratch_and_finetune_trials() -> None:
    trials = build_trials(config_from_dict(TUNED))
    assert count_by_kind(trials) == {"pretrain": 1, "scratch": 2 * 2, "finetune": 2}
    assert {t.lr for t in trials if t.kind != "pretrain"} == {1e-7, 3e-3}
    assert len({t.key for t in trials}) == len(trials)
    with pytest.raises(XferError, match="lr_search: expected a list of distinct positive"):
        config_from_dict({**TUNED, "lr_search": [0.01, -1]})


def test_analysis_of_any_results_table_reads_the_chosen_variants(tmp_path: Path) -> None:
    """``xfer analyse`` on a run folder or a file applies the same choice as the sweep: the
    worse lr variant of each cell (here 10x the perplexity) never reaches D_T."""
    from xfer.analysis.analyse import analyse

    rows = [{"kind": kind, "init": init, "target": "base", "budget": b, "seed": s, "lr": lr,
             "perplexity": p * (1 if lr == 0.01 else 10),
             "dev_perplexity": p * (1 if lr == 0.01 else 10)}
            for s in range(2) for lr in (0.01, 0.03)
            for kind, init, b, p in (("scratch", "scratch", 1000, 4.0),
                                     ("scratch", "scratch", 3000, 2.0),
                                     ("finetune", "lex25", 1000, 3.0))]
    report = analyse(pd.DataFrame(rows), tmp_path)
    transfer = pd.read_csv(tmp_path / "transfer.csv")
    assert len(transfer[transfer["init"] == "lex25"]) == 2  # one per seed, not per lr
    assert transfer["perplexity"].max() < 10
    assert "Tuned learning rates" in report.read_text(encoding="utf-8")
    with pytest.raises(XferError, match="lr variants need column"):
        analyse(pd.DataFrame(rows).drop(columns="dev_perplexity"), tmp_path / "bad")


def test_lr_search_per_kind_has_one_budget_for_both_sides() -> None:
    """Scratch runs and finetunes may search around their own optima, with as many lrs each."""
    grids = {"scratch": [1e-2, 3e-2], "finetune": [1e-3, 3e-3]}
    trials = build_trials(config_from_dict({**TUNED, "lr_search": grids}))
    assert {t.lr for t in trials if t.kind == "scratch"} == {1e-2, 3e-2}
    assert {t.lr for t in trials if t.kind == "finetune"} == {1e-3, 3e-3}
    for bad in ({"scratch": [1e-2], "finetune": [1e-3, 3e-3]}, {"scratch": [1e-2]},
                {"scratch": [1e-2], "pretrain": [1e-3]}):
        with pytest.raises(XferError, match="lr_search"):
            config_from_dict({**TUNED, "lr_search": bad})


def test_choose_by_dev_on_a_crafted_table() -> None:
    rows = pd.DataFrame([
        {"kind": "scratch", "init": "scratch", "target": "t", "budget": 2000, "seed": s,
         "lr": lr, "dev_perplexity": ppl}
        for s in (0, 1) for lr, ppl in ((0.01, 5.0 + s), (0.03, 6.0 - 2 * s))]
        + [{"kind": "pretrain", "init": "a", "target": "a", "budget": 9000, "seed": 0,
            "lr": None, "dev_perplexity": 3.0}])
    chosen = choose_by_dev(rows)
    assert len(chosen) == 3
    scratch = chosen[chosen["kind"] == "scratch"].set_index("seed")["lr"]
    assert scratch.to_dict() == {0: 0.01, 1: 0.03}  # seed 1: 4.0 at 0.03 beats 6.0
    assert "| scratch | scratch | t | 2K | 0.01 | 0.03 |" in chosen_markdown(chosen)
    assert choose_by_dev(rows.drop(columns="lr")).equals(rows.drop(columns="lr"))


@pytest.mark.slow
def test_tiny_study_chooses_the_learning_rate_by_dev_loss(tmp_path: Path) -> None:
    """lr 1e-7 cannot learn in a few steps: every cell must choose 3e-3, the analysis must read
    only the chosen variants and the report must list them."""
    out = tmp_path / "runs"
    done = run_grid(write_study(tmp_path, TUNED), out, "--num-cpus", "2", "--no-dashboard")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = out.iterdir()
    results = pd.read_parquet(run_dir / "results.parquet")
    searched = results[results["kind"] != "pretrain"]
    assert len(searched) == 6 and set(searched["lr"]) == {1e-7, 3e-3}
    slow, fast = (searched[searched["lr"] == lr].set_index(["init", "budget"]) for lr in (1e-7,
                                                                                          3e-3))
    assert (fast["dev_perplexity"] < slow["dev_perplexity"]).all()
    transfer = pd.read_csv(run_dir / "report" / "transfer.csv")
    assert set(transfer.loc[transfer["kind"] != "pretrain", "lr"]) == {3e-3}
    report = (run_dir / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Tuned learning rates" in report
    assert "| scratch | scratch | twin | 2K | 0.003 |" in report

