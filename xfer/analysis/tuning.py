"""The study's learning-rate search: each scratch run and finetune is trained once per lr of
``lr_search`` (separate Tune trials, same seed, same steps); the variant with the lowest dev
perplexity stands for its cell and seed. Scratch runs and finetunes get the same search, so
neither side of D_T is tuned better than the other. The analysis applies it to every results
table it reads (:func:`xfer.analysis.analyse.run_analysis`): the sweep's, a run folder's or a
file's."""

from __future__ import annotations

import pandas as pd

from xfer.errors import XferError
from xfer.units import format_budget

CELL = ["kind", "init", "target", "budget", "seed"]


def choose_by_dev(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (kind, init, target, budget, seed): the lr variant with the lowest dev
    perplexity (NaN: not chosen; a cell where every variant has NaN is an XferError). Rows
    without an lr (no search, pretrains) are kept as they are."""
    if "lr" not in frame.columns or frame["lr"].isna().all():
        return frame
    missing = [c for c in [*CELL, "dev_perplexity"] if c not in frame.columns]
    if missing:
        raise XferError(f"results with lr variants need column(s) {', '.join(missing)} to "
                        "choose one per cell")
    searched = frame[frame["lr"].notna()]
    dev = pd.to_numeric(searched["dev_perplexity"], errors="coerce").astype(float)
    groups = dev.groupby([searched[c] for c in CELL], sort=False)
    counts = groups.count()
    if (counts == 0).any():
        cell = ", ".join(f"{k} {v}" for k, v in zip(CELL, counts[counts == 0].index[0],
                                                       strict=True))
        raise XferError(f"results: no lr variant of the cell ({cell}) has a dev_perplexity, so "
                        "none can be chosen")
    best = searched.loc[groups.idxmin()]
    return pd.concat([frame[frame["lr"].isna()], best]).sort_index()


def chosen_markdown(chosen: pd.DataFrame) -> str:
    """The report's table of chosen learning rates: one row per cell, the lr of each seed."""
    rows = chosen[chosen["lr"].notna()] if "lr" in chosen.columns else chosen.iloc[:0]
    if rows.empty:
        return ""
    seeds = sorted(rows["seed"].unique())
    lines = ["The lr of `lr_search` with the lowest dev perplexity, per cell and seed (every "
             "variant is in `results.parquet`; the analysis reads the chosen ones).", "",
             "| kind | init | target | budget | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|" + " --- |" * (4 + len(seeds))]
    for (kind, init, target, budget), group in rows.groupby(CELL[:4], sort=True):
        by_seed = dict(zip(group["seed"], group["lr"], strict=True))
        lrs = " | ".join(f"{by_seed[s]:g}" if s in by_seed else "–" for s in seeds)
        lines.append(f"| {kind} | {init} | {target} | {format_budget(int(budget))} | {lrs} |")
    return "\n".join(lines)
