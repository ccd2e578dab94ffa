"""How honest are the report's intervals and tests? Full simulations, beside the old methods.

    nice python bench/calibration.py                # the full version
    nice python bench/calibration.py --quick        # a tenth of the studies
    nice python bench/calibration.py --parts 1,3    # only some parts

Prints, for the model of :mod:`xfer.analysis.calibration` (every simulated study a results
table through ``compute_transfer``, each seed its own scratch curve and finetunes; the truth
from the generating process's curve):
1. coverage of the 95% t interval of a cell's mean D_T at 3 and 5 seeds, per band of finetune
   perplexity over the whole range (bounds beyond the curve's ends, D_T ≈ 0 and below 0), with
   the bias of the mean; Eq. 1 in log bytes against log perplexity (the default) beside the
   paper's linear one, and the percentile bootstrap the report used before; the interval of a
   geometric-mean perplexity;
2. the level of the verdicts' tests under their nulls (Page's trend test, Mann-Whitney control
   test with seeds sharing a scratch curve);
3. the adjacent-step test of the declared order: how often a step is flagged as reversed with
   the order true, and with one step truly reversed;
4. the level of the correlation test on null data of the paper's design with source and target
   effects: permuting language labels (the report's), whole pairs, single cells;
5. coverage of the 95% t interval of the power-law exponent α over seeds.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd
from scipy import stats

from xfer.analysis import calibration as cal


def bootstrap_percentile(values: np.ndarray) -> tuple[float, float]:
    """The interval the report used before: percentile bootstrap of the mean over seeds."""
    x = np.asarray(values, float)
    res = stats.bootstrap((x,), np.mean, confidence_level=0.95, method="percentile",
                          n_resamples=2000, rng=np.random.default_rng(0))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def coverage_lines(table: pd.DataFrame) -> list[str]:
    """One printed line per band of :func:`xfer.analysis.calibration.interval_coverage`."""
    out = []
    for r in table.itertuples():
        exact = (f"{r.coverage:.1%} of {r.exact} exact cells, bias {r.bias:+.0f} B (true D_T "
                 f"{r.truth:+.0f} B)" if r.exact else "no exact cell")
        bound = (f"; bounds hold {r.bound_coverage:.1%} of {r.bound_cells}"
                 if r.bound_cells else "")
        out.append(f"      {r.band:26s} ppl {r.low:5.2f}-{r.high:5.2f}: {exact}{bound}")
    return out


def coverage(scale: int) -> None:
    """Part 1."""
    n = 600 // scale
    print(f"1. coverage of the 95% t interval of a cell's mean D_T of the true D_T ({n} studies "
          f"per row, {2 * n} cells per band; target 95% ± 2 where the studies put exact cells, "
          "bounds: the one-sided statement ≥/≤ holds)")
    for seeds in (3, 5):
        for interp in ("loglog", "linear"):
            table = cal.interval_coverage(seeds, n, seed=seeds, interp=interp)
            print(f"   {seeds} seeds, Eq. 1 {interp}{' (default)' if interp == 'loglog' else ''}")
            print("\n".join(coverage_lines(table)))
        old = cal.interval_coverage(seeds, n // 10, bands=cal.STUDY_BANDS, seed=seeds,
                                    method=bootstrap_percentile)
        print(f"   {seeds} seeds, the old percentile bootstrap (loglog, {n // 10} studies): " +
              ", ".join(f"{r.band} {r.coverage:.1%}" for r in old.itertuples()))
        print(f"   {seeds} seeds: geometric-mean perplexity interval "
              f"{cal.perplexity_coverage(seeds, 10 * n, seed=seeds):.1%}")
    table = cal.interval_coverage(5, n // 3, bands=cal.STUDY_BANDS, seed=9, sigma_scratch=0.06,
                                  sigma_finetune=0.01)
    print(f"   5 seeds, scratch noise 0.06 and finetune noise 0.01 ({n // 3} studies):")
    print("\n".join(coverage_lines(table)))


def verdict_tests(scale: int) -> None:
    """Part 2."""
    n = 300 // scale
    print(f"2. verdict tests under their nulls ({n} studies; nominal 5%)")
    for seeds, levels in ((3, 3), (5, 3), (5, 4)):
        rate_trend, rate_control = cal.verdict_level(seeds, levels, n, seed=seeds * 10 + levels)
        print(f"   {seeds} seeds x {levels} levels: trend test {rate_trend:.1%}, "
              f"control test {rate_control:.1%}")


def order_tests(scale: int) -> None:
    """Part 3."""
    n = 200 // scale
    print(f"3. adjacent steps flagged as reversed (paired t, Holm over the steps; {n} studies of "
          "5 seeds; levels' true finetune perplexities, control at 6.0)")
    for ppls in ((4.4, 4.7, 5.0), (4.5, 4.5, 4.5), (4.7, 4.4, 5.0), (5.0, 4.4, 5.3)):
        rates = cal.order_flag_rate(ppls, 5, n, seed=int(sum(ppls) * 10))
        d_t = ", ".join(f"{float(cal.true_d_t(p)):.0f}" for p in ppls)
        print(f"   perplexities {ppls} (true D_T {d_t} B): " +
              ", ".join(f"{step} {rate:.1%}" for step, rate in rates.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default="1,2,3,4,5", help="which parts, comma-separated")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    parts = {p.strip() for p in args.parts.split(",")}
    start = time.perf_counter()
    for part, run in (("1", coverage), ("2", verdict_tests), ("3", order_tests),
                      ("4", correlations), ("5", alphas)):
        if part in parts:
            run(scale)
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


def correlations(scale: int) -> None:
    """Part 4."""
    n = 1000 // scale
    print(f"4. correlation test level, paper's design, null with language effects ({n} "
          "studies, 499 permutations each; target 3-7%)")
    for permute in ("languages", "pairs", "cells"):
        rate = cal.correlation_level(n, n_resamples=499, permute=permute)
        print(f"   permuting {permute:9s}: {rate:.1%}")


def alphas(scale: int) -> None:
    """Part 5."""
    n = 4000 // scale
    print(f"5. coverage of the 95% t interval of α over seeds ({n} simulated pairs)")
    for seeds in (3, 5):
        print(f"   {seeds} seeds: one pair {cal.alpha_coverage(seeds, n, seed=seeds):.1%}, "
              "pooled with target fixed effects "
              f"{cal.alpha_coverage(seeds, n, seed=seeds, pooled=True):.1%}")


if __name__ == "__main__":
    sys.exit(main())
