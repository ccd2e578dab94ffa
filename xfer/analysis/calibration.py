"""Simulations that measure the report's intervals and tests on data whose truth is known.

Each function draws many simulated studies from a stated model, runs the report's own method
on each (the shipped functions, not copies: :func:`xfer.analysis.transfer.compute_transfer`
on a results table, then its intervals and the ground-truth verdicts) and returns the share that
covers the truth or rejects the null. ``bench/`` prints them in full; ``tests/`` run small,
seeded versions.

The measurement model (:func:`simulate_results`): a target's true scratch curve, perplexity
ppl(B) = FLOOR + SCALE·(B / 1 kB)^−SLOPE (shape and seed noise as measured on the default
study), measured at the default study's scratch budgets; each seed draws its own scratch curve
(every point's log perplexity moved by its own N(0, σ_s)) and its own finetune per source (log
perplexity moved by N(0, σ_f)), as in a real results table. The truth is the generating
process's: a finetune of true perplexity p is worth D_E = ppl⁻¹(p) bytes on the true curve
(:func:`true_d_t`), also outside the measured budgets, where the report can only give a bound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from xfer.analysis import ground_truth, trend
from xfer.analysis.intervals import log_t_interval, t_interval
from xfer.analysis.powerlaw import within_slope
from xfer.analysis.stats import spearman
from xfer.analysis.transfer import (
    DEFAULT_INTERP,
    EXACT,
    LOWER,
    UPPER,
    compute_transfer,
    summarise_cells,
)
from xfer.units import MIB

BUDGETS = np.array([2e3, 5e3, 7e3, 1e4, 2e4])  # the default study's scratch budgets
FLOOR, SCALE, SLOPE = 1.5, 12.9, 0.68  # fits its mean scratch curve: 9.5, 5.8, 4.1, 3.2 at 2-20K
SIGMA_SCRATCH, SIGMA_FINETUNE = 0.02, 0.04  # its seeds' sd of log perplexity (finetunes: 0.02-0.08)
FINETUNE_BUDGET = 5000
TARGET = "base"
# Perplexity bands of a 5K finetune on that curve, the whole range a study can put cells in:
# beyond its ends the report gives bounds (D_E ≥ 20K, D_E ≤ 2K); the default study's levels
# fall at 4.3-5.5, its control (alien) and twin at 5.6-6.05 (D_T ≈ 0).
BANDS = (("D_E ≥ 20K (lower bound)", 2.85, 3.15), ("D_T 5-15K", 3.2, 4.3),
         ("levels (D_T 0.5-5K)", 4.3, 5.5), ("D_T ≈ 0 (controls)", 5.5, 6.1),
         ("D_T < 0", 6.1, 9.3), ("D_E ≤ 2K (upper bound)", 9.8, 11.0))
STUDY_BANDS = BANDS[1:5]  # where the studies put cells (exact ones)
COVERAGE_COLUMNS = ["band", "low", "high", "cells", "exact", "coverage", "bound_cells",
                    "bound_coverage", "bias", "truth"]


def true_curve(budgets: np.ndarray = BUDGETS) -> np.ndarray:
    """The noise-free scratch perplexities at ``budgets`` (bytes)."""
    return FLOOR + SCALE * (np.asarray(budgets, dtype=float) / 1e3) ** -SLOPE


def true_d_t(perplexity: float | np.ndarray, budget: float = FINETUNE_BUDGET) -> np.ndarray:
    """The true D_T (bytes) of a finetune of ``budget`` bytes whose true perplexity is
    ``perplexity``: the budget at which the true curve reaches it, minus ``budget`` (inf at or
    below the curve's floor)."""
    p = np.asarray(perplexity, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_e = np.where(p > FLOOR, 1e3 * ((p - FLOOR) / SCALE) ** (-1 / SLOPE), np.inf)
    return d_e - budget


def simulate_results(rng: np.random.Generator, sources: Mapping[str, float], n_seeds: int, *,
                     scratch: Mapping[float, float] | None = None,
                     sigma_scratch: float | Sequence[float] = SIGMA_SCRATCH,
                     sigma_finetune: float = SIGMA_FINETUNE, sigma_seed: float = 0.0,
                     finetune_budget: int = FINETUNE_BUDGET) -> pd.DataFrame:
    """One simulated results table into :data:`TARGET` (columns init, target, budget, seed,
    perplexity): per seed, a scratch run at every budget of ``scratch`` (budget in bytes ->
    true perplexity; default the true curve at :data:`BUDGETS`) and a finetune of
    ``finetune_budget`` bytes per source (name -> true perplexity), each with its own noise in
    log perplexity (``sigma_scratch``: one sd, or one per scratch budget); ``sigma_seed``: a
    shift of log perplexity shared by every finetune of a seed (its pretrain-independent luck,
    e.g. data order)."""
    points = scratch or dict(zip(BUDGETS.tolist(), true_curve().tolist(), strict=True))
    budgets = np.array(list(points), dtype=np.int64)
    base = np.log(np.array(list(points.values()), dtype=float))
    names = list(sources)
    centre = np.log(np.array([sources[n] for n in names], dtype=float))
    frames = []
    for s in range(n_seeds):
        curve = np.exp(base + rng.normal(0, sigma_scratch, len(base)))
        tuned = np.exp(centre + rng.normal(0, sigma_finetune, len(centre))
                       + rng.normal(0, sigma_seed))
        frames.append(pd.DataFrame({
            "init": ["scratch"] * len(budgets) + names, "target": TARGET,
            "budget": np.concatenate([budgets, np.full(len(names), finetune_budget)]),
            "seed": s, "perplexity": np.concatenate([curve, tuned])}))
    return pd.concat(frames, ignore_index=True)


def _covered(cell: object, truth: float) -> bool:
    """Does the cell's reported statement hold: the interval for an exact cell, the one-sided
    bound (≥ its low end, ≤ its high end) for a bound cell?"""
    low, high = cell.d_t_mib_ci_low * MIB, cell.d_t_mib_ci_high * MIB
    if cell.bound == LOWER:
        return truth >= low
    if cell.bound == UPPER:
        return truth <= high
    return low <= truth <= high


def interval_coverage(n_seeds: int, n_studies: int, *, bands: tuple = BANDS, per_band: int = 2,
                      interp: str = DEFAULT_INTERP, seed: int = 0,
                      method: Callable | None = None, **model: float) -> pd.DataFrame:
    """Per perplexity band (:data:`COVERAGE_COLUMNS`): over ``n_studies`` simulated studies of
    ``n_seeds`` seeds, each with ``per_band`` sources per band (true perplexity uniform in
    the band), run through :func:`compute_transfer` (``interp``) and
    :func:`summarise_cells`: how many cells were exact and the share whose 95% t interval
    covers the true D_T (``coverage``), how many were bounds (``bound_cells``, ``mixed``
    ones included) and the share of lower/upper bounds whose one-sided statement holds
    (``bound_coverage``); ``bias``: mean estimate − truth over the exact cells, ``truth``:
    their mean true D_T (bytes). ``method`` (values -> (low, high)) replaces the t interval
    of exact cells, for comparison; ``model``: noise keywords of :func:`simulate_results`."""
    rng = np.random.default_rng(seed)
    tally = {band[0]: [] for band in bands}
    for _ in range(n_studies):
        sources, where = {}, {}
        for name, low, high in bands:
            for i in range(per_band):
                sources[f"{name}#{i}"] = float(rng.uniform(low, high))
                where[f"{name}#{i}"] = name
        rows = compute_transfer(simulate_results(rng, sources, n_seeds, **model), interp).rows
        cells = summarise_cells(rows[rows["init"] != "scratch"])
        for cell in cells.itertuples():
            truth = float(true_d_t(sources[cell.init]))
            if method is not None and cell.bound == EXACT:
                low, high = method(rows.loc[rows["init"] == cell.init, "d_t"].to_numpy(float))
                cell = cell._replace(d_t_mib_ci_low=low / MIB, d_t_mib_ci_high=high / MIB)
            tally[where[cell.init]].append((cell.bound, _covered(cell, truth),
                                            cell.d_t - truth, truth))
    out = []
    for name, low, high in bands:
        got = pd.DataFrame(tally[name], columns=["bound", "covered", "error", "truth"])
        exact = got[got["bound"] == EXACT]
        bounds = got[got["bound"].isin([LOWER, UPPER])]
        out.append({"band": name, "low": low, "high": high, "cells": len(got),
                    "exact": len(exact), "coverage": exact["covered"].mean(),
                    "bound_cells": len(got) - len(exact),
                    "bound_coverage": bounds["covered"].mean(),
                    "bias": exact["error"].mean(), "truth": exact["truth"].mean()})
    return pd.DataFrame(out, columns=COVERAGE_COLUMNS)


def perplexity_coverage(n_seeds: int, n_studies: int, *, seed: int = 0) -> float:
    """Share of simulated cells whose 95% interval of the geometric mean perplexity
    (:func:`xfer.analysis.intervals.log_t_interval`) covers the true one: each seed's test
    perplexity moved by exp(N(0, σ_f)) around 4.5."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_studies):
        low, high = log_t_interval(4.5 * np.exp(rng.normal(0, SIGMA_FINETUNE, n_seeds)))
        hits += low <= 4.5 <= high
    return hits / n_studies


def simulated_verdicts(sources: Mapping[str, float], truth: ground_truth.Truth, n_seeds: int,
                       n_studies: int, *, seed: int = 0, **model: object) -> pd.DataFrame:
    """The ground-truth verdict rows (:data:`xfer.analysis.ground_truth.VERDICT_COLUMNS` and
    ``study``) of ``n_studies`` simulated studies of ``sources`` (name -> true finetune
    perplexity) into :data:`TARGET`, each through :func:`compute_transfer`,
    :func:`summarise_cells`, :func:`ground_truth.truth_table` and :func:`ground_truth.verdicts`;
    ``model``: keyword arguments of :func:`simulate_results`."""
    rng = np.random.default_rng(seed)
    out = []
    for study in range(n_studies):
        rows = compute_transfer(simulate_results(rng, sources, n_seeds, **model)).rows
        table = ground_truth.truth_table(summarise_cells(rows), truth)
        out.append(ground_truth.verdicts(table, rows, truth).assign(study=study))
    return pd.concat(out, ignore_index=True)


LEVEL_AXIS = "lexicon"


def level_truth(n_levels: int, control: bool = True) -> ground_truth.Truth:
    """One axis (:data:`LEVEL_AXIS`) of ``n_levels`` levels ``lv1``… (divergence i/n_levels)
    and, with ``control``, an unrelated control ``ctl``."""
    zero = dict.fromkeys(("content", "lexicon", "script", "grammar"), 0.0)
    div = {f"lv{i}": {**zero, LEVEL_AXIS: i / n_levels} for i in range(1, n_levels + 1)}
    if control:
        div["ctl"] = dict.fromkeys(zero, 1.0)
    return ground_truth.Truth(TARGET, div)


def verdict_level(n_seeds: int, n_levels: int, n_studies: int, *, seed: int = 0) -> tuple[float,
                                                                                        float]:
    """Rejection rates at 0.05 of the trend test and of the control test under their nulls:
    every level and the control have the same true finetune perplexity (4.5), seed s of every
    source meets seed s's scratch curve (the dependence the tests must survive)."""
    truth = level_truth(n_levels)
    found = simulated_verdicts(dict.fromkeys(truth.divergence, 4.5), truth, n_seeds, n_studies,
                               seed=seed)
    return (float((found["p_trend"] < trend.ALPHA).mean()),
            float((found["p_control"] < trend.ALPHA).mean()))


def order_flag_rate(perplexities: tuple[float, ...], n_seeds: int, n_studies: int, *,
                    seed: int = 0) -> pd.Series:
    """Per adjacent step ("lv1/lv2", …): the share of simulated studies whose step is flagged
    as reversed (:mod:`xfer.analysis.order`), the levels at true finetune ``perplexities``
    (least divergent first), with a control at 6.0 (D_T ≈ 0)."""
    truth = level_truth(len(perplexities))
    sources = {**{f"lv{i}": p for i, p in enumerate(perplexities, start=1)}, "ctl": 6.0}
    found = simulated_verdicts(sources, truth, n_seeds, n_studies, seed=seed)
    steps = [f"lv{i}/lv{i + 1}" for i in range(1, len(perplexities))]
    return pd.Series({s: float(found["order_broken"].str.split(", ").map(
        lambda b, s=s: s in b).mean()) for s in steps})


PAPER_SOURCES = ("en", "ru", "zh")
PAPER_TARGETS = ("ar", "de", "en", "es", "fi", "id", "ja", "ko", "ru", "zh")


def null_correlation_study(rng: np.random.Generator, budgets: int = 2) -> pd.DataFrame:
    """One null study of the paper's design (3 sources x 10 targets, no source = target, at
    ``budgets`` budgets): a variable with source and target effects (constant over budgets, like
    a distance) and a D_T with its own, independent source, target and budget effects."""
    src_x, tgt_x = rng.normal(size=3), rng.normal(size=10)
    src_y, tgt_y = rng.normal(size=3), rng.normal(size=10)
    rows = []
    for i, s in enumerate(PAPER_SOURCES):
        for j, t in enumerate(PAPER_TARGETS):
            if s == t:
                continue
            x = src_x[i] + tgt_x[j] + rng.normal(scale=0.5)
            for b in range(budgets):
                rows.append((s, t, b, x, src_y[i] + tgt_y[j] + b + rng.normal(scale=0.5)))
    return pd.DataFrame(rows, columns=["init", "target", "budget", "x", "d_t"])


def correlation_level(n_studies: int, *, n_resamples: int = 199, seed: int = 0,
                      permute: str = "languages") -> float:
    """Share of null studies whose permutation p < 0.05: ``permute`` "languages" (source and
    target labels, the report's test), "pairs" (whole pairs) or "cells" (single cells)."""
    rng = np.random.default_rng(seed)
    hits = 0
    for i in range(n_studies):
        f = null_correlation_study(rng)
        labels = {"languages": [f["init"], f["target"]],
                  "pairs": [f["init"] + f["target"]], "cells": []}[permute]
        c = spearman(f["x"], f["d_t"], labels=labels, slots=f["budget"],
                     n_resamples=n_resamples, seed=i)
        hits += c.p < 0.05
    return hits / n_studies


def alpha_coverage(n_seeds: int, n_studies: int, *, alpha: float = 0.3, sigma: float = 0.15,
                   pooled: bool = False, seed: int = 0) -> float:
    """Share of simulated fits whose 95% t interval over the seeds' fitted α covers the true
    ``alpha``: per seed D_T = k·D_F^α·exp(N(0, ``sigma``)) at 5, 10, 20 and 40 kB. ``pooled``:
    a second target with its own k (a tenth) at 20 and 40 kB only, fitted with target fixed
    effects (:func:`xfer.analysis.powerlaw.within_slope`)."""
    rng = np.random.default_rng(seed)
    d_f = np.array([5e3, 1e4, 2e4, 4e4] + ([2e4, 4e4] if pooled else []))
    k = np.array([50.0] * 4 + ([5.0] * 2 if pooled else []))
    groups = np.array([0] * 4 + ([1] * 2 if pooled else []))
    hits = 0
    for _ in range(n_studies):
        fits = [within_slope(d_f, k * d_f ** alpha * np.exp(rng.normal(0, sigma, len(d_f))),
                             groups) for _ in range(n_seeds)]
        low, high = t_interval(fits)
        hits += low <= alpha <= high
    return hits / n_studies
