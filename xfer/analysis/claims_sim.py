"""Simulated error rates and power of every claim of :mod:`xfer.analysis.claims` at the small
study's design (3 seeds; sources en, ru, zh and pt→es; the paper's ten targets; finetune budgets
1.5K, 4K, 12K bytes), through the claims' own functions.

A simulated study draws per-seed D_T the way a real one varies: each seed has its own pretrain per
source (an effect shared by all of that source's finetunes) and its own scratch curve per target
(shared by all finetunes into it), plus each finetune's own noise; ``noise`` is the seeds'
standard deviation relative to the mean |D_T|. For each claim, two scenarios:

- *null*: the claim exactly at the edge of its declared region (e.g. the smallest source at
  exactly a third of the largest; ρ exactly 0.3): the chance of *supported* there is the false
  supported rate;
- *paper*: an alternative shaped like the paper's numbers (Table 2, Table 6, its ρ), scaled: the
  chance of *not supported* there is the false not-supported rate, the chance of *supported*
  the power.

Correlation claims draw contamination and distances with crossed source and target effects
(Gaussian; Spearman ρ_S = (6/π)·asin(r/2) for Pearson r).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from xfer.analysis import claim_verdicts as cv
from xfer.analysis import claims
from xfer.analysis.claim_tests import NOT_SUPPORTED, SUPPORTED
from xfer.analysis.premium import premium_of

BUDGETS = (1500, 4000, 12000)
SEEDS = 3
SOURCES = claims.PAPER_SOURCES
TARGETS = ("ar", "de", "en", "es", "fi", "id", "ja", "ko", "ru", "zh")
NOISES = (0.1, 0.3, 0.6)  # seed standard deviation / mean |D_T|
SHARES = (0.4, 0.3)  # of the seed variance: the source's pretrain, the target's scratch curve
DISTANCES = ("syntactic", "geographic", "genetic")


def paper_means() -> dict[tuple[str, str], float]:
    """(source, target) -> the paper's D_T (MiB of the target's bytes, Table 2 and pt→es)."""
    out = {(s, t): v for t, row in claims.PAPER_DT.items() for s, v in row.items()}
    out[claims.SPANISH_CONTROL] = claims.PAPER_ES["pt"]
    return out


def draw_rows(rng: np.random.Generator, means: dict[tuple[str, str], float], *,
              noise: float = 0.3, alpha: float = 0.5, bend: float = 0.0,
              seeds: int = SEEDS, budgets: tuple[int, ...] = BUDGETS) -> pd.DataFrame:
    """Per-seed transfer rows of a simulated study: D_T(budget) = mean·(b/b₀)^α·e^{bend curve} +
    the seed's pretrain effect + the seed's scratch effect + noise, all scaled by (b/b₀)^α."""
    scale = noise * float(np.mean(np.abs(list(means.values()))))
    sources = sorted({s for s, _ in means})
    targets = sorted({t for _, t in means})
    pre = rng.standard_normal((len(sources), seeds)) * scale * math.sqrt(SHARES[0])
    scr = rng.standard_normal((len(targets), seeds)) * scale * math.sqrt(SHARES[1])
    cell = scale * math.sqrt(1 - sum(SHARES))
    x = np.log(np.asarray(budgets, float) / budgets[0])
    centre, half = (x.max() + x.min()) / 2, (x.max() - x.min()) / 2
    shape = np.exp(alpha * x + (bend / half**2 if half else 0.0) * (x - centre) ** 2)
    out = []
    for (source, target), mean in means.items():
        i, j = sources.index(source), targets.index(target)
        for seed in range(seeds):
            base = mean + pre[i, seed] + scr[j, seed] + cell * rng.standard_normal(len(budgets))
            for budget, value in zip(budgets, base * shape, strict=True):
                out.append((source, target, budget, seed, value))
    rows = pd.DataFrame(out, columns=["init", "target", "budget", "seed", "d_t_mib"])
    premium = {t: premium_of(t) for t in targets}
    return rows.assign(d_t=rows["d_t_mib"] * 2**20, bound="exact",
                       d_t_en_mib=rows["d_t_mib"] / rows["target"].map(premium))


def draw_corr(rng: np.random.Generator, rho: float, *, budgets: int = 2,
              noise: float = 0.3) -> pd.DataFrame:
    """Correlation cells of a simulated study: every pair of :func:`paper_means` at ``budgets``
    budgets, D_T and each contamination and distance column with Spearman ρ ``rho`` to D_T in
    the population, each built from a source effect, a target effect and a pair effect; each
    budget's D_T adds its own seed noise (``noise`` × the D_T's standard deviation)."""
    pairs = list(paper_means())
    r = 2 * math.sin(rho * math.pi / 6)  # Pearson r of the Gaussians giving Spearman rho
    sources = sorted({s for s, _ in pairs})
    targets = sorted({t for _, t in pairs})
    si = np.array([sources.index(s) for s, _ in pairs])
    ti = np.array([targets.index(t) for _, t in pairs])

    def crossed() -> np.ndarray:
        return (rng.standard_normal(len(sources))[si] + rng.standard_normal(len(targets))[ti]
                + rng.standard_normal(len(pairs))) / math.sqrt(3)

    y = crossed()
    columns = {**{c: None for c in claims.CONTAMINATION.values()},
               **{f"distance_{d}": None for d in DISTANCES}}
    for c in columns:
        columns[c] = r * y + math.sqrt(1 - r * r) * crossed()
    frames = []
    for b in range(budgets):
        d_t = y + noise * rng.standard_normal(len(pairs))  # the budget's own seed noise
        frames.append(pd.DataFrame({"init": [s for s, _ in pairs], "target": [t for _, t in pairs],
                                    "budget": 1500 * (b + 1), "d_t": d_t, **columns}))
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class Scenario:
    """A claim's scenario: its name, the claim rows it decides, and how a study is drawn."""

    claim: str
    kind: str  # "null" (edge of the region) or "paper" (the paper-shaped alternative)
    draw: Callable[[np.random.Generator, float], tuple[pd.DataFrame, pd.DataFrame | None]]



