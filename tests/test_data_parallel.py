"""Data-parallel runs: N real worker processes (gloo) give the 1-worker numbers, and a checkpoint
hands off between worker counts. Workers share each global batch; gradients are all-reduced."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sweeps.config import config_from_dict
from sweeps.dryrun import plan
from sweeps.estimate import study_planned_bytes
from sweeps.trials import build_trials
from tests.dp_trial import STUDY
from tests.faults_util import (
    REPO,
    grid_env,
    private_ray_tmp,
    processes_under,
    study,
    wait_for,
    write_yaml,
)
from xfer.data import prepare
from xfer.errors import XferError
from xfer.model import MODEL_CONFIGS
from xfer.training import checkpoint as ckpt
from xfer.training.config import TrainConfig
from xfer.training.loop import Callback, run
from xfer.training.parallel import SINGLE, Workers, exit_worker

MODEL = replace(MODEL_CONFIGS["tiny"], d_model=32, n_layers=2, n_heads=2, d_head=16, d_ff=64)
CFG = TrainConfig(kind="scratch", seq_len=64, batch_size=8, micro_batch_size=2, epochs=1,
                  max_steps=12, lr=3e-3, min_lr=3e-4, eval_every=4, eval_at_epoch_end=False,
                  eval_max_bytes=1500, threads=1)
REL = 1e-5  # float32 sums in another order: agreement to ~1e-6 relative is expected


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    prepare("synthetic", ["base", "twin"], [6_000, 12_000], 2000, 2000, 0, root)
    return root


class Recorder(Callback):
    """Train and dev losses as they come; raises at step ``stop_at`` (a crash)."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.steps: list[float] = []
        self.evals: list[tuple[int, float, bool]] = []
        self.stop_at = stop_at

    def on_step(self, metrics: dict) -> None:
        if metrics["step"] == self.stop_at:
            raise RuntimeError("simulated crash")
        self.steps.append(metrics["train_loss"])

    def on_eval(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        self.evals.append((metrics["step"], metrics["dev_loss"], checkpoint_dir is not None))


def _worker(rank: int, world: int, port: int, job: dict, out: Path) -> None:
    """One worker process: joins the gloo group, runs, writes what it saw to ``out``, exits
    through :func:`exit_worker` (a plain return aborted 5 of 20 two-worker runs at exit)."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    rec = Recorder(job.get("stop_at"))
    record = {"rank": rank, "steps": rec.steps, "evals": rec.evals}
    try:
        result = run(MODEL, TrainConfig.from_dict(job["cfg"]), Path(job["data"]),
                     job["lang"], job["budget"], Path(job["out_dir"]),
                     init_checkpoint=job.get("init"), callbacks=[rec],
                     workers=Workers.from_process_group())
        record["result"] = result.to_dict()
    except RuntimeError as exc:
        record["crashed"] = str(exc)
    (out / f"rank{rank}.json").write_text(json.dumps(record))
    exit_worker()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(world: int, out_dir: Path, data: Path, cfg: TrainConfig = CFG, *, lang: str = "base",
          budget: int = 12_000, stop_at: int | None = None, init: Path | None = None) -> dict:
    """A run on ``world`` worker processes (1: in this process, no process group); rank 0's
    record: per-step train losses, evaluations, result."""
    if world == 1:
        rec = Recorder(stop_at)
        record: dict = {"steps": rec.steps, "evals": rec.evals}
        try:
            record["result"] = run(MODEL, cfg, data, lang, budget, out_dir, callbacks=[rec],
                                   init_checkpoint=init).to_dict()
        except RuntimeError as exc:
            record["crashed"] = str(exc)
        return json.loads(json.dumps(record))
    logs = out_dir.with_name(out_dir.name + f"-logs{world}")
    logs.mkdir(parents=True, exist_ok=True)
    job = {"cfg": cfg.to_dict(), "data": str(data), "lang": lang, "budget": budget,
           "out_dir": str(out_dir), "stop_at": stop_at, "init": str(init) if init else None}
    mp.spawn(_worker, args=(world, _free_port(), job, logs), nprocs=world, join=True)
    records = [json.loads((logs / f"rank{r}.json").read_text()) for r in range(world)]
    for other in records[1:]:  # every worker saw the same all-reduced numbers
        assert other["steps"] == records[0]["steps"]
        assert [e[:2] for e in other["evals"]] == [e[:2] for e in records[0]["evals"]]
        assert not any(e[2] for e in other["evals"])  # only rank 0 writes checkpoints
    return records[0]


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL)


def test_two_workers_give_the_one_worker_numbers(data: Path, tmp_path: Path) -> None:
    one = train(1, tmp_path / "one", data)
    two = train(2, tmp_path / "two", data)
    assert len(one["steps"]) == len(two["steps"]) == 12
    assert all(close(a, b) for a, b in zip(one["steps"], two["steps"], strict=True)), \
        (one["steps"], two["steps"])
    assert [e[0] for e in two["evals"]] == [4, 8, 12]
    assert all(close(a[1], b[1]) for a, b in zip(one["evals"], two["evals"], strict=True))
    for key in ("dev_perplexity", "test_perplexity", "dev_bits_per_byte"):
        assert close(one["result"][key], two["result"][key]), key
    assert two["result"]["bytes_seen"] == one["result"]["bytes_seen"] == 12 * 8 * 64
    assert one["steps"][-1] < one["steps"][0]  # it learned something
    worst = max(abs(a - b) / a for a, b in zip(one["steps"], two["steps"], strict=True))
    print(f"\n1 worker: losses {one['steps'][0]:.7f} .. {one['steps'][-1]:.7f}, test ppl "
          f"{one['result']['test_perplexity']:.7f}\n2 workers: losses {two['steps'][0]:.7f} .. "
          f"{two['steps'][-1]:.7f}, test ppl {two['result']['test_perplexity']:.7f}; "
          f"largest relative loss difference {worst:.1e}")


def test_checkpoint_hands_off_between_worker_counts(data: Path, tmp_path: Path) -> None:
    """2 workers crash at step 7 and 1 worker resumes (from the step-4 checkpoint); 1 worker's
    pretrain finetunes on 2 workers. Both match the uninterrupted 1-worker runs."""
    cfg = replace(CFG, checkpoint_every=2)
    whole = train(1, tmp_path / "whole", data, cfg)
    crashed = train(2, tmp_path / "handoff", data, cfg, stop_at=7)
    assert "crashed" in crashed and len(crashed["steps"]) == 6
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "handoff" / "checkpoints")] == \
        ["step-00000004", "step-00000006"]
    resumed = train(1, tmp_path / "handoff", data, cfg)
    assert len(resumed["steps"]) == 6  # steps 7-12 from the step-6 checkpoint
    assert all(close(a, b) for a, b in zip(whole["steps"][6:], resumed["steps"], strict=True))
    assert close(whole["result"]["test_perplexity"], resumed["result"]["test_perplexity"])

    fine = replace(CFG, kind="finetune", lr=1e-3, warmup_steps=0, max_steps=6, eval_every=3)
    best = Path(whole["result"]["best_checkpoint"])
    on_one = train(1, tmp_path / "ft1", data, fine, lang="twin", budget=6_000, init=best)
    on_two = train(2, tmp_path / "ft2", data, fine, lang="twin", budget=6_000, init=best)
    assert all(close(a, b) for a, b in zip(on_one["steps"], on_two["steps"], strict=True))
    assert close(on_one["result"]["test_perplexity"], on_two["result"]["test_perplexity"])


def test_dry_run_shares_a_trial_over_its_workers(tmp_path: Path) -> None:
    one = plan(config_from_dict(STUDY))
    two = plan(config_from_dict({**STUDY, "resources": {"workers_per_trial": 2}}))
    assert two["resources"] == {"workers_per_trial": 2,
                                "per_worker": {"CPU": 1.0, "GPU": 0.0, "TPU": 0.0}}
    assert [t["train_bytes"] for t in one["trials"]] == [t["train_bytes"] for t in two["trials"]]
    assert all(math.isclose(a["hours"], 2 * b["hours"])
               for a, b in zip(one["trials"], two["trials"], strict=True))
    # a batch that does not split over the workers: one line, before anything runs
    bad = write_yaml(tmp_path / "bad.yaml", study(resources={"workers_per_trial": 3}))
    done = subprocess.run([sys.executable, "-m", "sweeps.grid", "--config", str(bad),
                           "--dry-run"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith(
        "train.pretrain: batch_size 4 is not divisible by 3 workers "
        "(resources.workers_per_trial)"), done.stderr


def test_batch_must_split_over_the_workers() -> None:
    assert Workers(0, 2).micro_batch_size(8, 8) == 4  # a worker's share is its micro-batch
    assert SINGLE.micro_batch_size(8, 2) == 2
    with pytest.raises(XferError, match="not divisible by 3 workers"):
        Workers(0, 3).micro_batch_size(8, 2)
    with pytest.raises(XferError, match="not a multiple of micro_batch_size 3"):
        Workers(1, 2).micro_batch_size(8, 3)
    assert list(Workers(1, 2).rows(torch.arange(8).numpy())) == [4, 5, 6, 7]


def _train_workers(ray_tmp: Path) -> list[int]:
    """Pids of the Ray Train workers of our private Ray."""
    pids = []
    for pid in processes_under([ray_tmp]):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::RayTrainWorker"):
                pids.append(pid)
        except OSError:
            continue
    return pids


@pytest.mark.slow
def test_ray_train_trial_survives_a_killed_worker(tmp_path: Path) -> None:
    """The pretrain trial of tests/dp_trial.py through the real Tune trainable on 2 Ray Train
    workers; one worker is SIGKILLed once the step-6 checkpoint exists. Ray Train restarts the
    group, which resumes from the newest checkpoint (no evaluation is reported twice), and the
    result matches the same run on 1 worker without Ray."""
    run_dir = tmp_path / "run"
    ckpts = run_dir / "trials" / "pretrain-base-8K-s0" / "checkpoints"
    with private_ray_tmp() as ray_tmp:
        proc = subprocess.Popen([sys.executable, "-m", "tests.dp_trial", str(run_dir),
                                 "--workers", "2"], cwd=REPO, env=grid_env(ray_tmp),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: any(int(p.name[5:]) >= 6 for p in ckpt.list_checkpoints(ckpts)),
                     240, "a checkpoint at step 6 or later", proc, poll=0.02)
            workers = wait_for(lambda: _train_workers(ray_tmp), 30, "a Ray Train worker", proc)
            os.kill(workers[0], signal.SIGKILL)
            out, err = proc.communicate(timeout=400)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    steps = report["eval_steps"]
    assert steps == sorted(set(steps)) and steps[-1] == 45, steps  # resumed, not restarted
    assert list((run_dir / "tensorboard" / "pretrain-base-8K-s0").glob("events.out.tfevents.*"))

    config = config_from_dict(STUDY)
    (trial,) = [t for t in build_trials(config) if t.kind == "pretrain"]
    cfg = replace(config.train["pretrain"], seed=trial.seed, threads=1)
    alone = run(config.model, cfg, run_dir / "data", trial.lang, trial.budget, tmp_path / "alone")
    final = report["final"]
    assert final["steps"] == alone.steps == 45  # min_steps 40: 3 epochs of 15 steps
    assert final["bytes_seen"] == study_planned_bytes(config, trial)  # the ETA's count
    for key in ("dev_perplexity", "test_perplexity"):
        assert close(final[key], getattr(alone, key)), (key, final[key], getattr(alone, key))
    print(f"\nRay Train, 2 workers, one killed: test ppl {final['test_perplexity']:.7f}; "
          f"1 worker: {alone.test_perplexity:.7f}")
