"""One study trial through the real Ray Tune trainable, on N Ray Train workers:
``python -m tests.dp_trial RUN_DIR --workers N``. Prepares the tiny dataset in ``RUN_DIR/data``,
starts a private local Ray (3 logical CPUs), runs the pretrain trial of :data:`STUDY` and prints
one JSON line: the final report's metrics and the steps of the evaluation reports Tune got."""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

STUDY = {
    "name": "dp", "corpus": "synthetic",
    "languages": {"sources": ["base"], "targets": ["twin"]},
    "budgets": {"pretrain": "8K", "finetune": ["4K"]},
    "data": {"dev_bytes": "2K", "test_bytes": "2K"},
    "model": {"preset": "tiny", "d_model": 32, "n_layers": 1, "n_heads": 1, "d_head": 32,
              "d_ff": 64},
    "train": {"seq_len": 64, "batch_size": 8, "micro_batch_size": 4, "eval_every": 4,
              "eval_at_epoch_end": False, "eval_max_bytes": "1K", "checkpoint_every": 2,
              "pretrain": {"lr": 3.0e-3, "epochs": 1, "min_steps": 40}},
    "analysis": {"contamination": False},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import ray
    from ray import tune

    from sweeps.config import config_from_dict
    from sweeps.trainable import train_trial, trial_placement
    from sweeps.trials import build_trials
    from xfer.data import prepare

    study = config_from_dict({**STUDY, "resources": {"workers_per_trial": args.workers,
                                                     "cpus_per_worker": 1}})
    (trial,) = [t for t in build_trials(study) if t.kind == "pretrain"]
    prepare("synthetic", [trial.lang], [trial.budget], study.data.dev_bytes,
            study.data.test_bytes, 0, args.run_dir / "data")
    ray.init(num_cpus=3, include_dashboard=False, configure_logging=False,
             log_to_driver=False)
    tuner = tune.Tuner(
        tune.with_resources(train_trial, functools.partial(trial_placement, study.resources)),
        param_space={"study": study.to_dict(), "run_dir": str(args.run_dir), "downstream": None,
                     "trial": trial.to_dict(), "init_checkpoint": None},
        tune_config=tune.TuneConfig(num_samples=1),
        run_config=tune.RunConfig(name="dp", storage_path=str(args.run_dir / "tune"),
                                  verbose=0))
    (result,) = tuner.fit()
    if result.error:
        raise SystemExit(f"trial failed: {result.error}")
    frame = result.metrics_dataframe
    evals = frame[frame["final"] == 0]["step"] if "step" in frame else []  # none if done before
    print(json.dumps({"final": {k: v for k, v in result.metrics.items()
                                if isinstance(v, int | float)},
                      "eval_steps": [int(s) for s in evals]}))


if __name__ == "__main__":
    main()
