"""The report's "The paper's claims": each claim of the paper re-tested on a study that has the
paper's languages, with the paper's figure, ours with its interval, the declared test, the
verdict, and what the design cannot reach.

Every verdict comes from a three-state test (:mod:`xfer.analysis.claim_tests`: a 1 − 2α interval
against a declared region, α = 0.05 per side), decided in :mod:`xfer.analysis.claim_verdicts`:
*supported*, *not supported* or *inconclusive*, never stronger than its test. Each seed is one
replicate (its own pretrains, scratch curves and finetunes), so per-claim statistics are computed
per seed (:mod:`xfer.analysis.claim_stats`) and their intervals are Student t over the seeds;
correlations take a two-way bootstrap over source and target languages. The simulated error
rates and power of every row at the small study's design: ``bench/claims.py``
(:mod:`xfer.analysis.claims_sim`). Scale differs from the paper's by orders of magnitude, so the
claims compare directions, ranks and shares, not magnitudes.

Inputs are :func:`xfer.analysis.analyse.run_analysis`'s tables: per-seed transfer rows (``init``,
``target``, ``budget`` bytes, ``seed``, ``d_t`` bytes, ``d_t_mib`` MiB, ``d_t_en_mib`` MiB of
English bytes, ``bound``), the correlation cells (seed means below the largest budget, with the
contamination and distance columns) and the power-law fits. Per-claim tests use the rows at the
smallest finetune budget (the paper's Table 2 budget). Bounds (clamped D_E) never enter a
statistic; what they remove is counted in the row.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from xfer.analysis import claim_stats as cs
from xfer.analysis import claim_verdicts as cv
from xfer.analysis.claim_tests import (
    ALPHA,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    Decision,
    undecided,
)
from xfer.analysis.claim_verdicts import (
    COMMUTE_MARGIN,
    CONTAMINATION,
    HERNANDEZ_ALPHA,
    PAPER_DT,
    PAPER_SOURCES,
    SPANISH_CONTROL,
    WEAK_RHO,
    paper_en,
)
from xfer.analysis.transfer import cross_lingual
from xfer.io import atomic_write

__all__ = ["ALPHA", "CONTAMINATION", "INCONCLUSIVE", "NOT_SUPPORTED", "SUPPORTED",
           "claims_section", "claims_table", "paper_en"]

CLAIM_COLUMNS = ["claim", "paper", "ours", "interval", "test", "verdict", "note"]
PAPER_ES = {"pt": 164.47, "en": 121.14, "ru": 67.88, "zh": 50.27}
PAPER_RHO = {"contamination on source": (0.191, 0.0157),
             "contamination on target": (0.265, 0.0021)}
COMMUTING = (("en", "ru"), ("en", "zh"), ("ru", "zh"))
SCALE_NOTE = ("Scale differs from the paper's by orders of magnitude (its pretrains read 6e9 "
              "bytes, D_T in tens of MiB): directions, ranks and shares are compared, not "
              "magnitudes.")
LEVEL = f"{1 - 2 * ALPHA:.0%} interval (α {ALPHA} per side)"
OVER_LEVEL = f"{1 - 2 * cv.OVER_TARGETS_ALPHA:.0%} interval (α {cv.OVER_TARGETS_ALPHA} per side)"
POWER_LAW_CLAIMS = {"bend": "D_T = k·D_F^α (the power law's form)",
                    "alpha": f"α near Hernandez et al.'s {HERNANDEZ_ALPHA} (within "
                             f"{cv.ALPHA_FACTOR:g}×)"}


def _g(x: float) -> str:
    """A number in 3 significant digits (MiB here are small)."""
    return "nan" if not math.isfinite(x) else f"{x:.3g}"


def _row(claim: str, paper: str, ours: str, decision: Decision, test: str,
         note: str = "") -> dict:
    notes = "; ".join(n for n in (decision.reach, note) if n)
    values = (claim, paper, ours, decision.interval_text(), test, decision.verdict, notes)
    return dict(zip(CLAIM_COLUMNS, values, strict=True))


def smallest_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-seed finetune rows (init ≠ scratch, init ≠ target, finite D_T) at the smallest
    finetune budget."""
    if rows.empty or not {"init", "target", "budget", "d_t_mib"} <= set(rows.columns):
        return rows.iloc[0:0]
    ft = rows[cross_lingual(rows) & np.isfinite(rows["d_t_mib"].astype(float))]
    return ft[ft["budget"] == ft["budget"].min()] if len(ft) else ft


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _left_text(left_out: list[str]) -> str:
    return f"left out (bounds or < 2 seeds): {', '.join(left_out)}" if left_out else ""


