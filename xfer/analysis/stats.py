"""Spearman rank correlation with permutation-test p-values.

The cells of a study are not exchangeable: the cells of one (source, target) pair share their
distance at every budget, and pairs that share a source or a target share that language's effect
on D_T and on the variable (the paper's design: 3 sources x 10 targets). Permuting single cells,
or even whole pairs, then pretends there are more independent units than there are and rejects
too often under the null. The test here permutes *language labels* (a two-way, Mantel-style
permutation): the variable's values of source i move to source π(i) and those of target j to
target σ(j), π and σ drawn independently, at the same budget (slot); cells the permuted design
lacks drop out. With a single label array it permutes whole blocks; with none, single points.
Its level under null data with source and target effects is measured in
``bench/calibration.py`` (and ``tests/test_calibration.py``).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

DEFAULT_RESAMPLES = 9999
LABEL_COLUMNS = ("init", "target")


@dataclass(frozen=True)
class Correlation:
    """Spearman ρ between two variables over ``n`` paired points in ``n_pairs`` distinct label
    combinations (e.g. (source, target) pairs); ``p`` two-sided."""

    n: int
    n_pairs: int
    rho: float
    p: float


def _masked_rho(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ along the last axis over the points where both are finite (vectorised)."""
    ok = np.isfinite(x) & np.isfinite(y)
    rx = stats.rankdata(np.where(ok, x, np.nan), axis=-1, nan_policy="omit")
    ry = stats.rankdata(np.where(ok, y, np.nan), axis=-1, nan_policy="omit")
    with warnings.catch_warnings():  # a relabelling may leave no common cell: NaN, not noise
        warnings.simplefilter("ignore", RuntimeWarning)
        rx = rx - np.nanmean(rx, axis=-1, keepdims=True)
        ry = ry - np.nanmean(ry, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(rx * ry, axis=-1) / np.sqrt(
            np.nansum(rx * rx, axis=-1) * np.nansum(ry * ry, axis=-1))


def _moved(grid: np.ndarray, orders: Sequence[np.ndarray]) -> np.ndarray:
    """``grid`` (one axis per label array, then slots) with each label axis reordered by its
    ``orders`` entry (shape [..., n_labels]); the leading axes of the orders are resamples."""
    batch = np.asarray(orders[0]).shape[:-1]
    index = []
    for i, order in enumerate(orders):
        shape = [*batch] + [1] * len(orders)
        shape[len(batch) + i] = np.asarray(order).shape[-1]
        index.append(np.asarray(order, dtype=np.intp).reshape(shape))
    return grid[tuple(index)]


def spearman(x: np.ndarray, y: np.ndarray, *, labels: Sequence[Sequence] = (),
             slots: Sequence | None = None, n_resamples: int = DEFAULT_RESAMPLES,
             seed: int = 0) -> Correlation:
    """Spearman ρ of ``x`` and ``y`` (points with a NaN dropped) and its permutation p-value.

    ρ equals ``scipy.stats.spearmanr`` (ties get average ranks). ``labels`` gives label arrays
    (e.g. each point's source and its target) and ``slots`` each point's place within them (e.g.
    the budget): the test permutes each label array's values independently, the value of
    ``x`` at labels (i, j) and slot s moving to (π(i), σ(j)) at slot s (a place the design
    lacks drops out). With no label array every point is its own block (the plain pairings
    test). Two-sided: p is the share of permutations whose |ρ| reaches the observed |ρ|, over
    every combination of permutations when there are fewer than ``n_resamples`` (exact), else
    over ``n_resamples`` seeded draws plus the observed one ((hits + 1) / (draws + 1)). Fewer
    than three points, a single label combination, or a constant variable give ρ = p = NaN.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    labels = [np.asarray(lab) for lab in labels] or [np.arange(len(x))]
    slots = np.zeros(len(x)) if slots is None else np.asarray(slots)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, slots = x[ok], y[ok], slots[ok]
    coded = [np.unique(lab[ok], return_inverse=True) for lab in labels]
    slot_ids, s = np.unique(slots, return_inverse=True)
    places = list(zip(*(inv.tolist() for _, inv in coded), s.tolist(), strict=True))
    n = int(len(x))
    n_pairs = len(set(p[:-1] for p in places))
    if n < 3 or n_pairs < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(n, n_pairs, float("nan"), float("nan"))
    if len(set(places)) != n:
        raise ValueError("two points share their labels and a slot")
    grid_x = np.full([len(ids) for ids, _ in coded] + [len(slot_ids)], np.nan)
    grid_y = np.full_like(grid_x, np.nan)
    index = (*(inv for _, inv in coded), s)
    grid_x[index], grid_y[index] = x, y
    flat_y = grid_y.ravel()

    observed = float(_masked_rho(x[None], y[None])[0])
    orders = _orders([len(ids) for ids, _ in coded], n_resamples, seed)
    null = np.concatenate([_masked_rho(_moved(grid_x, [o[i:i + CHUNK] for o in orders]).reshape(
        min(CHUNK, len(orders[0]) - i), -1), flat_y) for i in range(0, len(orders[0]), CHUNK)])
    exact = len(orders[0]) < n_resamples
    hits = int(np.sum(np.abs(null) >= abs(observed) - 1e-12))
    p = hits / len(null) if exact else (hits + 1) / (len(null) + 1)
    return Correlation(n, n_pairs, observed, float(min(1.0, p)))


CHUNK = 2000  # permutations whose statistics are computed at once (memory: CHUNK x cells)


def _orders(sizes: Sequence[int], n_resamples: int, seed: int) -> list[np.ndarray]:
    """Permutations of each label set, as [resamples, size] index arrays: every combination
    when there are fewer than ``n_resamples`` (the exact null distribution), else
    ``n_resamples`` independent uniform draws (seeded)."""
    total = math.prod(math.factorial(n) for n in sizes)
    if total < n_resamples:
        combos = list(itertools.product(*(itertools.permutations(range(n)) for n in sizes)))
        return [np.array([c[i] for c in combos], dtype=np.intp) for i in range(len(sizes))]
    rng = np.random.default_rng(seed)
    return [rng.permuted(np.tile(np.arange(n), (n_resamples, 1)), axis=1) for n in sizes]



def correlation_table(frame: pd.DataFrame, against: Mapping[str, str], value: str = "d_t", *,
                      labels: Sequence[str] | None = LABEL_COLUMNS, slot: str = "budget",
                      n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Spearman ρ of ``frame[value]`` against each column in ``against`` (name -> column).

    The permutation test permutes the values of each ``labels`` column (default: init and
    target, i.e. source and target languages) independently, aligned by the ``slot`` column
    (budget); ``labels=None`` (or a frame without those columns) shuffles single rows. Returns
    one row per variable: ``variable``, ``n`` (points), ``n_pairs`` (label combinations),
    ``rho``, ``p``. Missing columns give n = 0.
    """
    keys: list[np.ndarray] = []
    slots = None
    if labels and all(c in frame.columns for c in labels):
        keys = [frame[c].astype(str).to_numpy() for c in labels]
        slots = frame[slot].to_numpy() if slot in frame.columns else None
    columns = ["variable", "n", "n_pairs", "rho", "p"]
    rows = []
    for name, column in against.items():
        if column not in frame.columns or value not in frame.columns:
            rows.append({"variable": name, "n": 0, "n_pairs": 0, "rho": float("nan"),
                         "p": float("nan")})
            continue
        c = spearman(frame[value].to_numpy(float), frame[column].to_numpy(float),
                     labels=keys, slots=slots, n_resamples=n_resamples, seed=seed)
        rows.append({"variable": name, "n": c.n, "n_pairs": c.n_pairs, "rho": c.rho, "p": c.p})
    return pd.DataFrame(rows, columns=columns)
