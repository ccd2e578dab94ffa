"""Per-seed statistics of the paper's claims (:mod:`xfer.analysis.claims`).

Each seed of a study is one whole replicate (its own pretrains, its own scratch curves, its own
finetunes), so a claim's statistic is computed once per seed and its interval is taken over the
seeds (:func:`xfer.analysis.claim_tests.t_bounds`): targets and sources within a seed share that
seed's pretrains and scratch curves and are not independent of each other.

Inputs are per-seed transfer rows at one finetune budget (``init``, ``target``, ``seed``,
``d_t_mib`` MiB of the target's bytes, ``d_t_en_mib`` MiB of English bytes, ``bound``). A value
whose D_E was clamped at an end of the scratch curve (``bound`` ≠ "exact") is a bound, not an
estimate: it never enters a statistic, and what it removes is counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from xfer.analysis.claim_tests import finite, numeric
from xfer.analysis.transfer import EXACT, cross_lingual

STAND_OUT_K = 3.0  # the odd source's distance from the other two's midpoint ≥ 3× their gap
STAND_OUT_REFUTE = -0.1  # refuted below -10% of the level: selection noise biases it down
COMPARABLE_RATIO = 3.0  # a target's smallest source D_T ≥ its largest / 3
COMPARABLE_REFUTE = -0.2  # refuted below -20% of the level: noise biases min − max/3 down


def with_seed(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with a ``seed`` column (0 where a table has none: one replicate)."""
    return rows if "seed" in rows.columns else rows.assign(seed=0)


def cube(small: pd.DataFrame, sources: Sequence[str]) -> pd.DataFrame:
    """(target, seed) × ``sources`` table of D_T (MiB); bounds and non-finite values NaN."""
    small = with_seed(small)
    rows = small[small["init"].isin(sources)]
    exact = rows["d_t_mib"].where(rows["bound"] == EXACT)
    table = exact.groupby([rows["target"], rows["seed"], rows["init"]]).mean().unstack("init")
    return table.reindex(columns=list(sources))


def seed_matrix(table: pd.DataFrame, target: str) -> pd.DataFrame:
    """Seeds × sources D_T into ``target`` from a :func:`cube`: the seeds with an exact,
    finite value for every source."""
    rows = table[table.index.get_level_values("target") == target].droplevel("target")
    return rows[np.isfinite(rows.to_numpy()).all(axis=1)]


def _odd_index(means: np.ndarray) -> int:
    """The index of the source farthest from the middle of three (top or bottom)."""
    order = sorted(range(3), key=lambda i: means[i])  # Python's sort: stable on ties
    low, mid, high = means[order]
    return int(order[2] if high - mid >= mid - low else order[0])


def stand_out_terms(m: np.ndarray, k: float = STAND_OUT_K) -> np.ndarray:
    """Per seed (rows of the seeds × 3 sources array ``m``): c − k·e, where the odd source and
    the orientation of c and e are chosen on the *other* seeds (cross-fitting, so choosing after
    seeing the data does not bias the seed's own value): c is the odd source's distance from the
    other two's midpoint, e the other two's gap, each signed so that the other seeds see it
    positive. Its mean over seeds estimates |c| − k·|e| (an absolute value taken within one seed
    would add that seed's noise to |e|). Positive: the odd source stands out by more than k times
    the other two's gap."""
    out = np.full(len(m), np.nan)
    if len(m) < 2:
        return out
    for s in range(len(m)):
        others = np.delete(m, s, axis=0).mean(axis=0)
        odd = _odd_index(others)
        a, b = (i for i in range(3) if i != odd)
        c_sign = 1.0 if others[odd] >= (others[a] + others[b]) / 2 else -1.0
        e_sign = 1.0 if others[a] >= others[b] else -1.0
        c = c_sign * (m[s, odd] - (m[s, a] + m[s, b]) / 2)
        e = e_sign * (m[s, a] - m[s, b])
        out[s] = c - k * e
    return out


def comparable_terms(m: np.ndarray, ratio: float = COMPARABLE_RATIO) -> np.ndarray:
    """Per seed (rows of seeds × sources ``m``): min − max / ``ratio`` over the seed's own
    sources; positive when the smallest D_T is within a factor ``ratio`` of the largest (and
    positive). The seed's own min and max are biased apart by noise: *supported* only gets
    harder, and *not supported* waits for :data:`COMPARABLE_REFUTE`."""
    return m.min(axis=1) - m.max(axis=1) / ratio