def _per_target(pattern: tuple[float, ...]) -> dict[tuple[str, str], float]:
    """Every target finetuned from en, ru, zh at ``pattern`` (rotated per target, so no source
    is always the odd one), the rest of the design at the paper's values."""
    means = paper_means()
    three = [t for t, row in claims.PAPER_DT.items() if len(row) == 3]
    for k, target in enumerate(three):
        for i, source in enumerate(SOURCES):
            means[(source, target)] = 50.0 * pattern[(i + k) % 3]
    return means


def _commuting(ratio: float) -> dict[tuple[str, str], float]:
    """Every commuting pair with D_T in English bytes in the paper's order, the larger
    direction ``ratio`` × the smaller (converted back into each target's bytes)."""
    means = paper_means()
    for a, b in claims.COMMUTING:
        big, small = ((b, a), (a, b)) if claims.PAPER_DT[a][b] > claims.PAPER_DT[b][a] \
            else ((a, b), (b, a))
        means[big] = 50.0 * ratio * premium_of(big[1])
        means[small] = 50.0 * premium_of(small[1])
    return means


def _rows_only(means: dict, **kw: float) -> Callable:
    return lambda rng, noise: (draw_rows(rng, means, noise=noise, **kw), None)


def _corr_only(rho: float) -> Callable:
    return lambda rng, noise: (pd.DataFrame(), draw_corr(rng, rho, noise=noise))


EDGE_RATIO = 1 + claims.COMMUTE_MARGIN / (1 - claims.COMMUTE_MARGIN / 2)  # (x−y)/mean = margin
SCENARIOS = [
    Scenario("comparable", "null", _rows_only(_per_target((3.0, 2.0, 1.0)))),
    Scenario("comparable", "paper", _rows_only(paper_means())),
    Scenario("stands out", "null", _rows_only(_per_target((0.0, 1.0, 3.5)))),
    Scenario("stands out", "equal", _rows_only(_per_target((1.0, 1.0, 1.0)))),
    Scenario("stands out", "paper", _rows_only(paper_means())),
    Scenario("pt→es", "null", _rows_only({**paper_means(), ("pt", "es"): claims.PAPER_ES["en"]})),
    Scenario("pt→es", "paper", _rows_only(paper_means())),
    Scenario("commutative", "null", _rows_only(_commuting(EDGE_RATIO))),
    Scenario("commutative", "symmetric", _rows_only(_commuting(1.0))),
    Scenario("commutative", "paper", _rows_only(paper_means())),
    Scenario("contamination", "null", _corr_only(0.0)),
    Scenario("contamination", "null", _corr_only(claims.WEAK_RHO)),
    Scenario("contamination", "paper", _corr_only(0.23)),
    Scenario("typology", "null", _corr_only(claims.WEAK_RHO)),
    Scenario("typology", "paper", _corr_only(-0.12)),
    Scenario("power-law form", "null", _rows_only(paper_means(), bend=cv.BEND_MARGIN)),
    Scenario("power-law form", "paper", _rows_only(paper_means())),
    Scenario("α near 0.18", "null", _rows_only(paper_means(), alpha=0.36)),
    Scenario("α near 0.18", "paper", _rows_only(paper_means(), alpha=0.18)),
]
CLAIMS: dict[str, Callable[[pd.DataFrame, pd.DataFrame | None], list[dict]]] = {
    "comparable": lambda rows, corr: [claims.comparable_claim(claims.smallest_rows(rows))],
    "stands out": lambda rows, corr: [claims.stands_out_claim(claims.smallest_rows(rows))],
    "pt→es": lambda rows, corr: [claims.spanish_claim(claims.smallest_rows(rows))],
    "commutative": lambda rows, corr: [claims.commutativity_claim(claims.smallest_rows(rows),
                                                                  a, b)
                                       for a, b in claims.COMMUTING
                                       if claims.paper_gap(a, b) > claims.COMMUTE_MARGIN],
    "contamination": lambda rows, corr: [claims.contamination_claim(corr, v)
                                         for v in claims.PAPER_RHO],
    "typology": lambda rows, corr: [claims.typology_claim(corr)],
    "power-law form": lambda rows, corr: claims.power_law_claims(rows)[:1],
    "α near 0.18": lambda rows, corr: claims.power_law_claims(rows)[1:],
}


def verdicts(rows: pd.DataFrame, corr: pd.DataFrame | None, claim: str) -> list[str]:
    """The verdicts of ``claim``'s rows on one simulated study, through the claim's own function
    in :mod:`xfer.analysis.claims`."""
    return [r["verdict"] for r in CLAIMS[claim](rows, corr)]


def rates(scenario: Scenario, noise: float, studies: int, seed: int = 0) -> tuple[float, float]:
    """Shares of *supported* and *not supported* over ``studies`` simulated studies (every row of
    the claim counts as one decision)."""
    rng = np.random.default_rng(seed)
    counts, total = np.zeros(2), 0
    for _ in range(studies):
        for v in verdicts(*scenario.draw(rng, noise), scenario.claim):
            counts += (v == SUPPORTED, v == NOT_SUPPORTED)
            total += 1
    return float(counts[0] / total), float(counts[1] / total)
