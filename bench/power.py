"""How often would a new set of seeds recover every axis? The ground truth's power, re-runnable.

    python bench/power.py runs/default-*                 # the run folders of default studies
    python bench/power.py runs/default-* --seeds 5,7 --studies 500

From the run folders' results (one or more runs of a study of generated languages, e.g. the
default study on seeds 0-4 and 1000-1004) it estimates the generating model of
:func:`xfer.analysis.calibration.simulate_results`: the reference's scratch curve (per budget,
the mean log perplexity over every seed), each source's true finetune perplexity (the mean log
perplexity of its finetunes at the study's smallest finetuning budget) and the seeds' spread of
log perplexity: per scratch budget, and for finetunes split into a shift shared by every
finetune of a seed and the rest (a two-way analysis of variance, sources × seeds). It simulates
``--studies`` studies per seed count, each one through the report's own functions
(``compute_transfer``, ``summarise_cells``, the ground-truth verdicts with their Holm
adjustment and the adjacent-step tests), and prints the share of studies in which each axis,
and every axis at once, comes out *recovered* (an order broken counts as not recovered).
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from xfer.analysis import calibration as cal
from xfer.analysis.ground_truth import RECOVERED, Truth
from xfer.analysis.runfolder import analysis_inputs
from xfer.analysis.transfer import data_transfer, effective_data, scratch_curve
from xfer.analysis.tuning import choose_by_dev
from xfer.boundary.tables import read_table
from xfer.errors import XferError
from xfer.kinds import Kind


def _sd(values: pd.Series, groups: list[pd.Series]) -> float:
    """Pooled within-group standard deviation of ``values`` (ddof 1 per group)."""
    resid = values - values.groupby(groups).transform("mean")
    dof = len(values) - values.groupby(groups).ngroups
    return float(np.sqrt((resid ** 2).sum() / dof)) if dof > 0 else float("nan")


def seed_split(logs: pd.DataFrame) -> tuple[float, float]:
    """(σ of the rest, σ of a seed's shared shift) of a sources × seeds table of finetune log
    perplexities, complete rows only: the two-way ANOVA's residual mean square and its seed
    component (mean square of seeds − residual) / sources, floored at 0."""
    x = logs.dropna().to_numpy(float)
    n_seeds, n_sources = x.shape
    resid = x - x.mean(axis=0) - x.mean(axis=1, keepdims=True) + x.mean()
    ms_resid = (resid ** 2).sum() / ((n_seeds - 1) * (n_sources - 1))
    ms_seed = n_sources * ((x.mean(axis=1) - x.mean()) ** 2).sum() / (n_seeds - 1)
    return float(np.sqrt(ms_resid)), float(np.sqrt(max(0.0, (ms_seed - ms_resid) / n_sources)))


def estimate(run_dirs: list[Path]) -> tuple[Truth, dict, dict, dict]:
    """(truth, scratch points {budget: perplexity}, sources {name: perplexity}, noise: the
    keyword arguments of :func:`xfer.analysis.calibration.simulate_results`) from the run
    folders' results into the truth's reference."""
    frames, truth = [], None
    for i, run_dir in enumerate(run_dirs):
        inputs = analysis_inputs(run_dir)
        if inputs.truth is None:
            raise XferError(f"{run_dir}: not a study of generated languages (no declared truth)")
        truth = truth or inputs.truth
        frame = choose_by_dev(read_table(inputs.results))
        frames.append(frame.assign(run=i))
    rows = pd.concat(frames, ignore_index=True)
    rows = rows[(rows["target"] == truth.reference) & (rows.get("kind", "") != Kind.PRETRAIN)]
    rows = rows.assign(log=np.log(rows["perplexity"].astype(float)))
    scratch = rows[rows["init"] == "scratch"]
    finetune = rows[rows["init"] != "scratch"]
    if scratch["budget"].nunique() < 2 or finetune.empty:
        raise XferError("the runs need a scratch curve and finetunes into "
                        f"{truth.reference}")
    budget = int(finetune["budget"].min())
    finetune = finetune[finetune["budget"] == budget]
    points = np.exp(scratch.groupby("budget")["log"].mean())
    sources = np.exp(finetune.groupby("init")["log"].mean())
    sd_scratch = [_sd(group["log"], [group["run"]]) for _, group in scratch.groupby("budget")]
    sd_rest, sd_seed = seed_split(finetune.pivot_table(index=["run", "seed"], columns="init",
                                                       values="log"))
    noise = {"scratch": {float(b): float(p) for b, p in points.items()},
             "sigma_scratch": sd_scratch, "sigma_finetune": sd_rest, "sigma_seed": sd_seed,
             "finetune_budget": budget}
    return truth, noise["scratch"], {str(s): float(p) for s, p in sources.items()}, noise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="run folders (default: runs/default-*)")
    parser.add_argument("--seeds", default="5,7", help="seed counts, comma-separated")
    parser.add_argument("--studies", type=int, default=1000, help="simulated studies per count")
    args = parser.parse_args(argv)
    try:
        runs = [Path(r) for r in (args.runs or sorted(glob.glob("runs/default-*")))]
        if not runs:
            raise XferError("no run folder given and none matches runs/default-*")
        seeds = [int(s) for s in args.seeds.split(",")]
        if min(seeds) < 2 or args.studies < 1:
            raise XferError("--seeds needs counts of at least 2 and --studies at least 1")
        truth, points, sources, noise = estimate(runs)
    except (XferError, ValueError) as exc:
        print(f"power: error: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    budget = noise["finetune_budget"]
    sd_s = ", ".join(f"{sd:.3f}" for sd in noise["sigma_scratch"])
    print(f"model from {len(runs)} run(s), σ of log perplexity: scratch {sd_s} at "
          f"{', '.join(f'{b:.0f}' for b in points)} bytes; {len(sources)} sources at {budget} "
          f"bytes, σ {noise['sigma_finetune']:.3f} each and {noise['sigma_seed']:.3f} shared "
          "by a seed's finetunes")
    curve = scratch_curve(list(points), list(points.values()))
    for name, ppl in sources.items():
        d_e, bound = effective_data(ppl, curve)
        mark = {"lower": "≥ ", "upper": "≤ "}.get(str(bound[0]), "")
        print(f"   {name:10s} perplexity {ppl:.3f}, D_T on the mean curve {mark}"
              f"{data_transfer(d_e, budget)[0]:.0f} bytes")
    for n in seeds:
        found = cal.simulated_verdicts(sources, truth, n, args.studies, seed=n, **noise)
        hit = found["verdict"] == RECOVERED
        per_axis = hit.groupby(found["axis"], sort=False).mean()
        every = hit.groupby(found["study"]).all().mean()
        broken = found["order_broken"].ne("").groupby(found["axis"], sort=False).mean()
        axes = ", ".join(f"{a} {v:.0%} (order broken {broken[a]:.0%})"
                         for a, v in per_axis.items())
        print(f"{n} seeds, {args.studies} studies: every axis recovered {every:.1%}; {axes}")
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
