"""How honest are the report's intervals and tests? Full simulations, beside the old methods.

    python bench/calibration.py            # about 3 minutes on one core
    python bench/calibration.py --quick    # a tenth of the studies

Prints, for the model of :mod:`xfer.analysis.calibration`:
1. coverage of the 95% t interval of a cell's mean D_T at 3 and 5 seeds (each seed its own
   scratch curve and finetune), beside the percentile bootstrap the report used before, and of
   the interval of a geometric-mean perplexity;
2. the level of the verdicts' tests under their nulls (Page's trend test, Mann-Whitney control
   test with seeds sharing a scratch curve);
3. the level of the correlation test on null data of the paper's design with source and target
   effects: permuting language labels (the report's), whole pairs, single cells;
4. coverage of the 95% t interval of the power-law exponent α over seeds.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy import stats

from xfer.analysis import calibration as cal


def bootstrap_percentile(values: np.ndarray) -> tuple[float, float]:
    """The interval the report used before: percentile bootstrap of the mean over seeds."""
    x = np.asarray(values, float)
    res = stats.bootstrap((x,), np.mean, confidence_level=0.95, method="percentile",
                          n_resamples=2000, rng=np.random.default_rng(0))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    start = time.perf_counter()
    n = 14000 // scale
    print(f"1. coverage of the 95% interval of a cell's mean D_T ({n} simulated cells per row, "
          "spread over the finetune perplexities below; target 95% ± 2)")
    for seeds in (3, 5):
        pooled, per = cal.interval_coverage(seeds, n, seed=seeds)
        old, _ = cal.interval_coverage(seeds, n // 4, seed=seeds, method=bootstrap_percentile)
        cells = ", ".join(f"{ppl}: {c:.1%}" for ppl, c in per.items())
        print(f"   {seeds} seeds: t interval {pooled:.1%} (by finetune ppl {cells}); old "
              f"percentile bootstrap {old:.1%}")
        print(f"   {seeds} seeds: geometric-mean perplexity interval "
              f"{cal.perplexity_coverage(seeds, n, seed=seeds):.1%}")
    n = 2000 // scale
    print(f"2. verdict tests under their nulls ({n} studies; nominal 5%)")
    for seeds, levels in ((3, 3), (5, 3), (5, 4)):
        rate_trend, rate_control = cal.verdict_level(seeds, levels, n, seed=seeds * 10 + levels)
        print(f"   {seeds} seeds x {levels} levels: trend test {rate_trend:.1%}, "
              f"control test {rate_control:.1%}")
    n = 2000 // scale
    print(f"3. correlation test level, paper's design, null with language effects ({n} "
          "studies, 499 permutations each; target 3-7%)")
    for permute in ("languages", "pairs", "cells"):
        rate = cal.correlation_level(n, n_resamples=499, permute=permute)
        print(f"   permuting {permute:9s}: {rate:.1%}")
    n = 4000 // scale
    print(f"4. coverage of the 95% t interval of α over seeds ({n} simulated pairs)")
    for seeds in (3, 5):
        print(f"   {seeds} seeds: one pair {cal.alpha_coverage(seeds, n, seed=seeds):.1%}, "
              "pooled with target fixed effects "
              f"{cal.alpha_coverage(seeds, n, seed=seeds, pooled=True):.1%}")
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
