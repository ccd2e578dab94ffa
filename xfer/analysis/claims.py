"""The report's "The paper's claims": each claim of the paper (DESIGN.md §2) re-tested on a study
that has the paper's languages, with the paper's figure, ours with its interval or p, and a
verdict by a test declared here.

Every test is at ``ALPHA`` = 0.05 and states its sidedness in the ``test`` column. A verdict is
*supported* when the test rejects the null in the claim's favour, *not supported* when a declared
opposite test rejects in the other direction, and *inconclusive* when neither does (too few
seeds, targets or pairs, or too much spread): never stronger than its test. Scale differs from
the paper by orders of magnitude (6e9-byte pretrains there, kB here), so the claims compare
directions, ranks and shares, not magnitudes.

Inputs are :func:`xfer.analysis.analyse.run_analysis`'s tables: per-seed transfer rows (one row
per trial: ``init``, ``target``, ``budget`` bytes, ``seed``, ``d_t`` bytes, ``d_t_mib`` MiB),
cells, the correlation table (``value``, ``budget``, ``variable``, ``rho``, ``p`` two-sided,
permuting source and target labels) and the power-law fits (``alpha`` with its 95% t interval
over seeds). Per-claim tests use the per-seed rows at the smallest finetune budget (the paper's
Table 2 budget, 6M there). Bounds (clamped D_E) enter at their clamped value.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from xfer.analysis.intervals import t_interval
from xfer.io import atomic_write

ALPHA = 0.05
WEAK_RHO = 0.3  # |ρ| below this is "weak" (the paper's 0.191 and 0.265 are)
COMPARABLE_RATIO = 3.0  # largest / smallest source D_T within this factor: "comparable"
HERNANDEZ_ALPHA = 0.18  # Hernandez et al. 2021, text -> code transfer exponent
PAPER_SOURCES = ("en", "ru", "zh")
SPANISH_CONTROL = ("pt", "es")
CLAIM_COLUMNS = ["claim", "paper", "ours", "interval_or_p", "test", "verdict"]
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
# Paper Table 2 (D_T in MiB at 6M): target -> source -> D_T; Spanish control in PAPER_ES.
PAPER_DT = {
    "ar": {"en": 101.02, "ru": 99.00, "zh": 90.63}, "de": {"en": 95.25, "ru": 47.87, "zh": 31.76},
    "en": {"ru": 174.63, "zh": 66.96}, "es": {"en": 121.14, "ru": 67.88, "zh": 50.27},
    "fi": {"en": 76.57, "ru": 50.96, "zh": 49.65}, "id": {"en": 102.62, "ru": 51.32, "zh": 50.21},
    "ja": {"en": 47.50, "ru": 47.81, "zh": 69.48}, "ko": {"en": 48.74, "ru": 48.69, "zh": 49.88},
    "ru": {"en": 75.64, "zh": 48.47}, "zh": {"en": 29.21, "ru": 26.18},
}
PAPER_ES = {"pt": 164.47, "en": 121.14, "ru": 67.88, "zh": 50.27}
PAPER_RHO = {"contamination on source": (0.191, 0.0157),
             "contamination on target": (0.265, 0.0021)}
COMMUTING = (("en", "ru"), ("en", "zh"), ("ru", "zh"))
SCALE_NOTE = ("Scale differs from the paper's by orders of magnitude (its pretrains read 6e9 "
              "bytes, D_T in tens of MiB): directions, ranks and shares are compared, not "
              "magnitudes.")


def _g(x: float) -> str:
    """A number in 3 significant digits (MiB here are small)."""
    return "nan" if not math.isfinite(x) else f"{x:.3g}"


def _p(p: float) -> str:
    return "p n/a" if not math.isfinite(p) else f"p = {p:.3g}"


def _row(claim: str, paper: str, ours: str, interval_or_p: str, test: str, verdict: str) -> dict:
    return dict(zip(CLAIM_COLUMNS, (claim, paper, ours, interval_or_p, test, verdict), strict=True))


def _verdict(p_for: float, p_against: float = math.nan) -> str:
    """supported when ``p_for`` < ALPHA, not supported when ``p_against`` < ALPHA, else
    inconclusive."""
    if math.isfinite(p_for) and p_for < ALPHA:
        return SUPPORTED
    if math.isfinite(p_against) and p_against < ALPHA:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def smallest_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-seed finetune rows (init ≠ scratch, init ≠ target, finite D_T) at the smallest
    finetune budget."""
    ft = rows[(rows["init"] != "scratch") & (rows["init"] != rows["target"])
              & np.isfinite(rows["d_t_mib"].astype(float))]
    return ft[ft["budget"] == ft["budget"].min()] if len(ft) else ft


