"""Error rates and power of every claim's three-state test at the small study's design.

    python bench/claims.py [--studies 400] [--noise 0.1 0.3 0.6] [--claims pt→es ...]

For each claim of "The paper's claims" (xfer.analysis.claims) and each seed-noise level (seed
standard deviation / mean |D_T|), simulated studies are decided by the claims' own functions
(xfer.analysis.claims_sim): *null* puts the claim at the edge of its declared region (the share
*supported* there is the false-supported rate, target <= 5%); *paper* is an alternative shaped
like the paper's numbers (the share *not supported* there is the false-not-supported rate, target
<= 5%; the share *supported* is the power). Other scenarios (*equal*, *symmetric*) are shown for
reading. Each share is printed with its Monte Carlo standard error.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import pandas as pd

from xfer.analysis.claims_sim import NOISES, SCENARIOS, rates


def _print(r: dict, se: Callable[[float], float]) -> None:
    reads = {"null": "false supported", "paper": "power / false not supported"}.get(
        r["scenario"], "")
    print(f"{r['claim']:16s} {r['scenario']:10s} {r['noise']:5.2f}  {r['supported']:6.1%} ± "
          f"{se(r['supported']):5.1%}  {r['not_supported']:6.1%} ± {se(r['not_supported']):5.1%}"
          f"  {reads}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=400, help="simulated studies per row")
    parser.add_argument("--noise", type=float, nargs="+", default=list(NOISES),
                        help="seed standard deviation / mean |D_T|")
    parser.add_argument("--claims", nargs="+", choices=sorted({s.claim for s in SCENARIOS}),
                        help="only these claims (default: all)")
    parser.add_argument("--kinds", nargs="+", help="only these scenarios (null, paper, ...)")
    parser.add_argument("--seed", type=int, default=0,
                        help="added to every row's seed: fresh draws for a second batch")
    args = parser.parse_args()
    start = time.perf_counter()
    se = lambda p: math.sqrt(max(p * (1 - p), 1e-12) / args.studies)  # noqa: E731
    print(f"{args.studies} simulated studies per row (3 seeds, the small study's design)")
    print(f"{'claim':16s} {'scenario':10s} {'noise':>5s}  {'supported':>14s}  "
          f"{'not supported':>14s}  reads as", flush=True)
    rows = []
    for k, scenario in enumerate(SCENARIOS):
        if (args.claims and scenario.claim not in args.claims) or (
                args.kinds and scenario.kind not in args.kinds):
            continue
        for noise in args.noise:
            sup, nsup = rates(scenario, noise, args.studies, seed=1000 * k + args.seed)
            rows.append({"claim": scenario.claim, "scenario": scenario.kind, "noise": noise,
                         "supported": sup, "not_supported": nsup})
            _print(rows[-1], se)
    table = pd.DataFrame(rows)
    worst = table[table["scenario"] == "null"].groupby("claim")["supported"].max()
    paper = table[table["scenario"] == "paper"].groupby("claim")["not_supported"].max()
    print("\nworst false supported per claim (null):",
          ", ".join(f"{k} {v:.1%}" for k, v in worst.items()))
    print("worst false not supported per claim (paper):",
          ", ".join(f"{k} {v:.1%}" for k, v in paper.items()))
    print(f"wall {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