def comparable_claim(small: pd.DataFrame) -> dict:
    """D_T from distant sources is comparable for a target (:func:`claim_verdicts.comparable`)."""
    over, r = cv.comparable(small), cs.COMPARABLE_RATIO
    paper = [v for v in PAPER_DT.values() if len(v) == 3]
    paper_ok = sum(min(v.values()) >= max(v.values()) / r for v in paper)
    return _row("D_T from distant sources is comparable for a target",
                f"min ≥ max/{r:g} in {paper_ok}/{len(paper)} targets (ar: en 101.02, ru 99.00, "
                "zh 90.63 MiB)",
                f"mean over {over.targets} targets of (min − max/{r:g}) / level, {over.seeds} "
                "seeds", over.decision,
                f"per seed: mean over targets of min − max/{r:g} of the seed's sources' D_T over "
                f"the target's mean D_T; Student t {OVER_LEVEL} over seeds; > 0 supports, "
                f"< {cs.COMPARABLE_REFUTE:g} refutes", _left_text(over.left_out))


def stands_out_claim(small: pd.DataFrame) -> dict:
    """One source stands out per target, the other two close (:func:`claim_verdicts.stands_out`:
    the odd source chosen on the other seeds)."""
    over, k = cv.stands_out(small), cs.STAND_OUT_K
    paper = [np.array(list(v.values())) for v in PAPER_DT.values() if len(v) == 3]
    paper_ok = sum(float(cs.stand_out_terms(np.vstack([v, v]))[0]) > 0 for v in paper)
    return _row("one source stands out per target, the other two close",
                f"odd source ≥ {k:g}× the other two's gap from their midpoint in "
                f"{paper_ok}/{len(paper)} targets (de: en 95.25 vs ru 47.87, zh 31.76 MiB)",
                f"mean over {over.targets} targets of (c − {k:g}·|e|) / level, {over.seeds} "
                "seeds", over.decision, "per seed and target: the odd source chosen on the other "
                "seeds (so choosing it after seeing the data does not bias it), c its distance "
                "from the other two's midpoint, e their gap, over the target's mean D_T; mean "
                f"over targets; Student t {OVER_LEVEL} over seeds; > 0 supports, < "
                f"{cs.STAND_OUT_REFUTE:g} refutes", _left_text(over.left_out))


def spanish_claim(small: pd.DataFrame) -> dict:
    """pt→es gets the most transfer into Spanish (:func:`claim_verdicts.spanish`)."""
    src, tgt = SPANISH_CONTROL
    paper = ", ".join(f"{s} {v}" for s, v in PAPER_ES.items()) + " MiB"
    has = set(small.loc[small["target"] == tgt, "init"]) if len(small) else set()
    others = [s for s in PAPER_SOURCES if s in has]
    n = max(1, len(others))
    test = (f"per seed pt→es − x→es for each other source x (paired by seed); supported: every "
            f"one-sided {1 - ALPHA:.0%} lower bound > 0; not supported: some one-sided "
            f"{1 - ALPHA / n:.1%} upper bound < 0 (Bonferroni over the {n} others)")
    claim = "pt→es gets the most transfer into Spanish"
    if src not in has or not others:
        return _row(claim, paper, "no pt→es data", undecided("pt→es or another source missing"),
                    test)
    d, closest = cv.spanish(small, others)
    means = ", ".join(f"{s} {_g(_mean(cs.exact_values(small, s, tgt)[0]))}"
                      for s in (src, *others))
    ours = f"{means} MiB" + (f"; closest: {closest}" if closest else "")
    return _row(claim, paper, ours, d, test)