def seeds_of(small: pd.DataFrame, source: str, target: str) -> np.ndarray:
    """Per-seed D_T (MiB) of source -> target."""
    return small[(small["init"] == source) & (small["target"] == target)]["d_t_mib"].to_numpy(float)


def mean_text(small: pd.DataFrame, source: str, target: str) -> str:
    """Mean D_T (MiB) of source -> target, marked ≥ / ≤ when a seed's D_T is a bound (its D_E
    clamped at the end of the scratch curve)."""
    pair = small[(small["init"] == source) & (small["target"] == target)]
    bounds = set(pair["bound"]) if "bound" in pair.columns else set()
    mark = "≥ " if "lower" in bounds else "≤ " if "upper" in bounds else ""
    return f"{mark}{_g(float(pair['d_t_mib'].mean()))}"


def welch(a: np.ndarray, b: np.ndarray, alternative: str = "two-sided") -> float:
    """Welch's t-test p (NaN with fewer than two values on a side or no spread at all)."""
    if len(a) < 2 or len(b) < 2 or (np.std(a) == 0 and np.std(b) == 0):
        return math.nan
    with warnings.catch_warnings():  # near-identical seeds: scipy warns, p is still defined
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue)


def _ratio(means: dict[str, float]) -> float:
    """Largest / smallest mean D_T of a target's sources; inf if any is not positive."""
    values = list(means.values())
    return max(values) / min(values) if min(values) > 0 else math.inf


def _binom(k: int, n: int, p0: float, alternative: str) -> float:
    return float(stats.binomtest(k, n, p0, alternative=alternative).pvalue) if n else math.nan


def comparable_claim(small: pd.DataFrame) -> dict:
    """Comparable D_T from distant sources for a target: per target, the paper's sources' mean
    D_T within a factor COMPARABLE_RATIO (all positive); sign test over targets."""
    paper_ok = sum(_ratio(v) <= COMPARABLE_RATIO for v in PAPER_DT.values())
    ratios = {}
    for target, group in small[small["init"].isin(PAPER_SOURCES)].groupby("target"):
        means = group.groupby("init")["d_t_mib"].mean().to_dict()
        if len(means) >= 2:
            ratios[target] = _ratio(means)
    k, n = sum(r <= COMPARABLE_RATIO for r in ratios.values()), len(ratios)
    p_for, p_against = _binom(k, n, 0.5, "greater"), _binom(k, n, 0.5, "less")
    median = float(np.median(list(ratios.values()))) if ratios else math.nan
    return _row("D_T from distant sources is comparable for a target",
                f"max/min ≤ {COMPARABLE_RATIO:g} in {paper_ok}/{len(PAPER_DT)} targets (ar: en "
                "101.02, ru 99.00, zh 90.63 MiB)",
                f"max/min ≤ {COMPARABLE_RATIO:g} in {k}/{n} targets (median ratio {_g(median)})",
                f"sign test {_p(p_for)}",
                f"per target max/min of the sources' mean D_T ≤ {COMPARABLE_RATIO:g}, all > 0; "
                "binomial sign test over targets, one-sided (share > 1/2 supports, < 1/2 "
                f"refutes), α {ALPHA}", _verdict(p_for, p_against))


def _odd(means: dict[str, float]) -> tuple[str, float]:
    """The source farthest from the other two (top or bottom of three) and its gap ratio
    (its gap to the middle / the two others' gap)."""
    order = sorted(means, key=means.get)
    low, mid, high = (means[s] for s in order)
    top_gap, bottom_gap = high - mid, mid - low
    odd = order[2] if top_gap >= bottom_gap else order[0]
    close = min(top_gap, bottom_gap)
    return odd, max(top_gap, bottom_gap) / close if close > 0 else math.inf


