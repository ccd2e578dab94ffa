"""A reduced ``--config small`` study on the shared corpus (sources en, ru + pt→es; targets en,
es; two finetune budgets; two seeds) through ``python -m sweeps.grid --corpus``; its paper's-claims
rows are checked against values computed by hand from its transfer.csv, correlations.csv and
fit.csv."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from faults_util import REPO, private_ray_tmp, run_grid
from scipy import stats

from xfer.analysis.claims import (
    COMPARABLE_RATIO,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    claims_section,
)

REDUCED = {
    "name": "smallreduced",
    "languages": {"sources": ["en", "ru"], "targets": ["en", "es"], "extra_pairs": [["pt", "es"]]},
    "budgets": {"pretrain": "30K", "finetune": ["3K", "6K"], "scratch": [1500, "6K", "24K"]},
    "seeds": [0, 1],
    "data": {"dev_bytes": "4K", "test_bytes": "8K", "seed": 0},
}
SHORT = {"min_steps": 20, "eval_every": 10, "patience": 2}


def _g(x: float) -> str:
    return f"{x:.3g}"


@pytest.fixture(scope="module")
def reduced(tmp_path_factory: pytest.TempPathFactory, shared_corpus: Path) -> Path:
    """The reduced study's report folder (the small config with :data:`REDUCED` over it)."""
    tmp = tmp_path_factory.mktemp("small")
    config = yaml.safe_load((REPO / "sweeps" / "configs" / "small.yaml").read_text())
    config.update(REDUCED)
    config["train"].update(SHORT)
    for kind in ("scratch", "finetune"):
        config["train"][kind]["max_steps"] = 40
    (tmp / "small.yaml").write_text(yaml.safe_dump(config))
    with private_ray_tmp() as ray_tmp:
        done = run_grid(tmp / "small.yaml", tmp / "runs", "--corpus",
                        str(shared_corpus / "text"), ray_tmp=ray_tmp, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    (run,) = (tmp / "runs").glob("smallreduced-*")
    return run / "report"


@pytest.mark.slow
def test_reduced_small_study_claims_by_hand(reduced: Path, tmp_path: Path) -> None:
    rows = pd.read_csv(reduced / "transfer.csv", keep_default_na=False,
                       na_values=[""]).assign(bound=lambda f: f["bound"].fillna(""))
    corr = pd.read_csv(reduced / "correlations.csv")
    fit = pd.read_csv(reduced / "fit.csv")
    text = claims_section(rows, pd.read_csv(reduced / "cells.csv"), corr, fit, tmp_path)
    assert text is not None and "orders of magnitude" in text
    report = (reduced / "report.md").read_text(encoding="utf-8")  # the sweep's own report
    assert "## The paper's claims" in report and (reduced / "claims.csv").is_file()
    table = pd.read_csv(tmp_path / "claims.csv").set_index("claim")
    assert len(table) == 10 and set(table["verdict"]) <= {SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE}

    ft = rows[(rows["kind"] == "finetune") & (rows["init"] != rows["target"])]
    small = ft[ft["budget"] == 3000]

    def seeds(src: str, tgt: str) -> pd.Series:
        return small[(small["init"] == src) & (small["target"] == tgt)]["d_t_mib"]

    def mark(src: str, tgt: str = "es") -> str:  # a clamped D_E makes the mean a bound
        bounds = set(small[(small["init"] == src) & (small["target"] == tgt)]["bound"])
        return "≥ " if "lower" in bounds else "≤ " if "upper" in bounds else ""

    # pt→es: means, and Welch one-sided p against the best of en, ru into es, by hand
    pt, en, ru = seeds("pt", "es"), seeds("en", "es"), seeds("ru", "es")
    assert len(pt) == len(en) == len(ru) == 2
    best = en if en.mean() >= ru.mean() else ru
    p = stats.ttest_ind(pt, best, equal_var=False, alternative="greater").pvalue
    row = table.loc["pt→es gets the most transfer into Spanish"]
    assert row["ours"] == (f"pt {mark('pt')}{_g(pt.mean())}, en {mark('en')}{_g(en.mean())}, "
                           f"ru {mark('ru')}{_g(ru.mean())} MiB")
    if math.isfinite(p):
        assert f"p = {p:.3g}" in row["interval_or_p"]
        q = stats.ttest_ind(pt, best, equal_var=False, alternative="less").pvalue
        assert row["verdict"] == (SUPPORTED if p < 0.05 else NOT_SUPPORTED if q < 0.05
                                  else INCONCLUSIVE)
    # comparable D_T: es is the only target with two of the paper's sources (en, ru)
    ratio = max(en.mean(), ru.mean()) / min(en.mean(), ru.mean()) \
        if min(en.mean(), ru.mean()) > 0 else math.inf
    ok = int(ratio <= COMPARABLE_RATIO)
    row = table.loc["D_T from distant sources is comparable for a target"]
    assert row["ours"].startswith(f"max/min ≤ 3 in {ok}/1 targets")
    assert row["verdict"] == INCONCLUSIVE  # one target: a sign test cannot decide
    # en↔ru: en→ru was not trained
    row = table.loc["transfer is not commutative (en↔ru)"]
    assert row["verdict"] == INCONCLUSIVE and row["ours"] == "a direction is missing"
    # contamination rows: the pooled ρ and p of correlations.csv
    for variable in ("contamination on source", "contamination on target"):
        sel = corr[(corr["value"] == "d_t") & (corr["budget"].astype(str) == "all")
                   & (corr["variable"] == variable)].iloc[0]
        row = table.loc[f"D_T correlates only weakly with {variable}"]
        rho = f"ρ {_g(sel['rho'])}" if math.isfinite(sel["rho"]) else "ρ undefined"
        assert row["ours"].startswith(f"{rho} over {int(sel['n'])} cells")
        if not sel["p"] < 0.05:
            assert row["verdict"] == INCONCLUSIVE
    # power law: the count of per-pair α > 0 in fit.csv
    pairs = fit[fit["fixed_effects"] == "none"]
    positive = int((pairs["alpha"] > 0).sum())
    row = table.loc[table.index.str.startswith("D_T = k·D_F^α")].iloc[0]
    assert row["ours"].startswith(f"α > 0 in {positive}/{len(pairs)} pairs")
    for name in ("paper_dt_by_target.png", "paper_perplexity.png"):
        assert (tmp_path / name).stat().st_size > 1000
