"""Intervals over seeds: Student's t interval of a mean, in the values' own unit.

Every seed-derived figure of the report (D_T and D_T in English bytes per cell, perplexities,
power-law exponents) is a mean over seeds; its interval is the t interval of that mean over the
seeds' values, each seed one independent replicate of the whole measurement (its own scratch
curve, pretrain and finetune: :func:`xfer.analysis.transfer.compute_transfer` maps seed s's
finetune through seed s's scratch curve, so both sides' seed noise is in the spread).
Perplexities are averaged in log space (the mean loss), so their interval is the t interval of
the mean log perplexity, exponentiated. Coverage is measured by simulation in
``bench/calibration.py`` (and ``tests/test_calibration.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
CELL = ["init", "target", "budget"]


def t_interval(values: Sequence[float] | np.ndarray, *,
               confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student's t interval of the mean of ``values`` (NaNs dropped), in their unit: mean ±
    t_{n-1} · sd/√n. Fewer than two finite values give NaN; equal values give that value at
    both ends."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return float("nan"), float("nan")
    mean = float(x.mean())
    half = float(stats.t.ppf((1 + confidence) / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return mean - half, mean + half


def log_t_interval(values: Sequence[float] | np.ndarray, *,
                   confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The t interval of the mean of log ``values``, exponentiated: for perplexities (positive),
    an interval of their geometric mean (exp of the mean loss, nats)."""
    x = np.asarray(values, dtype=float)
    low, high = t_interval(np.log(x[np.isfinite(x) & (x > 0)]), confidence=confidence)
    return float(np.exp(low)), float(np.exp(high))


def interval_columns(rows: pd.DataFrame, value: str, *, log: bool = False,
                     keys: Sequence[str] = CELL) -> pd.DataFrame:
    """Per group of ``keys``: ``<value>_ci_low`` and ``<value>_ci_high``, the 95% t interval
    (:func:`t_interval`, or :func:`log_t_interval` with ``log``) of ``value`` over the group's
    rows (one per seed)."""
    method = log_t_interval if log else t_interval
    out = [(*key, *method(group[value].to_numpy(float)))
           for key, group in rows.groupby(list(keys), sort=True)]
    return pd.DataFrame(out, columns=[*keys, f"{value}_ci_low", f"{value}_ci_high"])


def add_intervals(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with each cell's 95% t interval of mean D_T (``d_t_mib_ci_low``,
    ``d_t_mib_ci_high``, MiB) on every row of the cell; NaN for rows without D_T."""
    ci = interval_columns(rows[rows["bound"] != ""], "d_t_mib")
    return rows.drop(columns=["d_t_mib_ci_low", "d_t_mib_ci_high"], errors="ignore").merge(
        ci, on=CELL, how="left")