def stands_out_claim(small: pd.DataFrame) -> dict:
    """One source stands out per target, the other two close: per target with all three paper
    sources, Welch t-test (two-sided) of the odd source's seeds against the other two's; the count
    of targets where it is significant against chance (ALPHA) by a one-sided binomial test."""
    three = [v for v in PAPER_DT.values() if len(v) == 3]
    paper = sum(_odd(v)[1] >= 2 for v in three)
    k = n = wide = 0
    for _, group in small[small["init"].isin(PAPER_SOURCES)].groupby("target"):
        means = group.groupby("init")["d_t_mib"].mean().to_dict()
        if len(means) != 3:
            continue
        odd, gap = _odd(means)
        n += 1
        wide += gap >= 2
        p = welch(group[group["init"] == odd]["d_t_mib"].to_numpy(float),
                  group[group["init"] != odd]["d_t_mib"].to_numpy(float))
        k += bool(math.isfinite(p) and p < ALPHA)
    p_for = _binom(k, n, ALPHA, "greater")
    return _row("one source stands out per target, the other two close",
                f"odd source's gap ≥ 2× the other two's in {paper}/{len(three)} targets (de: "
                "en 95.25 vs ru 47.87, zh 31.76 MiB)",
                f"odd source differs (Welch p < {ALPHA}) in {k}/{n} targets; gap ≥ 2× in "
                f"{wide}/{n}", f"binomial {_p(p_for)}",
                "per target, Welch t two-sided: odd source (farthest from the middle) vs the other "
                f"two's seeds; count of significant targets vs chance {ALPHA}, binomial "
                "one-sided", _verdict(p_for))


def _pooled(corr_table: pd.DataFrame, variable: str) -> pd.DataFrame:
    """The correlation-table row of D_T against ``variable`` pooled over budgets."""
    return corr_table[(corr_table["value"] == "d_t") & (corr_table["budget"].astype(str) == "all")
                      & (corr_table["variable"] == variable)]


def _corr_row(corr_table: pd.DataFrame, variable: str) -> tuple[float, float, int]:
    """Pooled (all budgets) ρ, p and n of D_T against ``variable``."""
    sel = _pooled(corr_table, variable)
    if sel.empty:
        return math.nan, math.nan, 0
    r = sel.iloc[0]
    return float(r["rho"]), float(r["p"]), int(r["n"])


def contamination_claim(corr_table: pd.DataFrame, variable: str) -> dict:
    """Contamination correlates positively but only weakly with D_T: supported when ρ > 0 and
    |ρ| < WEAK_RHO with p < ALPHA; not supported when p < ALPHA and ρ ≤ 0 or ρ ≥ WEAK_RHO."""
    rho, p, n = _corr_row(corr_table, variable)
    paper_rho, paper_p = PAPER_RHO[variable]
    weak = math.isfinite(rho) and 0 < rho < WEAK_RHO
    verdict = INCONCLUSIVE if not (math.isfinite(p) and p < ALPHA) else \
        SUPPORTED if weak else NOT_SUPPORTED
    return _row(f"D_T correlates only weakly with {variable}",
                f"ρ {paper_rho} (p {paper_p})",
                f"ρ {_g(rho)} over {n} cells" if math.isfinite(rho) else
                f"ρ undefined over {n} cells (a constant variable)", _p(p),
                "Spearman ρ pooled over budgets (largest left out), permutation of source "
                f"and target labels, two-sided, α {ALPHA}; weak: 0 < ρ < {WEAK_RHO}",
                verdict)


def rho_interval(rho: float, n_pairs: int) -> tuple[float, float]:
    """95% interval of Spearman ρ by Fisher's z with the Fieller-Hartley-Pearson variance
    1.06 / (n - 3), counting whole (source, target) pairs as the independent units (a pair's
    cells share its distance); NaN with fewer than 4 pairs."""
    if not math.isfinite(rho) or n_pairs < 4:
        return math.nan, math.nan
    z, half = math.atanh(max(-0.999999, min(0.999999, rho))), 1.96 * math.sqrt(1.06 / (n_pairs - 3))
    return math.tanh(z - half), math.tanh(z + half)


