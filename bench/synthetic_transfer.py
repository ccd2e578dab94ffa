"""D_T on the generated languages, whose relationships are known: does the method recover them?

Prepares the default synthetic languages (``xfer.data.prepare``), pretrains a tiny model on each
source (twin, relative, markov), trains a scratch curve on the target (base) and finetunes every
pretrained model on it at each budget (``xfer.training.run``), then computes D_T with
``xfer.analysis.transfer`` and prints one table per budget next to the ground truth.

    python bench/synthetic_transfer.py --quick      # 1 seed, smallest D_F (< 3 min, 2 idle cores)
    python bench/synthetic_transfer.py              # 3 seeds: twin vs relative with the spread

The model, the data sizes, the budgets and each kind's training recipe are read from the default
study config (``sweeps/configs/default.yaml``), so this measures exactly what
``python -m sweeps.grid`` runs: every run takes at least ``min_steps`` optimiser steps (the tiny
model sits on a loss plateau for the first few hundred), evaluates a few kB of dev every
``eval_every`` steps, keeps its best-dev checkpoint and stops after ``patience`` evaluations
without a better one; scratch points extend beyond the finetune budgets at both ends.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from sweeps.config import StudyConfig, load_config
from xfer.data import prepare
from xfer.data.synthetic import DEFAULT_LANGUAGES, describe
from xfer.data.units import format_budget
from xfer.training.config import TrainConfig
from xfer.training.loop import run

TARGET = "base"
SOURCES = tuple(lang for lang in DEFAULT_LANGUAGES if lang != TARGET)
RELATED = ("twin", "relative")
UNRELATED = "markov"
STUDY = "default"  # the study config whose model, data sizes and recipes are measured


@dataclass(frozen=True)
class Mode:
    seeds: tuple[int, ...]
    finetune: tuple[int, ...]  # finetune budgets, bytes
    scratch: tuple[int, ...]  # scratch budgets (beyond the finetune ones), bytes
    pretrain: int  # pretraining budget, bytes


def modes(study: StudyConfig) -> dict[str, Mode]:
    """quick: one seed, the smallest finetune budget; long: three seeds, every budget."""
    b = study.budgets
    return {"quick": Mode((0,), b.finetune[:1], study.scratch_budgets, b.pretrain),
            "long": Mode((0, 1, 2), b.finetune, study.scratch_budgets, b.pretrain)}


def recipe(study: StudyConfig, kind: str, seed: int) -> TrainConfig:
    """The study's training config of one kind (pretrain, scratch or finetune), one thread."""
    return replace(study.train[kind], seed=seed, threads=1)


def prepare_data(study: StudyConfig, root: Path, mode: Mode) -> None:
    """One dataset per language (the corpus draws each language's documents independently)."""
    for lang in DEFAULT_LANGUAGES:
        budgets = sorted(set(mode.scratch) | set(mode.finetune)) if lang == TARGET \
            else [mode.pretrain]
        prepare(study.corpus, [lang], budgets, study.data.dev_bytes, study.data.test_bytes,
                study.data.seed, root)


def train_one(job: tuple) -> dict:
    """Run one trial (in a worker process); return its results-table row."""
    kind, init, lang, budget, seed, study, root, out, init_ckpt = job
    result = run(study.model, recipe(study, kind, seed), root, lang, budget, out,
                 init_checkpoint=init_ckpt)
    return {"kind": kind, "init": init, "target": lang, "budget": budget, "seed": seed,
            "perplexity": result.test_perplexity, "dev_perplexity": result.dev_perplexity,
            "steps": result.steps, "wall_s": result.wall_s, "checkpoint": result.best_checkpoint}


def run_all(study: StudyConfig, mode: Mode, work: Path, workers: int) -> pd.DataFrame:
    """All trials of ``mode``: pretrains and scratch runs at once; each source's finetunes as
    soon as its pretrain has finished (no barrier: the other pretrains may still run)."""
    data = work / "data"
    prepare_data(study, data, mode)
    runs = work / "runs"
    first = [("pretrain", src, src, mode.pretrain, s, study, data, runs / f"pre-{src}-s{s}", None)
             for s in mode.seeds for src in SOURCES]
    first += [("scratch", "scratch", TARGET, b, s, study, data, runs / f"scratch-{b}-s{s}", None)
              for s in mode.seeds for b in sorted(mode.scratch, reverse=True)]
    rows = []
    with ProcessPoolExecutor(workers) as pool:
        pending = {pool.submit(train_one, job) for job in first}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                row = future.result()
                rows.append(row)
                if row["kind"] != "pretrain":
                    continue
                src, s = row["init"], row["seed"]
                pending |= {pool.submit(train_one, ("finetune", src, TARGET, b, s, study, data,
                                                    runs / f"ft-{src}-{b}-s{s}",
                                                    Path(row["checkpoint"])))
                            for b in mode.finetune}
    return pd.DataFrame(rows)