def paper_gap(a: str, b: str) -> float:
    """The paper's own a↔b difference in English bytes, larger direction minus smaller, over
    the pair's mean (ru↔zh: 0.15, under the margin)."""
    big, other = (paper_en(*d) for d in cv.paper_order(a, b))
    return (big - other) / ((big + other) / 2)


def commutativity_claim(small: pd.DataFrame, a: str, b: str) -> dict:
    """Transfer is not commutative, in the paper's direction, in English bytes
    (:func:`claim_verdicts.commutativity`)."""
    big, other = cv.paper_order(a, b)
    claim = f"transfer is not commutative ({a}↔{b})"
    gap = paper_gap(a, b)
    paper = (f"{a}→{b} {PAPER_DT[b][a]} vs {b}→{a} {PAPER_DT[a][b]} MiB; in English bytes "
             f"{big[0]}→{big[1]} {_g(paper_en(*big))} vs {_g(paper_en(*other))}, gap "
             f"{_g(gap)} of the mean")
    test = (f"Welch {LEVEL}: {big[0]}→{big[1]} − {other[0]}→{other[1]} (the paper's larger "
            f"direction in English bytes first) over the pair's mean; > {COMMUTE_MARGIN} "
            f"supports, < {COMMUTE_MARGIN} refutes (commutative within the margin, or reversed)")
    if "d_t_en_mib" not in small.columns:
        return _row(claim, paper, "no byte premium", undecided("no D_T in English bytes"), test)
    x, bx = cs.exact_values(small, *big, value="d_t_en_mib")
    y, by = cs.exact_values(small, *other, value="d_t_en_mib")
    d = cv.commutativity(x, y)
    if not (len(x) and len(y)):
        return _row(claim, paper, "a direction is missing", d, test)
    ours = (f"{big[0]}→{big[1]} {_g(float(x.mean()))} vs {other[0]}→{other[1]} "
            f"{_g(float(y.mean()))} MiB of English bytes "
            f"({'paper' if x.mean() > y.mean() else 'opposite'} direction)")
    return _row(claim, paper, ours, d, test, f"{bx + by} bound(s) left out" if bx + by else "")


def correlation_test(tests: int) -> str:
    return (f"Spearman ρ of D_T over cells below the largest budget; two-way bootstrap over "
            f"source and target languages (cells sharing a language move together), Fisher-z "
            f"interval at {1 - 2 * ALPHA / max(1, tests):.1%} (Bonferroni over the {tests} "
            "correlation intervals)")


def contamination_claim(corr: pd.DataFrame | None, variable: str) -> dict:
    """Contamination correlates positively but only weakly with D_T
    (:func:`claim_verdicts.weak_contamination`)."""
    paper_rho, paper_p = PAPER_RHO[variable]
    n = len(corr) if corr is not None else 0
    return _row(f"D_T correlates only weakly with {variable}", f"ρ {paper_rho} (p {paper_p})",
                f"ρ over {n} cells", cv.weak_contamination(corr, variable),
                f"{correlation_test(cv.family(corr))}; inside (0, {WEAK_RHO}) supports, outside "
                "refutes")


def typology_claim(corr: pd.DataFrame | None) -> dict:
    """Typological distances do not correlate with D_T (:func:`claim_verdicts.no_typology`)."""
    d, found = cv.no_typology(corr)
    ours = "; ".join(f"{k} {_g(x.estimate)}" for k, x in found.items()) or "no distance"
    return _row("typological distances do not correlate with D_T",
                "ρ -0.15 … -0.09 (p > 0.7)", f"ρ {ours}", d,
                f"{correlation_test(cv.family(corr))}; all inside ±{WEAK_RHO} supports, any "
                "outside refutes")


def power_law_claims(rows: pd.DataFrame) -> list[dict]:
    """The power law's form and α near Hernandez et al.'s 0.18
    (:func:`claim_verdicts.power_law`)."""
    decisions, used, left = cv.power_law(rows)
    out = []
    for column, d in decisions.items():
        lo, hi = cv.POWER_LAW_REGIONS[column]
        shape = "quadratic: its midpoint gap to the chord" if column == "bend" else "slope"
        paper = "a power law (Hernandez et al.)" if column == "bend" else \
            f"α {HERNANDEZ_ALPHA} (text→code)"
        out.append(_row(POWER_LAW_CLAIMS[column], paper,
                        f"{column} per seed over {used} points ({left} left out)", d,
                        f"per seed, log D_T on log D_F with one intercept per pair ({shape}); "
                        f"Student t {LEVEL}; inside ({_g(lo)}, {_g(hi)}) supports, outside "
                        "refutes"))
    return out


