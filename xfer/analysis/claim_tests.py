"""The declared three-state tests behind "The paper's claims" (:mod:`xfer.analysis.claims`).

Every claim is decided from a confidence interval against a declared region, at level
``ALPHA`` = 0.05 per side (a two-sided 1 − 2α interval, the TOST convention):

- :func:`exceeds` (a directional claim θ > ``floor``): *supported* when the interval's low end is
  above ``floor`` (a one-sided α-level test of θ ≤ floor); *not supported* when its high end is
  below ``margin`` ≥ floor (a one-sided α-level test that θ is under the smallest effect the
  claim needs); *inconclusive* otherwise.
- :func:`within` (an equivalence claim lo < θ < hi): *supported* when the interval lies inside
  (lo, hi) (two one-sided tests); *not supported* when it lies wholly outside; inconclusive
  otherwise.

So each verdict's false rate is at most α at the region's edge, whatever the spread, and both
verdicts are reachable. Where the interval is wider than the region a claim needs, the decision
says so in ``reach``: the design (seeds, targets, languages) cannot reach that verdict at this
spread. The error rates and power of every claim at the small study's design are simulated in
:mod:`xfer.analysis.claims_sim` (``bench/claims.py``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
RHO_CLIP = 0.9999  # |ρ| = 1 has no Fisher z: clipped here


@dataclass(frozen=True)
class Decision:
    """A claim's estimate, its 1 − 2α interval (in the statistic's unit), the verdict, and a
    note on what the design cannot reach ("" when both verdicts are reachable)."""

    estimate: float
    low: float
    high: float
    verdict: str
    reach: str = ""

    def interval_text(self, digits: int = 3) -> str:
        """``estimate [low, high]`` in ``digits`` significant digits."""
        return f"{_g(self.estimate, digits)} [{_g(self.low, digits)}, {_g(self.high, digits)}]"


def _g(x: float, digits: int) -> str:
    return f"{x:.{digits}g}"  # NaN prints as "nan"


def undecided(why: str) -> Decision:
    """Inconclusive with no estimate: ``why`` says what the data lacks."""
    return Decision(math.nan, math.nan, math.nan, INCONCLUSIVE, why)


def numeric(values: np.ndarray) -> np.ndarray:
    """``values`` as floats; what is not a number (None, text) becomes NaN."""
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy()


def finite(values: np.ndarray) -> np.ndarray:
    """``values`` as floats without NaN, ±inf or None."""
    x = numeric(values)
    return x[np.isfinite(x)]


def t_bounds(values: np.ndarray, alpha: float = ALPHA) -> tuple[float, float, float]:
    """Mean of ``values`` (NaNs dropped) with its two-sided 1 − 2α Student t interval (n − 1
    degrees of freedom); NaNs with fewer than two values."""
    x = finite(values)
    if len(x) < 2:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    half = float(stats.t.ppf(1 - alpha, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def welch_bounds(a: np.ndarray, b: np.ndarray,
                 alpha: float = ALPHA) -> tuple[float, float, float]:
    """mean(a) − mean(b) with its two-sided 1 − 2α Welch interval (Welch–Satterthwaite degrees of
    freedom); NaNs with fewer than two finite values on a side."""
    a, b = finite(a), finite(b)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan, math.nan
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    diff = float(a.mean() - b.mean())
    if va + vb == 0:
        return diff, diff, diff
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(1 - alpha, df) * math.sqrt(va + vb))
    return diff, diff - half, diff + half


def exceeds(estimate: float, low: float, high: float, *, floor: float = 0.0,
            margin: float = 0.0) -> Decision:
    """Directional claim θ > ``floor``: supported when ``low`` > floor, not supported when
    ``high`` < ``margin`` (above floor: the smallest effect worth the claim; below it: a value
    the claim's own estimator's bias could not reach when the claim holds)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return Decision(estimate, low, high, INCONCLUSIVE, "no interval (too few values)")
    if low > floor:
        return Decision(estimate, low, high, SUPPORTED)
    if high < margin:
        return Decision(estimate, low, high, NOT_SUPPORTED)
    return Decision(estimate, low, high, INCONCLUSIVE)


