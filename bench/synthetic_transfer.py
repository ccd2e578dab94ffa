"""D_T on the generated languages, whose relationships are known: does the method recover them?

Runs the trials of a study config (default: ``sweeps/configs/default.yaml``: graded sources
that depart from ``base`` along one axis, plus the unrelated control) without Ray: the trial
graph is ``sweeps.trials.build_trials`` (so it is exactly the study's: shared pretrains,
seeds, budgets, each kind's recipe), each trial one ``xfer.training.loop.run`` in a process
pool, every finetune started as soon as its pretrain has finished. Then D_T
(``xfer.analysis.transfer``), the seed spread of D_T per axis and level, and the ground-truth
verdicts (``xfer.analysis.ground_truth``).

    python bench/synthetic_transfer.py --quick      # the first seed only
    python bench/synthetic_transfer.py              # every seed of the config: the spread
    python bench/synthetic_transfer.py --config my.yaml --work /tmp/w   # reuse /tmp/w to resume
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import replace
from pathlib import Path

import pandas as pd

from sweeps.config import StudyConfig, load_config
from sweeps.trials import TrialSpec, build_trials, language_budgets
from xfer.analysis import ground_truth
from xfer.analysis.runfolder import declared_truth
from xfer.analysis.transfer import compute_transfer, summarise_cells
from xfer.analysis.tuning import choose_by_dev
from xfer.data import prepare
from xfer.training.loop import run
from xfer.units import format_budget


def train_one(job: tuple[StudyConfig, TrialSpec, Path, Path | None]) -> dict:
    """Run one trial (in a worker process, one thread); return its results-table row."""
    study, trial, root, init = job
    cfg = replace(study.train[trial.kind], seed=trial.seed, threads=1,
                  **({} if trial.lr is None else {"lr": trial.lr}))
    result = run(study.model, cfg, root / "data", trial.lang, trial.budget,
                 root / "trials" / trial.key, init_checkpoint=init)
    return {"kind": trial.kind, "init": trial.init, "target": trial.lang,
            "budget": trial.budget, "seed": trial.seed, "perplexity": result.test_perplexity,
            "dev_perplexity": result.dev_perplexity, "lr": trial.lr,
            "steps": result.steps, "wall_s": result.wall_s, "key": trial.key,
            "checkpoint": result.best_checkpoint}


def run_all(study: StudyConfig, work: Path, workers: int) -> pd.DataFrame:
    """Every trial of the study; a finetune starts when its parent pretrain has finished."""
    trials = [t for t in build_trials(study) if t.kind != "downstream"]
    for lang, budgets in language_budgets(study, trials).items():
        prepare(study.corpus, [lang], budgets, study.data.dev_bytes, study.data.test_bytes,
                study.data.seed, work / "data")
    waiting = [t for t in trials if t.parent]
    rows: list[dict] = []
    with ProcessPoolExecutor(workers) as pool:
        pending = {pool.submit(train_one, (study, t, work, None)) for t in trials if not t.parent}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                row = future.result()
                rows.append(row)
                ready = [t for t in waiting if t.parent == row["key"]]
                waiting = [t for t in waiting if t.parent != row["key"]]
                pending |= {pool.submit(train_one, (study, t, work, Path(row["checkpoint"])))
                            for t in ready}
    return pd.DataFrame(rows)


def spread(rows: pd.DataFrame, truth: ground_truth.Truth) -> pd.DataFrame:
    """D_T (MiB) per axis, level and budget: mean, sd, min, max over seeds, 95% t interval."""
    into = rows[(rows["kind"] == "finetune") & (rows["target"] == truth.reference)].copy()
    into["axis"] = into["init"].map(truth.axis_of)
    into = into[into["axis"].notna()]
    into["divergence"] = [truth.divergence[s]["content" if a == "control" else a]
                          for s, a in zip(into["init"], into["axis"], strict=True)]
    cells = summarise_cells(into).set_index(["init", "budget"])
    out = into.groupby(["budget", "axis", "divergence", "init"])["d_t_mib"].agg(
        ["mean", "std", "min", "max", "size"]).reset_index()
    out["ci_low"] = [cells.loc[(s, b), "d_t_mib_ci_low"] for s, b in zip(out["init"],
                                                                          out["budget"],
                                                                          strict=True)]
    out["ci_high"] = [cells.loc[(s, b), "d_t_mib_ci_high"] for s, b in zip(out["init"],
                                                                            out["budget"],
                                                                            strict=True)]
    return out


def report(results: pd.DataFrame, study: StudyConfig) -> int:
    """Print the scratch curve, D_T's seed spread per axis and level, and the verdicts."""
    scratch = results[results["kind"] == "scratch"].groupby("budget")["perplexity"]
    print("Scratch curve (test perplexity per byte, mean ± sd over seeds):")
    for budget, ppl in scratch:
        print(f"  {format_budget(budget):>6}  {ppl.mean():.3f} ± {ppl.std(ddof=0):.3f}")
    truth = declared_truth(study.to_dict())
    rows = compute_transfer(choose_by_dev(results)).rows
    if truth is None:
        print("the study declares no ground truth (not the generated languages into base)")
        return 1
    table = spread(rows, truth)
    print("\nD_T into base (MiB) per axis and level, over seeds: mean, sd, min, max, "
          "95% t interval")
    print(f"  {'budget':>6} {'axis':>8} {'div':>5} {'source':>9} {'mean':>8} {'sd':>7} "
          f"{'min':>8} {'max':>8}  interval            seeds")
    for r in table.itertuples():
        print(f"  {format_budget(r.budget):>6} {r.axis:>8} {r.divergence:5.2f} {r.init:>9} "
              f"{r.mean:8.4f} {r.std:7.4f} {r.min:8.4f} {r.max:8.4f}  "
              f"[{r.ci_low:.4f}, {r.ci_high:.4f}]  {r.size}")
    cells = summarise_cells(rows)
    verdict = ground_truth.verdicts(ground_truth.truth_table(cells, truth),
                                    rows[rows["bound"] != ""], truth)
    print("\nGround truth:")
    for line in ground_truth.verdict_lines(verdict):
        print(f"  {line}")
    return 0 if (verdict["verdict"] == ground_truth.RECOVERED).all() else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default", help="study config (name or YAML)")
    parser.add_argument("--quick", action="store_true", help="the config's first seed only")
    parser.add_argument("--workers", type=int, default=2, help="parallel training processes")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one); "
                        "reusing it resumes finished runs")
    args = parser.parse_args()
    study = load_config(args.config)
    if args.quick:
        study = replace(study, seeds=study.seeds[:1], pretrain_seeds=study.pretrain_seeds[:1])
    start = time.perf_counter()
    if args.work:
        results = run_all(study, args.work, args.workers)
    else:
        with tempfile.TemporaryDirectory(prefix="xfer-synthetic-") as tmp:
            results = run_all(study, Path(tmp), args.workers)
    print(f"{len(results)} runs, {int(results['steps'].sum())} optimiser steps in "
          f"{time.perf_counter() - start:.0f} s ({args.workers} workers; load average "
          f"{os.getloadavg()[0]:.2f})\n")
    return report(results.drop(columns=["checkpoint", "key"]), study)


if __name__ == "__main__":
    sys.exit(main())