def claims_table(rows: pd.DataFrame, corr: pd.DataFrame | None) -> pd.DataFrame:
    """One row per claim (:data:`CLAIM_COLUMNS`) from the per-seed transfer rows and the
    correlation cells."""
    small = smallest_rows(rows)
    out = [comparable_claim(small), stands_out_claim(small),
           *(contamination_claim(corr, v) for v in PAPER_RHO), typology_claim(corr),
           spanish_claim(small), *(commutativity_claim(small, a, b) for a, b in COMMUTING),
           *power_law_claims(rows)]
    return pd.DataFrame(out, columns=CLAIM_COLUMNS)


def has_paper_languages(rows: pd.DataFrame) -> bool:
    """True when at least two of the paper's sources (en, ru, zh) were finetuned on a target."""
    ft = rows[cross_lingual(rows)]
    return len(set(ft["init"]) & set(PAPER_SOURCES)) >= 2


def _markdown(table: pd.DataFrame) -> str:
    cells = [" | ".join(str(v).replace("|", "\\|") for v in r)
             for r in table.itertuples(index=False)]
    head = " | ".join(table.columns)
    return "\n".join([f"| {head} |", "|" + " --- |" * len(table.columns),
                      *(f"| {c} |" for c in cells)])


def alpha_table(fit: pd.DataFrame) -> pd.DataFrame:
    """α per pair with its 95% interval (the per-pair fits of ``fit``)."""
    pairs = fit[fit["fixed_effects"] == "none"] if len(fit) else fit
    return pd.DataFrame({"pair": [f"{s}→{t}" for s, t in zip(pairs["source"], pairs["target"],
                                                               strict=True)],
                         "alpha": [_g(a) for a in pairs["alpha"].astype(float)],
                         "95% CI": [f"[{_g(lo)}, {_g(hi)}]" for lo, hi in
                                    zip(pairs["alpha_ci_low"].astype(float),
                                        pairs["alpha_ci_high"].astype(float), strict=True)]})


def claims_section(rows: pd.DataFrame, cells: pd.DataFrame, corr: pd.DataFrame | None,
                   fit: pd.DataFrame, out_dir: Path) -> str | None:
    """The markdown of "The paper's claims" (without its title), or None when the study lacks the
    paper's languages (:func:`has_paper_languages`). Writes ``claims.csv`` and the figures of
    :mod:`xfer.analysis.paper_figures` into ``out_dir`` (atomically). ``rows``: per-seed transfer
    rows; ``cells``: per-cell summary; ``corr``: the correlation cells (correlation_cells.csv,
    with the contamination and distance columns); ``fit``: fit.csv."""
    from xfer.analysis.paper_figures import paper_figures

    if rows.empty or not has_paper_languages(rows):
        return None
    out_dir = Path(out_dir)
    table = claims_table(rows, corr)
    atomic_write(out_dir / "claims.csv", lambda tmp: table.to_csv(tmp, index=False))
    figures = paper_figures(rows, fit, out_dir)
    small = smallest_rows(rows)
    budget = f"{int(small['budget'].min()):,} bytes" if len(small) else "none has a finite D_T"
    parts = [SCALE_NOTE, "", f"Per-claim tests use the per-seed D_T at the smallest finetune "
             f"budget ({budget}); every interval is {LEVEL}. Simulated error rates and power "
             "of each row: `python bench/claims.py`. Rows also in `claims.csv`.", "",
             _markdown(table)]
    alphas = alpha_table(fit)
    if len(alphas):
        parts += ["", "α per pair (95% t interval over seeds):", "", _markdown(alphas)]
    parts += ["", *(f"![{title}]({path.name})" for title, path in figures.items())]
    return "\n".join(parts)