def within(estimate: float, low: float, high: float, *, lo: float, hi: float) -> Decision:
    """Equivalence claim lo < θ < hi: supported when [low, high] ⊂ (lo, hi), not supported
    when the interval misses (lo, hi) entirely. ``reach`` notes an interval wider than the
    region: supported is then out of reach at this spread."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return Decision(estimate, low, high, INCONCLUSIVE, "no interval (too few values)")
    reach = ""
    if high - low >= hi - lo:
        reach = (f"supported is out of reach: the interval's width {_g(high - low, 3)} is not "
                 f"below the region's {_g(hi - lo, 3)}")
    if lo < low and high < hi:  # narrower than the region: nothing is out of reach
        return Decision(estimate, low, high, SUPPORTED)
    if high <= lo or low >= hi:
        return Decision(estimate, low, high, NOT_SUPPORTED, reach)
    return Decision(estimate, low, high, INCONCLUSIVE, reach)


def bonferroni(alpha: float, tests: int) -> float:
    """The per-test level that keeps ``tests`` tests' family-wise rate at ``alpha``."""
    return alpha / max(1, tests)


def _weighted_ranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) of ``values`` (n) in each resample where cell i appears
    ``weights[b, i]`` times (B × n): the copies of a value share the mean of the ranks they
    occupy, as :func:`scipy.stats.rankdata` gives them on the expanded sample."""
    distinct, group = np.unique(values, return_inverse=True)
    per_value = weights @ (values[:, None] == distinct[None, :])  # B × distinct values
    before = np.cumsum(per_value, axis=1) - per_value
    return (before + (per_value + 1) / 2)[:, group]


def _weighted_rho(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spearman ρ of x on y in each resample of ``weights`` (B × n copies per cell)."""
    rx, ry = _weighted_ranks(x, weights), _weighted_ranks(y, weights)
    with np.errstate(all="ignore"):  # no cell, or no spread: 0/0 is NaN
        total = weights.sum(axis=1, keepdims=True)
        dx = rx - (weights * rx).sum(axis=1, keepdims=True) / total
        dy = ry - (weights * ry).sum(axis=1, keepdims=True) / total
        cov = (weights * dx * dy).sum(axis=1)
        return cov / np.sqrt((weights * dx * dx).sum(axis=1) * (weights * dy * dy).sum(axis=1))


def twoway_rho_bounds(y: np.ndarray, x: np.ndarray, rows: np.ndarray, cols: np.ndarray, *,
                      alpha: float = ALPHA, resamples: int = 1000,
                      seed: int = 0) -> tuple[float, float, float]:
    """Spearman ρ of ``y`` on ``x`` over cells with its two-sided 1 − 2α interval from the
    two-way (pigeonhole) bootstrap: sources (``rows``) and targets (``cols``) are resampled with
    replacement independently and every cell of a drawn (source, target) pair enters as often as
    the pair is drawn, so cells sharing a language move together. The interval is normal on
    Fisher's z with the bootstrap's standard deviation over the resamples that have a ρ (a
    resample where a variable is constant has none); NaNs with fewer than 4 cells, a constant
    variable or fewer than two sources or targets."""
    frame = pd.DataFrame({"y": numeric(y), "x": numeric(x), "r": np.asarray(rows),
                          "c": np.asarray(cols)})
    frame = frame[np.isfinite(frame["y"]) & np.isfinite(frame["x"])]
    if len(frame) < 4:
        return math.nan, math.nan, math.nan
    y, x = frame["y"].to_numpy(), frame["x"].to_numpy()
    r, c = (pd.factorize(frame[k], sort=True)[0] for k in ("r", "c"))
    rho = _weighted_rho(x, y, np.ones((1, len(x)))).item()  # NaN for a constant variable
    n_r, n_c = r.max() + 1, c.max() + 1
    if min(n_r, n_c) < 2 or not math.isfinite(rho):  # one language on a side: no interval
        return rho, math.nan, math.nan
    rng = np.random.default_rng(seed)
    draws_r = rng.integers(0, n_r, (resamples, n_r))
    draws_c = rng.integers(0, n_c, (resamples, n_c))
    count_r = (draws_r[:, :, None] == np.arange(n_r)).sum(axis=1)  # copies of each source
    count_c = (draws_c[:, :, None] == np.arange(n_c)).sum(axis=1)
    boot = _weighted_rho(x, y, count_r[:, r] * count_c[:, c])
    # resamples where a variable is constant have no ρ and are left out
    z = np.arctanh(np.clip(boot[np.isfinite(boot)], -RHO_CLIP, RHO_CLIP))
    with warnings.catch_warnings():  # fewer than two resamples with a ρ: no spread, NaN
        warnings.simplefilter("ignore")
        half = float(stats.norm.ppf(1 - alpha) * np.std(z, ddof=1))
    centre = math.atanh(float(np.clip(rho, -RHO_CLIP, RHO_CLIP)))
    return rho, math.tanh(centre - half), math.tanh(centre + half)
