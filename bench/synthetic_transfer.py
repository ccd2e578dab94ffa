"""D_T on the generated languages, whose relationships are known: does the method recover them?

Prepares the default synthetic languages (``xfer.data.prepare``), pretrains a tiny model on each
source (twin, relative, markov), trains a scratch curve on the target (base) and finetunes every
pretrained model on it at each budget (``xfer.train.run``), then computes D_T with
``xfer.transfer`` and prints one table per budget next to the ground truth.

    python bench/synthetic_transfer.py --quick      # 1 seed, < 3 min on 2 idle cores
    python bench/synthetic_transfer.py              # 3 seeds: twin vs relative with the spread

The recipe (tiny model, lr, batch, step rule) is the one the default sweep config can use; see
``RECIPE``. Step limits grow with the budget (at least MIN_STEPS, at least EPOCHS passes), every
run keeps its best-dev checkpoint, and scratch points extend beyond the finetune budgets so
finetuned perplexities fall inside the curve.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from xfer.data import prepare
from xfer.data.synthetic import DEFAULT_LANGUAGES, describe, independent_seed
from xfer.model import ModelConfig
from xfer.train import TrainConfig, run
from xfer.units import format_budget

TARGET = "base"
SOURCES = tuple(lang for lang in DEFAULT_LANGUAGES if lang != TARGET)
RELATED = ("twin", "relative")
UNRELATED = "markov"
MODEL = ModelConfig(name="synthetic-bench", d_model=64, n_layers=2, n_heads=2, d_head=32, d_ff=256)
BASE_CFG = TrainConfig(seq_len=128, batch_size=8, micro_batch_size=8, lr=1e-2, min_lr=1e-3,
                       eval_every=100, eval_max_bytes=4096, threads=1, keep_checkpoints=1)
FINETUNE_LR = 1e-2
MIN_STEPS = 1000  # scratch and finetune runs take at least this many steps...
EPOCHS = 4  # ...and at least this many passes over their budget
DEV_BYTES, TEST_BYTES = 16_000, 32_000


@dataclass(frozen=True)
class Mode:
    seeds: tuple[int, ...]
    finetune: tuple[int, ...]  # finetune budgets, bytes
    scratch: tuple[int, ...]  # scratch budgets (beyond the finetune ones), bytes
    pretrain: int  # pretraining budget, bytes
    pretrain_epochs: int


QUICK = Mode((0,), (10_000, 30_000), (10_000, 30_000, 100_000, 300_000), 300_000, 4)
LONG = Mode((0, 1, 2), (10_000, 30_000, 100_000),
            (10_000, 30_000, 100_000, 300_000, 1_000_000), 1_000_000, 3)


def epochs_for(budget: int, cfg: TrainConfig) -> int:
    """Passes over ``budget`` bytes: EPOCHS, or more so that the run makes MIN_STEPS steps."""
    steps_per_epoch = max(budget // cfg.seq_len // cfg.batch_size, 1)
    return max(EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch))


def recipe(kind: str, budget: int, seed: int, mode: Mode) -> TrainConfig:
    """The training config of one run (kind: pretrain, scratch or finetune)."""
    if kind == "pretrain":
        return replace(BASE_CFG, kind=kind, epochs=mode.pretrain_epochs, seed=seed)
    lr = FINETUNE_LR if kind == "finetune" else BASE_CFG.lr
    return replace(BASE_CFG, kind=kind, lr=lr, epochs=epochs_for(budget, BASE_CFG), seed=seed,
                   warmup_steps=0 if kind == "finetune" else None)


def prepare_data(root: Path, mode: Mode) -> None:
    """One dataset per language, each from its own seed (no parallel documents across them)."""
    for lang in DEFAULT_LANGUAGES:
        budgets = sorted(set(mode.scratch) | set(mode.finetune)) if lang == TARGET \
            else [mode.pretrain]
        prepare("synthetic", [lang], budgets, DEV_BYTES, TEST_BYTES, independent_seed(lang, 0),
                root)


def train_one(job: tuple) -> dict:
    """Run one trial (in a worker process); return its results-table row."""
    kind, init, lang, budget, seed, mode, root, out, init_ckpt = job
    result = run(MODEL, recipe(kind, budget, seed, mode), root, lang, budget, out,
                 init_checkpoint=init_ckpt)
    return {"kind": kind, "init": init, "target": lang, "budget": budget, "seed": seed,
            "perplexity": result.test_perplexity, "dev_perplexity": result.dev_perplexity,
            "steps": result.steps, "wall_s": result.wall_s, "checkpoint": result.best_checkpoint}


def run_all(mode: Mode, work: Path, workers: int) -> pd.DataFrame:
    """All trials of ``mode``: pretrains and scratch runs, then the finetunes."""
    data = work / "data"
    prepare_data(data, mode)
    runs = work / "runs"
    first = [("pretrain", src, src, mode.pretrain, s, mode, data, runs / f"pre-{src}-s{s}", None)
             for s in mode.seeds for src in SOURCES]
    first += [("scratch", "scratch", TARGET, b, s, mode, data, runs / f"scratch-{b}-s{s}", None)
              for s in mode.seeds for b in sorted(mode.scratch, reverse=True)]
    with ProcessPoolExecutor(workers) as pool:
        rows = list(pool.map(train_one, first))
        ckpts = {(r["init"], r["seed"]): r["checkpoint"] for r in rows if r["kind"] == "pretrain"}
        second = [("finetune", src, TARGET, b, s, mode, data, runs / f"ft-{src}-{b}-s{s}",
                   Path(ckpts[(src, s)]))
                  for s in mode.seeds for src in SOURCES for b in mode.finetune]
        rows += list(pool.map(train_one, second))
    return pd.DataFrame(rows)


def transfer_table(results: pd.DataFrame) -> pd.DataFrame | None:
    """D_T per (source, budget, seed), each seed against its own scratch curve."""
    try:
        from xfer.transfer import compute_transfer
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
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 budgets (< 3 min)")
    parser.add_argument("--workers", type=int, default=2, help="parallel training processes")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one); "
                        "reusing it resumes finished runs")
    args = parser.parse_args()
    mode = QUICK if args.quick else LONG
    start = time.perf_counter()
    if args.work:
        results = run_all(mode, args.work, args.workers)
    else:
        with tempfile.TemporaryDirectory(prefix="xfer-synthetic-") as tmp:
            results = run_all(mode, Path(tmp), args.workers)
    print(f"{len(results)} runs in {time.perf_counter() - start:.0f} s "
          f"({args.workers} workers, {'quick' if args.quick else 'long'} mode)\n")
    return report(results, mode)


if __name__ == "__main__":
    sys.exit(main())
