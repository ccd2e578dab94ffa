"""Where a tiny trial's seconds go: one default-study trial against a bare training loop.

Runs, in this process and on one thread, (1) a bare loop of the default study's model (forward,
backward, clip, AdamW on the same batches) for the trial's step cap, before and after (2) the
trial itself (``xfer.train.run`` with the default study's scratch recipe), timing its parts by
wrapping the functions the loop calls: dev evaluations, checkpoint writes and pruning, the final
scoring of the best checkpoint (dev + test), data loading; the rest is the training steps and
their bookkeeping. Then (3) the start-up of a fresh trial process (Python, torch and xfer imports).
Prints trained bytes per second per core (bytes / CPU seconds of this process) for both, and
the breakdown in CPU seconds and wall seconds (wall includes waiting for a busy machine).

    python bench/trial_time.py               # scratch run at 10K, the default recipe
    python bench/trial_time.py --budget 5K
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from sweeps.config import load_config
from xfer.data import load_split, prepare
from xfer.model import ByteLM
from xfer.training import checkpoint as ckpt
from xfer.training import loop
from xfer.training.batches import epoch_order, make_batch
from xfer.training.config import run_length
from xfer.units import parse_bytes

PARTS = {"evaluate": (loop, "evaluate"), "checkpoint writes": (ckpt, "save_checkpoint"),
         "checkpoint pruning": (ckpt, "prune"), "final scoring": (loop, "finish"),
         "data loading": (loop, "load_split")}


class Clock:
    """Accumulated wall and CPU seconds per named part."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.depth = 0

    def wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            if self.depth:  # nested (evaluate inside finish): counted by the outer part
                return fn(*args, **kwargs)
            self.depth += 1
            w, c = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall[name] += time.perf_counter() - w
                self.cpu[name] += time.process_time() - c
                self.depth -= 1
        return timed


def bare_loop(study, cfg, train_raw, steps: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``steps`` optimiser steps of the same model, no evaluation."""
    torch.manual_seed(0)
    net = ByteLM(study.model)
    opt = loop.make_optimizer(net, cfg)
    n_pieces = len(train_raw) // cfg.seq_len
    per_epoch = n_pieces // cfg.batch_size
    w, c = time.perf_counter(), time.process_time()
    for step in range(steps):
        epoch, offset = divmod(step, per_epoch)
        pieces = epoch_order(n_pieces, 0, epoch)[offset * cfg.batch_size:
                                                 (offset + 1) * cfg.batch_size]
        inputs, targets = make_batch(train_raw, pieces, cfg.seq_len)
        nll, lse = loop.nll_and_lse(net(inputs), targets)
        ((nll + loop.z_loss_term(lse, cfg.z_loss)).sum() / cfg.batch_bytes).backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return time.perf_counter() - w, time.process_time() - c


def startup_seconds() -> float:
    """Wall seconds for a fresh Python process to import torch and xfer.train and build the model
    (what a trial process pays before its first step)."""
    code = ("from sweeps.config import load_config; from xfer.training.loop import run; "
            "from xfer.model import ByteLM; ByteLM(load_config('default').model)")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="10K", help="scratch budget (bytes), e.g. 10K")
    parser.add_argument("--config", default="default", help="study config whose recipe is timed")
    args = parser.parse_args()
    budget = parse_bytes(args.budget)
    study = load_config(args.config)
    cfg = replace(study.train["scratch"], threads=1, seed=0)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="xfer-trial-time-") as tmp:
        data = Path(tmp) / "data"
        prepare(study.corpus, ["base"], [budget], study.data.dev_bytes, study.data.test_bytes,
                study.data.seed, data)
        clock = Clock()
        originals = {name: getattr(mod, attr) for name, (mod, attr) in PARTS.items()}
        for name, (mod, attr) in PARTS.items():
            setattr(mod, attr, clock.wrap(name, originals[name]))
        train_raw = load_split(data, "base", "train", budget)
        steps = run_length(cfg, budget, len(train_raw)).total_steps
        first = bare_loop(study, cfg, train_raw, steps)  # before and after the trial: load
        try:                                             # from other processes hits both alike
            w, c = time.perf_counter(), time.process_time()
            result = loop.run(study.model, cfg, data, "base", budget, Path(tmp) / "trial")
            trial_wall, trial_cpu = time.perf_counter() - w, time.process_time() - c
        finally:
            for name, (mod, attr) in PARTS.items():
                setattr(mod, attr, originals[name])
        second = bare_loop(study, cfg, train_raw, steps)
    scale = result.steps / steps  # the trial may stop early: the bare loop's time per step
    bare_wall, bare_cpu = ((a + b) / 2 * scale for a, b in zip(first, second, strict=True))
    trained = result.steps * cfg.batch_bytes
    startup = startup_seconds()
    print(f"{args.config} scratch recipe, base at {args.budget}: {result.steps} steps, "
          f"{trained} bytes trained, test perplexity {result.test_perplexity:.3f}, "
          f"{study.model.name}, 1 thread")
    print(f"  trial:     {trained / trial_cpu:9.0f} bytes/s/core ({trial_cpu:.2f} CPU s, "
          f"{trial_wall:.2f} wall s)")
    print(f"  bare loop: {trained / bare_cpu:9.0f} bytes/s/core ({bare_cpu:.2f} CPU s, "
          f"{bare_wall:.2f} wall s)")
    print(f"  trial / bare: {bare_cpu / trial_cpu:.2f} of the bare loop's speed")
    print("  where the trial's time went (CPU s, wall s, share of CPU):")
    steps_cpu = trial_cpu - sum(clock.cpu.values())
    steps_wall = trial_wall - sum(clock.wall.values())
    for name, cpu_s, wall_s in [("training steps", steps_cpu, steps_wall),
                                *((n, clock.cpu[n], clock.wall[n]) for n in PARTS)]:
        print(f"    {name:<20} {cpu_s:7.2f} {wall_s:7.2f}  {cpu_s / trial_cpu:6.1%}")
    print(f"  a fresh trial process (imports, model): {startup:.2f} wall s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