def transfer_table(results: pd.DataFrame) -> pd.DataFrame | None:
    """D_T per (source, budget, seed), each seed against its own scratch curve."""
    try:
        from xfer.analysis.transfer import compute_transfer
    except ImportError:
        return None
    per_seed = [compute_transfer(results[results["seed"] == s]).rows
                for s in results["seed"].unique()]
    rows = pd.concat(per_seed)
    return rows[rows["kind"] == "finetune"]


def report(results: pd.DataFrame, mode: Mode) -> int:
    """Print the ground truth, the scratch curve and the D_T table; 0 if the ordering holds."""
    print("Ground truth (what each language shares with which):")
    for lang in DEFAULT_LANGUAGES:
        print(f"  {describe(lang)}")
    scratch = results[results["kind"] == "scratch"].groupby("budget")["perplexity"]
    print("\nScratch curve on base (test perplexity per byte, mean ± sd over seeds):")
    for budget, ppl in scratch:
        print(f"  {format_budget(budget):>6}  {ppl.mean():.3f} ± {ppl.std(ddof=0):.3f}")
    pre = results[results["kind"] == "pretrain"].groupby("init")["perplexity"].mean()
    print("\nPretrained sources (own test perplexity): "
          + ", ".join(f"{k} {v:.3f}" for k, v in pre.items()))
    rows = transfer_table(results)
    if rows is None:
        print("\nxfer.transfer not available: D_T not computed")
        return 1
    cells = rows.groupby(["budget", "init"]).agg(
        ppl=("perplexity", "mean"), scratch=("scratch_perplexity", "mean"),
        d_t=("d_t", "mean"), d_t_sd=("d_t", lambda x: x.std(ddof=0)),
        d_t_min=("d_t", "min"), d_t_max=("d_t", "max"),
        bounds=("bound", lambda x: ",".join(sorted(set(x)))))
    print(f"\nD_T on base, KB (10^3 bytes); {len(mode.seeds)} seed(s); bound: exact, lower "
          "(finetune beat every scratch point), upper (worse than the smallest scratch point)")
    print(f"  {'budget':>6} {'source':>9} {'ppl':>7} {'scratch':>7} {'D_T':>9} {'sd':>7} "
          f"{'min':>8} {'max':>8}  bound")
    for (budget, src), c in cells.iterrows():
        print(f"  {format_budget(budget):>6} {src:>9} {c.ppl:7.3f} {c.scratch:7.3f} "
              f"{c.d_t / 1e3:9.1f} {c.d_t_sd / 1e3:7.1f} {c.d_t_min / 1e3:8.1f} "
              f"{c.d_t_max / 1e3:8.1f}  {c.bounds}")
    by_cell = rows.set_index(["budget", "seed", "init"])["d_t"].unstack("init")
    related_wins = (by_cell[list(RELATED)].min(axis=1) > by_cell[UNRELATED])
    twin_wins = by_cell["twin"] >= by_cell["relative"]
    print(f"\nrelated (twin, relative) above unrelated (markov): {int(related_wins.sum())} of "
          f"{len(related_wins)} (budget, seed) cells")
    print(f"twin >= relative: {int(twin_wins.sum())} of {len(twin_wins)} cells")
    return 0 if related_wins.all() else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, the smallest finetune budget (< 3 min)")
    parser.add_argument("--workers", type=int, default=2, help="parallel training processes")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one); "
                        "reusing it resumes finished runs")
    args = parser.parse_args()
    study = load_config(STUDY)
    name = "quick" if args.quick else "long"
    mode = modes(study)[name]
    start = time.perf_counter()
    if args.work:
        results = run_all(study, mode, args.work, args.workers)
    else:
        with tempfile.TemporaryDirectory(prefix="xfer-synthetic-") as tmp:
            results = run_all(study, mode, Path(tmp), args.workers)
    print(f"{len(results)} runs, {int(results['steps'].sum())} optimiser steps in "
          f"{time.perf_counter() - start:.0f} s ({args.workers} workers, {name} mode; "
          f"load average {os.getloadavg()[0]:.2f})\n")
    return report(results, mode)


if __name__ == "__main__":
    sys.exit(main())
