"""One training run: learning on real text, exact resume, best checkpoint, bad input."""

from __future__ import annotations

import gzip
import json
import math
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.faults_util import tensorboard_scalars
from xfer.data import prepare
from xfer.errors import XferError
from xfer.model import MODEL_CONFIGS
from xfer.training import checkpoint as ckpt
from xfer.training.checkpoint import load_model
from xfer.training.config import TrainConfig, decays, run_epochs, run_steps, warmup_steps
from xfer.training.loop import Callback, run, should_stop

TINY = MODEL_CONFIGS["tiny"]
BASE = TrainConfig(kind="scratch", seq_len=64, batch_size=8, micro_batch_size=4, epochs=1,
                   lr=3e-3, min_lr=3e-4, eval_max_bytes=4096, threads=1)


@pytest.fixture(scope="module")
def english(shared_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset made by the real data layer from 9000 lines of the bundled English."""
    corpus = tmp_path_factory.mktemp("corpus")
    with gzip.open(shared_corpus / "text" / "en.txt.gz", "rt", encoding="utf-8") as f:
        (corpus / "en.txt").write_text("".join(next(f) for _ in range(9000)), encoding="utf-8")
    root = tmp_path_factory.mktemp("data")
    prepare(str(corpus), ["en"], [20_000, 40_000, 260_000], 8000, 8000, 0, root)
    return root


class Recorder(Callback):
    def __init__(self, stop_at: int | None = None) -> None:
        self.steps: list[dict] = []
        self.evals: list[tuple[dict, Path | None]] = []
        self.stop_at = stop_at

    def on_step(self, metrics: dict) -> None:
        if metrics["step"] == self.stop_at:
            raise RuntimeError("simulated crash")
        self.steps.append(metrics)

    def on_eval(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        self.evals.append((metrics, checkpoint_dir))


@pytest.mark.slow
def test_tiny_model_learns_real_text(english: Path, tmp_path: Path, shared_corpus: Path) -> None:
    cfg = replace(BASE, batch_size=16, seq_len=128, micro_batch_size=16, max_steps=120,
                  eval_every=60)
    rec = Recorder()
    flores = shared_corpus / "parallel" / "flores200" / "en.txt"
    result = run(TINY, cfg, english, "en", 260_000, tmp_path, callbacks=[rec],
                 extra_eval={"flores": flores})
    assert result.steps == 120 and result.bytes_seen == 120 * 16 * 128
    first_loss = rec.steps[0]["train_loss"]
    assert first_loss > 4.0  # about ln 259 = 5.56 at initialisation
    assert math.log(result.dev_perplexity) < 0.5 * math.log(259)
    assert result.dev_bits_per_byte < 4.0  # 8 bits/byte at initialisation
    out = result.to_dict()
    assert out["flores_total_bits"] > 0 and out["flores_bits_per_byte"] < 4.5
    assert [m["step"] for m, _ in rec.evals] == [60, 120]
    assert all(d is not None and d.is_dir() for _, d in rec.evals)
    # a rerun of a finished run returns the stored result without training
    assert run(TINY, cfg, english, "en", 260_000, tmp_path).to_dict() == out
    assert load_model(Path(result.best_checkpoint)).cfg == TINY


def test_restart_from_checkpoint_gives_identical_final_loss(english: Path, tmp_path: Path) -> None:
    cfg = replace(BASE, max_steps=7, eval_every=3, checkpoint_every=1)
    whole = Recorder()
    straight = run(TINY, cfg, english, "en", 40_000, tmp_path / "a", callbacks=[whole])
    crashing = Recorder(stop_at=5)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(TINY, cfg, english, "en", 40_000, tmp_path / "b", callbacks=[crashing])
    rest = Recorder()
    resumed = run(TINY, cfg, english, "en", 40_000, tmp_path / "b", callbacks=[rest])
    assert rest.steps[0]["step"] == 5
    assert rest.steps[-1]["train_loss"] == whole.steps[-1]["train_loss"]
    assert resumed.dev_perplexity == straight.dev_perplexity
    assert resumed.test_perplexity == straight.test_perplexity
    a = load_model(tmp_path / "a" / "checkpoints" / "step-00000007").state_dict()
    b = load_model(tmp_path / "b" / "checkpoints" / "step-00000007").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # resume_from an explicit checkpoint directory (as Ray Tune hands it back)
    again = run(TINY, cfg, english, "en", 40_000, tmp_path / "c",
                resume_from=tmp_path / "b" / "checkpoints" / "step-00000006")
    assert again.dev_perplexity == straight.dev_perplexity


def test_best_checkpoint_is_the_lowest_dev_loss(english: Path, tmp_path: Path) -> None:
    init = run(TINY, replace(BASE, max_steps=4), english, "en", 40_000, tmp_path / "pre")
    cfg = replace(BASE, kind="finetune", lr=0.05, epochs=3, eval_every=3, batch_size=32,
                  micro_batch_size=32, eval_max_bytes=None)
    rec = Recorder()
    result = run(TINY, cfg, english, "en", 20_000, tmp_path / "ft", callbacks=[rec],
                 init_checkpoint=Path(init.best_checkpoint))
    losses = [m["dev_loss"] for m, _ in rec.evals]
    best = min(range(len(losses)), key=losses.__getitem__)
    meta = json.loads((Path(result.best_checkpoint) / "meta.json").read_text())
    assert meta["state"]["best_step"] == rec.evals[best][0]["step"]
    assert math.isclose(math.log(result.dev_perplexity), losses[best], rel_tol=1e-5)


def test_schedule_rules() -> None:
    cfg = TrainConfig(kind="finetune")
    assert [warmup_steps(cfg, b, 10**6) for b in (10**6, 6 * 10**6, 6 * 10**9)] == [0, 3, 3000]
    assert warmup_steps(TrainConfig(kind="pretrain"), 6 * 10**9, 11444) == 3000
    assert not decays(cfg) and decays(TrainConfig(kind="scratch"))
    assert decays(TrainConfig(kind="finetune", lr_decay=True))
    assert not decays(TrainConfig(kind="scratch", lr_decay=False))


def test_bad_inputs_are_one_line_errors(english: Path, tmp_path: Path) -> None:
    with pytest.raises(XferError, match="fewer than one batch"):
        run(TINY, replace(BASE, batch_size=400), english, "en", 20_000, tmp_path / "x")
    with pytest.raises(XferError, match="unknown device"):
        run(TINY, replace(BASE, device="tpu"), english, "en", 40_000, tmp_path / "x")
    if not _has_torch_xla():
        with pytest.raises(XferError, match="torch_xla is not installed"):
            run(TINY, replace(BASE, device="xla"), english, "en", 40_000, tmp_path / "x")
    with pytest.raises(XferError, match="unknown training kind"):
        TrainConfig(kind="distil")
    with pytest.raises(XferError, match="multiple"):
        TrainConfig(batch_size=10, micro_batch_size=4)
    tiny = run(TINY, replace(BASE, max_steps=1), english, "en", 40_000, tmp_path / "t")
    with pytest.raises(XferError, match="model config 'tiny'"):
        run(MODEL_CONFIGS["small"], BASE, english, "en", 40_000, tmp_path / "s",
            init_checkpoint=Path(tiny.best_checkpoint))
    with pytest.raises(XferError, match=r"non-finite training loss at step \d+; last good "
                       r"checkpoint: .*step-0000000\d"):
        run(TINY, replace(BASE, lr=1e30, warmup_steps=0, grad_clip=1e30, checkpoint_every=1),
            english, "en", 40_000, tmp_path / "n")


def _has_torch_xla() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch_xla") is not None


def test_cli_trains_and_reports_bad_input(english: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from xfer.cli import main

    args = ["train", "--data", str(english), "--lang", "en", "--budget", "40K", "--out",
            str(tmp_path / "run"), "--seq-len", "64", "--batch-size", "8", "--micro-batch-size",
            "8", "--max-steps", "2", "--kind", "scratch"]
    assert main([*args, "--tensorboard", str(tmp_path / "tb")]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 2
    scalars = tensorboard_scalars(tmp_path / "tb")
    assert [s for s, _ in scalars["train_loss"]] == [1, 2]
    assert [s for s, _ in scalars["dev_loss"]] == [2] and scalars["bytes_per_s"][0][1] > 0
    assert main(args[:-2] + ["--kind", "distil"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_min_steps_patience_and_eval_rules() -> None:
    cfg = TrainConfig(kind="scratch", epochs=1, min_steps=20)
    assert run_epochs(cfg, 20_000, 9) == 3 and run_steps(cfg, 20_000, 9) == 27
    assert run_epochs(cfg, 20_000, 40) == 1  # already past the floor: configured epochs
    assert run_epochs(replace(cfg, epochs=None), 20_000, 1) == 20  # default 10 raised to 20
    assert run_steps(replace(cfg, max_steps=25), 20_000, 9) == 25
    stop = replace(cfg, patience=2)
    assert [should_stop(n, 30, stop) for n in (0, 1, 2, 3)] == [False, False, True, True]
    assert not should_stop(5, 19, stop)  # never before min_steps
    assert not should_stop(5, 30, cfg)  # patience 0: off
    with pytest.raises(XferError, match="eval_every > 0"):
        TrainConfig(eval_at_epoch_end=False)
    with pytest.raises(XferError, match="max_steps 5 is below min_steps 6"):
        TrainConfig(max_steps=5, min_steps=6)
    with pytest.raises(XferError, match="patience must not be negative"):
        TrainConfig(patience=-1)


def test_min_steps_stretch_the_run_and_eval_only_every_n_steps(english: Path,
                                                                tmp_path: Path) -> None:
    # 20 KB / (32 x 64 bytes) = 9 steps per epoch; min_steps 20 -> 3 epochs = 27 steps
    cfg = replace(BASE, batch_size=32, micro_batch_size=32, min_steps=20,
                  eval_at_epoch_end=False, eval_every=10, keep_checkpoints=10)
    rec = Recorder()
    result = run(TINY, cfg, english, "en", 20_000, tmp_path, callbacks=[rec])
    assert result.steps == 27 and result.epochs == 3
    assert [m["step"] for m, _ in rec.evals] == [10, 20, 27]  # not at 9, 18
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [
        "step-00000010", "step-00000020", "step-00000027"]
    lrs = [m["lr"] for m in rec.steps]  # warmup then cosine over all 27 steps, to min_lr
    warm = warmup_steps(cfg, 20_000, 27)
    assert warm == 7 and math.isclose(lrs[0], cfg.lr / warm)
    assert math.isclose(max(lrs), cfg.lr) and math.isclose(lrs[-1], cfg.min_lr)
    assert all(a > b for a, b in zip(lrs[warm:], lrs[warm + 1:], strict=False))


def test_patience_stops_early_and_survives_a_resume(english: Path, tmp_path: Path) -> None:
    # lr 1.0 is far too high: dev loss is best at step 2, then worse at steps 4 and 6 -> stop at 6
    cfg = replace(BASE, lr=1.0, warmup_steps=0, max_steps=16, eval_every=2,
                  eval_at_epoch_end=False, patience=2, checkpoint_every=1)
    whole = Recorder()
    straight = run(TINY, cfg, english, "en", 40_000, tmp_path / "a", callbacks=[whole])
    losses = [m["dev_loss"] for m, _ in whole.evals]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert straight.steps == whole.evals[-1][0]["step"] < 16
    assert len(losses) - 1 - best == cfg.patience  # stopped at the 2nd evaluation without a best
    assert whole.evals[-1][0]["stopped_early"] and not whole.evals[-2][0]["stopped_early"]
    meta = ckpt.read_meta(Path(straight.best_checkpoint))
    assert meta["state"]["best_step"] == whole.evals[best][0]["step"]
    # crash after the first evaluation without improvement; the count must come back on resume
    crash_at = whole.evals[best + 1][0]["step"] + 1
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(TINY, cfg, english, "en", 40_000, tmp_path / "b", callbacks=[Recorder(crash_at)])
    rest = Recorder()
    resumed = run(TINY, cfg, english, "en", 40_000, tmp_path / "b", callbacks=[rest])
    assert rest.steps[0]["step"] == crash_at and rest.steps[-1]["step"] == straight.steps
    assert [m["dev_loss"] for m, _ in rest.evals] == losses[best + 2:]
    assert resumed.to_dict() | {"wall_s": 0, "bytes_per_s": 0, "best_checkpoint": ""} == \
        straight.to_dict() | {"wall_s": 0, "bytes_per_s": 0, "best_checkpoint": ""}
    # a stopped run's last checkpoint does not train further (crash before result.json)
    (tmp_path / "a" / "result.json").unlink()
    again = Recorder()
    assert run(TINY, cfg, english, "en", 40_000, tmp_path / "a",
               callbacks=[again]).steps == straight.steps and again.steps == []


def test_new_settings_are_checked_on_resume(english: Path, tmp_path: Path) -> None:
    cfg = replace(BASE, max_steps=2)
    run(TINY, cfg, english, "en", 40_000, tmp_path / "t")
    with pytest.raises(XferError, match="was made with patience=0, not 3"):
        run(TINY, replace(cfg, patience=3), english, "en", 40_000, tmp_path / "t")
    # a run written before these fields existed resumes as if they had their defaults
    shutil.copytree(tmp_path / "t", tmp_path / "r")
    (tmp_path / "r" / "result.json").unlink()
    old = tmp_path / "r" / "checkpoints" / "step-00000002"
    for folder in (old, tmp_path / "r" / "best"):
        meta = json.loads((folder / "meta.json").read_text())
        for key in ("min_steps", "patience", "eval_at_epoch_end"):
            del meta["train"][key]
        (folder / "meta.json").write_text(json.dumps(meta))
    assert run(TINY, cfg, english, "en", 40_000, tmp_path / "r").steps == 2
    with pytest.raises(XferError, match="was made with min_steps=0, not 1"):
        run(TINY, replace(cfg, min_steps=1), english, "en", 40_000, tmp_path / "m",
            resume_from=old)


FAULTS_OF_LARGE_ALLOCATIONS = """
import resource, torch
from xfer.training.device import resolve_device

def faults(times: int) -> int:
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        torch.ones(48 * 2**20 // 4)  # 48 MB: above glibc's largest mmap threshold (32 MB)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start

before = faults(4)
resolve_device("cpu")
faults(12)  # the heap grows to its working size
print(before, faults(4))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
def test_cpu_training_reuses_freed_memory_without_page_faults() -> None:
    """On CPU, resolve_device makes malloc keep freed large blocks: allocating a 48 MB tensor
    again page-faults nothing (before: every 4 KiB page of every allocation)."""
    out = subprocess.run([sys.executable, "-c", FAULTS_OF_LARGE_ALLOCATIONS], check=True,
                         capture_output=True, text=True).stdout
    before, after = map(int, out.split())
    assert before >= 0.9 * 4 * 48 * 2**20 / 4096
    assert after < 1000
