"""Simulations that measure the report's intervals and tests on data whose truth is known.

Each function draws many simulated studies from a stated model, runs the report's own method
on each (the shipped functions, not copies) and returns the share that covers the truth or
rejects the null. ``bench/`` prints them in full; ``tests/`` run small, seeded versions.

The measurement model (:func:`seed_d_t`): a target's true scratch curve, perplexity
ppl(B) = FLOOR + SCALE·(B / 1 kB)^−SLOPE at the default study's scratch budgets (shape and seed
noise as measured on the default study); each seed draws its own scratch curve (every point's log
perplexity moved by its own N(0, σ_s)) and its own finetune (log perplexity moved by N(0, σ_f)),
and its D_T is the finetune mapped through its own curve (Eq. 1-2,
:func:`xfer.analysis.transfer.effective_data`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from xfer.analysis import trend
from xfer.analysis.intervals import log_t_interval, t_interval
from xfer.analysis.powerlaw import within_slope
from xfer.analysis.stats import spearman
from xfer.analysis.transfer import data_transfer, effective_data, scratch_curve

BUDGETS = np.array([2e3, 5e3, 7e3, 1e4, 2e4])  # the default study's scratch budgets
FLOOR, SCALE, SLOPE = 1.5, 12.9, 0.68  # fits its mean scratch curve: 9.5, 5.8, 4.1, 3.2 at 2-20K
SIGMA_SCRATCH, SIGMA_FINETUNE = 0.02, 0.04  # its seeds' sd of log perplexity (finetunes: 0.02-0.08)
FINETUNE_BUDGET = 5e3


def true_curve(budgets: np.ndarray = BUDGETS) -> np.ndarray:
    """The noise-free scratch perplexities at ``budgets`` (bytes)."""
    return FLOOR + SCALE * (np.asarray(budgets) / 1e3) ** -SLOPE


def seed_d_t(rng: np.random.Generator, finetune_ppl: float, n_seeds: int, *,
             sigma_scratch: float = SIGMA_SCRATCH,
             sigma_finetune: float = SIGMA_FINETUNE) -> np.ndarray:
    """Per-seed D_T (bytes) of a finetune whose true perplexity is ``finetune_ppl``, each seed
    with its own noisy scratch curve and finetune."""
    base = np.log(true_curve())
    out = np.empty(n_seeds)
    for i in range(n_seeds):
        curve = scratch_curve(BUDGETS, np.exp(base + rng.normal(0, sigma_scratch, len(base))))
        ppl = finetune_ppl * np.exp(rng.normal(0, sigma_finetune))
        d_e, _ = effective_data(ppl, curve)
        out[i] = data_transfer(d_e, FINETUNE_BUDGET)[0]
    return out


FINETUNE_PPLS = (4.3, 4.5, 4.7, 4.9, 5.1, 5.3, 5.5)  # where the default study's 5K finetunes fall


def interval_coverage(n_seeds: int, n_studies: int, *,
                      finetune_ppls: tuple[float, ...] = FINETUNE_PPLS,
                      truth_draws: int = 20000, seed: int = 0,
                      method: Callable = t_interval) -> tuple[float, dict[float, float]]:
    """(pooled coverage, coverage per finetune perplexity): the share of simulated cells of
    ``n_seeds`` seeds whose interval (``method``) covers the mean per-seed D_T (itself from
    ``truth_draws`` seeds), ``n_studies`` cells spread evenly over ``finetune_ppls``."""
    rng = np.random.default_rng(seed)
    per: dict[float, float] = {}
    each = max(1, n_studies // len(finetune_ppls))
    for ppl in finetune_ppls:
        truth = float(seed_d_t(rng, ppl, truth_draws).mean())
        hits = 0
        for _ in range(each):
            low, high = method(seed_d_t(rng, ppl, n_seeds))
            hits += low <= truth <= high
        per[ppl] = hits / each
    return float(np.mean(list(per.values()))), per


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


def verdict_level(n_seeds: int, n_levels: int, n_studies: int, *, seed: int = 0) -> tuple[float,
                                                                                        float]:
    """Rejection rates at 0.05 of the trend test and of the control test under their nulls:
    every level (and the control) has the same true finetune perplexity, and seed s of every
    source shares seed s's scratch curve (the dependence the tests must survive)."""
    rng = np.random.default_rng(seed)
    base = np.log(true_curve())
    trend_hits = control_hits = 0
    for _ in range(n_studies):
        table = np.empty((n_seeds, n_levels + 1))
        for s in range(n_seeds):
            curve = scratch_curve(BUDGETS, np.exp(base + rng.normal(0, SIGMA_SCRATCH, len(base))))
            ppl = 4.5 * np.exp(rng.normal(0, SIGMA_FINETUNE, n_levels + 1))
            table[s] = data_transfer(effective_data(ppl, curve)[0], FINETUNE_BUDGET)
        trend_hits += trend.trend_p(table[:, :n_levels]) < trend.ALPHA
        control_hits += trend.below_p(table[:, n_levels], table[:, 0]) < trend.ALPHA
    return trend_hits / n_studies, control_hits / n_studies


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