def per_target(small: pd.DataFrame, sources: Sequence[str],
               terms: callable) -> tuple[pd.DataFrame, list[str]]:
    """Seeds × targets table of ``terms`` over each target finetuned from every one of
    ``sources`` (sources themselves are not targets here), each divided by the target's level
    (the mean |D_T| of its sources over all seeds) so that targets weigh alike and the value is
    a share of the level; and the targets that had every source but fewer than two seeds with
    exact values (bounds), left out."""
    columns, left_out = {}, []
    table = cube(small, sources)
    for target in sorted(set(small["target"]) - set(sources)):
        m = seed_matrix(table, target)
        trained = set(small.loc[small["target"] == target, "init"]) >= set(sources)
        if len(m) < 2:
            left_out += [target] if trained else []
            continue
        values = m.to_numpy()
        level = float(np.abs(values).mean())
        if level > 0:
            columns[target] = pd.Series(terms(values) / level, index=m.index)
    return pd.DataFrame(columns), left_out


def seed_means(table: pd.DataFrame) -> np.ndarray:
    """Per seed, the mean over targets (columns) of a seeds × targets table: the replicate's
    value of a claim averaged over the targets it has (NaN where a seed has none)."""
    return table.mean(axis=1).to_numpy()


def paired_differences(small: pd.DataFrame, first: str, second: str,
                       target: str) -> np.ndarray:
    """Per seed, ``first``→target minus ``second``→target (same seed, same target scratch
    curve: the pairing removes the scratch curve's seed noise); exact values only."""
    m = seed_matrix(cube(small, [first, second]), target)
    return (m[first] - m[second]).to_numpy()


def exact_values(small: pd.DataFrame, source: str, target: str,
                 value: str = "d_t_mib") -> tuple[np.ndarray, int]:
    """The per-seed exact values of source→target and the count of bounds left out."""
    pair = small[(small["init"] == source) & (small["target"] == target)]
    return finite(pair[pair["bound"] == EXACT][value]), int((pair["bound"] != EXACT).sum())


def _within(x: np.ndarray, y: np.ndarray, groups: np.ndarray,
            extra: np.ndarray | None = None) -> np.ndarray:
    """Least-squares slopes of y on x (and ``extra``) with one intercept per group."""
    cols = [x] if extra is None else [x, extra]
    frame = pd.DataFrame({"g": groups, "y": y, **{f"x{i}": c for i, c in enumerate(cols)}})
    centred = frame.drop(columns="g") - frame.groupby("g").transform("mean")
    design = centred[[f"x{i}" for i in range(len(cols))]].to_numpy()
    if np.linalg.matrix_rank(design) < design.shape[1]:
        return np.full(design.shape[1], np.nan)
    return np.linalg.lstsq(design, centred["y"].to_numpy())[0]


def power_law_terms(rows: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Per seed: ``alpha``, the slope of log D_T on log D_F (bytes) with one intercept per
    (source, target) pair, and ``bend``, the midpoint gap (in log D_T) between a quadratic in
    log D_F fitted the same way and the straight line between the budget range's ends (γ·h²
    with h half the log range): 0 for an exact power law. Uses finetuned rows with an exact,
    positive D_T; returns the table, the points used and the points left out (bounds and
    D_T ≤ 0, which a log cannot take)."""
    rows = with_seed(rows)
    ft = rows[cross_lingual(rows)]
    usable = (ft["bound"] == EXACT) & (numeric(ft["d_t"]) > 0)
    fit = ft[usable]
    out = []
    for seed, g in fit.groupby("seed"):
        x = np.log(g["budget"].to_numpy())
        y = np.log(g["d_t"].to_numpy())
        groups = g.groupby(["init", "target"]).ngroup().to_numpy()  # one intercept per pair
        half = (x.max() - x.min()) / 2
        (alpha,) = _within(x, y, groups)
        _, gamma = _within(x, y, groups, x**2)
        out.append({"seed": seed, "alpha": alpha, "bend": gamma * half**2})
    return pd.DataFrame(out, columns=["seed", "alpha", "bend"]), int(usable.sum()), \
        int((~usable).sum())


def budget_span(rows: pd.DataFrame) -> tuple[int, float]:
    """The finetune budgets' count and their span (largest / smallest)."""
    ft = rows[cross_lingual(rows)]
    budgets = sorted(set(ft["budget"]))
    return len(budgets), (budgets[-1] / budgets[0] if budgets and budgets[0] > 0 else math.nan)