def typology_claim(corr_table: pd.DataFrame) -> dict:
    """Typological distances do not correlate with D_T: not supported when any distance has a
    Holm-adjusted p < ALPHA; supported (an equivalence test) only when none has and every
    distance's 95% ρ interval (:func:`rho_interval`) lies inside ±WEAK_RHO; else inconclusive
    (the data cannot exclude a correlation, as a large p alone cannot)."""
    found = {}
    for v in sorted(set(corr_table["variable"])):
        sel = _pooled(corr_table, v)
        if v.endswith(" distance") and len(sel) and math.isfinite(float(sel.iloc[0]["p"])):
            r = sel.iloc[0]
            found[v.removesuffix(" distance")] = (
                float(r["rho"]), float(r["p"]), rho_interval(float(r["rho"]), int(r["n_pairs"])))
    claim, paper = "typological distances do not correlate with D_T", "ρ -0.15 … -0.09 (p > 0.7)"
    if not found:
        return _row(claim, paper, "no distance available", "p n/a",
                    "Spearman ρ per lang2vec distance", INCONCLUSIVE)
    ps = np.array([p for _, p, _ in found.values()])
    holm = np.minimum(1, np.maximum.accumulate(np.sort(ps) * (len(ps) - np.arange(len(ps)))))
    rhos = [r for r, _, _ in found.values()]
    lows, highs = [ci[0] for *_, ci in found.values()], [ci[1] for *_, ci in found.values()]
    inside = all(math.isfinite(lo) and -WEAK_RHO < lo and hi < WEAK_RHO
                 for lo, hi in zip(lows, highs, strict=True))
    verdict = NOT_SUPPORTED if holm.min() < ALPHA else SUPPORTED if inside else INCONCLUSIVE
    return _row(claim, paper, f"ρ {_g(min(rhos))} … {_g(max(rhos))} over {len(found)} distances",
                f"ρ 95% CIs within [{_g(min(lows))}, {_g(max(highs))}]; smallest Holm-adjusted "
                f"{_p(float(holm.min()))}",
                "Spearman ρ per lang2vec distance, permutation of language labels, two-sided, Holm "
                f"over the distances, α {ALPHA}; supported only if none is significant and every "
                f"ρ's 95% CI (Fisher z over pairs) lies within ±{WEAK_RHO}", verdict)


def spanish_claim(small: pd.DataFrame) -> dict:
    """pt→es gets the most transfer into Spanish: Welch t-test one-sided, pt's seeds greater
    than the best other source's (supported), or the best other's greater (not supported)."""
    src, tgt = SPANISH_CONTROL
    pt = seeds_of(small, src, tgt)
    others = {s: seeds_of(small, s, tgt) for s in PAPER_SOURCES}
    others = {s: v for s, v in others.items() if len(v)}
    paper = ", ".join(f"{s} {v}" for s, v in PAPER_ES.items()) + " MiB"
    if not len(pt) or not others:
        return _row("pt→es gets the most transfer into Spanish", paper, "no pt→es data", "p n/a",
                    "Welch t one-sided", INCONCLUSIVE)
    best = max(others, key=lambda s: others[s].mean())
    p_for, p_against = welch(pt, others[best], "greater"), welch(pt, others[best], "less")
    ours = ", ".join(f"{s} {mean_text(small, s, tgt)}" for s in (src, *others)) + " MiB"
    low, high = t_interval(pt)
    return _row("pt→es gets the most transfer into Spanish", paper, ours,
                f"pt 95% CI [{_g(low)}, {_g(high)}]; {_p(p_for)}",
                f"Welch t, one-sided: pt→es > {best}→es (the best other source), α {ALPHA}; "
                "the reverse one-sided test refutes", _verdict(p_for, p_against))


def commutativity_claim(small: pd.DataFrame, a: str, b: str) -> dict:
    """D_T(a→b) ≠ D_T(b→a): Welch t-test two-sided; the direction compared with the paper's."""
    ab, ba = seeds_of(small, a, b), seeds_of(small, b, a)
    pab, pba = PAPER_DT[b][a], PAPER_DT[a][b]
    paper = f"{a}→{b} {pab} vs {b}→{a} {pba} MiB"
    if not len(ab) or not len(ba):
        return _row(f"transfer is not commutative ({a}↔{b})", paper, "a direction is missing",
                    "p n/a", "Welch t two-sided", INCONCLUSIVE)
    same = (ab.mean() < ba.mean()) == (pab < pba)
    p = welch(ab, ba)
    return _row(f"transfer is not commutative ({a}↔{b})", paper,
                f"{a}→{b} {mean_text(small, a, b)} vs {b}→{a} {mean_text(small, b, a)} MiB "
                f"({'same' if same else 'opposite'} direction)", _p(p),
                f"Welch t on per-seed D_T, two-sided, α {ALPHA}", _verdict(p))


def power_law_claim(fit: pd.DataFrame) -> dict:
    """D_T grows with D_F as a power law (α > 0): sign test over the per-pair α, one-sided."""
    pairs = fit[fit["fixed_effects"] == "none"] if len(fit) else fit
    alphas = pairs["alpha"].to_numpy(float) if len(pairs) else np.array([])
    alphas = alphas[np.isfinite(alphas)]
    k, n = int((alphas > 0).sum()), len(alphas)
    pooled = fit[fit["fixed_effects"] == "pair"] if len(fit) else fit
    ci = ""
    if len(pooled):
        top = pooled.iloc[0]
        ci = (f"pooled α {_g(float(top['alpha']))} [{_g(float(top['alpha_ci_low']))}, "
              f"{_g(float(top['alpha_ci_high']))}]; ")
    within = int(((pairs["alpha_ci_low"] <= HERNANDEZ_ALPHA)
                  & (pairs["alpha_ci_high"] >= HERNANDEZ_ALPHA)).sum()) if n else 0
    p_for, p_against = _binom(k, n, 0.5, "greater"), _binom(k, n, 0.5, "less")
    median = _g(float(np.median(alphas))) if n else "nan"
    return _row("D_T = k·D_F^α with α > 0 per pair (Hernandez et al.: α 0.18, text→code)",
                f"α {HERNANDEZ_ALPHA} (Hernandez et al.)",
                f"α > 0 in {k}/{n} pairs, median {median}; CI holds 0.18 in {within}/{n}",
                f"{ci}sign test {_p(p_for)}",
                f"per-pair α (slope of log D_T on log D_F); binomial sign test over pairs, "
                f"one-sided (α > 0 supports, < 0 refutes), α {ALPHA}", _verdict(p_for, p_against))


def claims_table(rows: pd.DataFrame, corr_table: pd.DataFrame, fit: pd.DataFrame) -> pd.DataFrame:
    """One row per claim (:data:`CLAIM_COLUMNS`)."""
    small = smallest_rows(rows)
    out = [comparable_claim(small), stands_out_claim(small),
           *(contamination_claim(corr_table, v) for v in PAPER_RHO), typology_claim(corr_table),
           spanish_claim(small), *(commutativity_claim(small, a, b) for a, b in COMMUTING),
           power_law_claim(fit)]
    return pd.DataFrame(out, columns=CLAIM_COLUMNS)


def has_paper_languages(rows: pd.DataFrame) -> bool:
    """True when at least two of the paper's sources (en, ru, zh) were finetuned on a target."""
    ft = rows[(rows["init"] != "scratch") & (rows["init"] != rows["target"])]
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


def claims_section(rows: pd.DataFrame, cells: pd.DataFrame, corr_table: pd.DataFrame,
                   fit: pd.DataFrame, out_dir: Path) -> str | None:
    """The markdown of "The paper's claims" (without its title), or None when the study lacks the
    paper's languages (:func:`has_paper_languages`). Writes ``claims.csv`` and the figures of
    :mod:`xfer.analysis.paper_figures` into ``out_dir`` (atomically). ``rows``: per-seed transfer
    rows; ``cells``: per-cell summary; ``corr_table``: correlations.csv; ``fit``: fit.csv."""
    from xfer.analysis.paper_figures import paper_figures

    if rows.empty or not has_paper_languages(rows):
        return None
    out_dir = Path(out_dir)
    table = claims_table(rows, corr_table, fit)
    atomic_write(out_dir / "claims.csv", lambda tmp: table.to_csv(tmp, index=False))
    figures = paper_figures(rows, fit, out_dir)
    budget = int(smallest_rows(rows)["budget"].min())
    parts = [SCALE_NOTE, "", f"Tests use the per-seed D_T at the smallest finetune budget "
             f"({budget:,} bytes) unless stated; α {ALPHA}. Rows also in `claims.csv`.", "",
             _markdown(table)]
    alphas = alpha_table(fit)
    if len(alphas):
        parts += ["", "α per pair (95% t interval over seeds):", "", _markdown(alphas)]
    parts += ["", *(f"![{title}]({path.name})" for title, path in figures.items())]
    return "\n".join(parts)
