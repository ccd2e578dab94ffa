"""The xla device for real, on XLA:CPU: same losses as eager CPU, SPMD data parallel over two
devices, a checkpoint trained on xla finetuned on cpu, and the shape of a training step's work
(torch_xla.debug.metrics): after warm-up, no compilation, one graph execution and one
device-to-host transfer (the logged loss) per optimiser step, with 1 or 4 micro-batches, on one
device and under SPMD over two.

These run in the `tpu` extra's own environment (torch 2.9.0 + torch-xla 2.9.0) through
``.ci/xla``; elsewhere torch_xla is absent and they are skipped (with XFER_CI_XLA=1 its absence
is a failure instead).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

if os.environ.get("XFER_CI_XLA") == "1":
    import torch_xla  # noqa: F401  (imported before any backward pass: autograd's device queues)
else:
    pytest.importorskip("torch_xla")

from tests.conftest import REPO
from tests.test_train import BASE, TINY, Recorder, english  # noqa: F401  (fixture)
from xfer.training.checkpoint import load_model
from xfer.training.loop import run, setup, train_step
from xfer.training.parallel import SINGLE

os.environ.setdefault("PJRT_DEVICE", "CPU")
STEPS = 6
CFG = replace(BASE, max_steps=STEPS, precision="fp32")  # bf16 autocast is xla's default
LOSS_TOLERANCE = 1e-4  # nats/byte; float32 sums in another order
WARMUP_STEPS = 2  # step 1 compiles the step, step 2 again (the optimiser's state now exists)
COUNTED_STEPS = 4


def _train(data: Path, out: Path, device: str) -> tuple[list[float], float, Path]:
    rec = Recorder()
    result = run(TINY, replace(CFG, device=device), data, "en", 40_000, out, callbacks=[rec])
    return [m["train_loss"] for m in rec.steps], result.test_perplexity, out / "best"


@pytest.fixture(scope="module")
def on_xla(english: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    return _train(english, tmp_path_factory.mktemp("xla"), "xla")


@pytest.fixture(scope="module")
def on_cpu(english: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    return _train(english, tmp_path_factory.mktemp("cpu"), "cpu")


def test_xla_loss_curve_matches_eager_cpu(on_xla, on_cpu) -> None:
    xla_losses, xla_ppl, _ = on_xla
    cpu_losses, cpu_ppl, _ = on_cpu
    assert len(xla_losses) == len(cpu_losses) == STEPS
    diff = max(abs(a - b) for a, b in zip(xla_losses, cpu_losses, strict=True))
    print(f"\nXLA:CPU vs eager CPU over {STEPS} steps: max |loss diff| {diff:.2e} nats/byte; "
          f"test perplexity {xla_ppl:.6f} vs {cpu_ppl:.6f}; losses {xla_losses}")
    assert diff < LOSS_TOLERANCE
    assert xla_ppl == pytest.approx(cpu_ppl, rel=1e-5)
    assert cpu_losses[-1] < cpu_losses[0] - 1.0  # it learned: the comparison is not of noise


def _pickle_of(torch_file: Path) -> bytes:
    """The pickle (object structure, device names) inside a torch.save zip archive."""
    with zipfile.ZipFile(torch_file) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))


def test_checkpoint_trained_on_xla_finetunes_on_cpu(on_xla, english: Path,  # noqa: F811
                                                     tmp_path: Path) -> None:
    xla_losses, _, best = on_xla
    last_step = sorted((best.parent / "checkpoints").iterdir())[-1]
    for saved in (best / "model.pt", last_step / "trainer.pt"):
        assert b"xla" not in _pickle_of(saved)  # tensors stored on CPU: load without torch_xla
    weights = load_model(best).state_dict()
    rec = Recorder()
    cfg = replace(CFG, kind="finetune", max_steps=3, device="cpu")
    result = run(TINY, cfg, english, "en", 40_000, tmp_path / "ft", init_checkpoint=best,
                 callbacks=[rec])
    print(f"\nfinetune on cpu from the xla checkpoint: first loss {rec.steps[0]['train_loss']:.4f} "
          f"(scratch: {xla_losses[0]:.4f}), test perplexity {result.test_perplexity:.3f}")
    assert rec.steps[0]["train_loss"] < xla_losses[0] - 1.0  # it started from the xla weights
    assert load_model(result.best_checkpoint).state_dict().keys() == weights.keys()


SPMD_CHILD = """
import json, sys
from dataclasses import replace
from pathlib import Path
from tests.test_train import BASE, TINY, Recorder
from xfer.training.device import resolve_device
from xfer.training.loop import run
cfg = replace(BASE, max_steps={steps}, precision="fp32", device="xla:spmd")
replicas = resolve_device(cfg.device, cfg.precision).replicas
rec = Recorder()
result = run(TINY, cfg, Path(sys.argv[1]), "en", 40_000, Path(sys.argv[2]), callbacks=[rec])
print(json.dumps({{"replicas": replicas, "losses": [m["train_loss"] for m in rec.steps],
                  "test_perplexity": result.test_perplexity}}))
"""


def _spmd_child(code: str, data: Path, tmp_path: Path):
    """What ``code`` prints last (JSON), run in a child process with 2 XLA:CPU devices (SPMD is
    chosen before the first XLA tensor: a process of its own); argv: data folder, output."""
    env = {**os.environ, "PJRT_DEVICE": "CPU", "CPU_NUM_DEVICES": "2",
           "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code, str(data), str(tmp_path / "spmd")],
                          env=env, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_spmd_data_parallel_over_two_xla_devices_matches_one_device(
        on_cpu, english: Path, tmp_path: Path) -> None:  # noqa: F811
    got = _spmd_child(SPMD_CHILD.format(steps=STEPS), english, tmp_path)
    cpu_losses, cpu_ppl, _ = on_cpu
    diff = max(abs(a - b) for a, b in zip(got["losses"], cpu_losses, strict=True))
    print(f"\nSPMD over {got['replicas']} XLA:CPU devices vs one eager CPU: max |loss diff| "
          f"{diff:.2e} nats/byte; test perplexity {got['test_perplexity']:.6f} vs {cpu_ppl:.6f}")
    assert got["replicas"] == 2
    assert diff < LOSS_TOLERANCE
    assert got["test_perplexity"] == pytest.approx(cpu_ppl, rel=1e-5)


def _xla_counts() -> dict[str, int]:
    """torch_xla's running totals: compilations (cache misses), graph executions (counted when
    launched; the ExecuteTime metric lags, being recorded when an execution ends) and
    device-to-host transfers (each blocking read of a tensor's value)."""
    import torch_xla.debug.metrics as met

    transfers = met.metric_data("TransferFromDeviceTime")
    return {"compilations": met.counter_value("UncachedCompile") or 0,
            "executions": sum(met.counter_value(name) or 0
                              for name in ("ExecuteComputation", "ExecuteReplicated")),
            "transfers": transfers[0] if transfers else 0}


def step_counts(data: Path, out: Path, **changes) -> dict[str, float]:
    """Per optimiser step on xla over COUNTED_STEPS steps after WARMUP_STEPS: compilations,
    graph executions and device-to-host transfers (``changes``: TrainConfig fields)."""
    cfg = replace(BASE, max_steps=WARMUP_STEPS + COUNTED_STEPS, **{"device": "xla", **changes})
    r = setup(TINY, cfg, data, "en", 40_000, out, init_checkpoint=None, resume_from=None,
              callbacks=(), workers=SINGLE)
    for _ in range(WARMUP_STEPS):
        train_step(r)
    before = _xla_counts()
    for _ in range(COUNTED_STEPS):
        train_step(r)
    after = _xla_counts()
    return {"micro_batches": cfg.batch_size // cfg.micro_batch_size,
            **{k: (after[k] - before[k]) / COUNTED_STEPS for k in after}}


def _check_counts(where: str, counts: dict[str, float]) -> None:
    print(f"\n{where}, {counts['micro_batches']} micro-batches a step, per optimiser step after "
          f"{WARMUP_STEPS} warm-up steps (over {COUNTED_STEPS}): compilations "
          f"{counts['compilations']:g}, graph executions {counts['executions']:g}, "
          f"device-to-host transfers {counts['transfers']:g}")
    assert counts["compilations"] == 0  # every step reuses the warm-up's compiled graph
    assert counts["executions"] == 1  # forward, backward, clip and AdamW: one graph
    assert counts["transfers"] <= 1  # the logged loss, read after the graph ran


@pytest.mark.parametrize("micro_batch_size", [8, 2])  # 1 and 4 micro-batches of BASE's 8 rows
def test_one_graph_and_at_most_one_read_per_step(micro_batch_size: int, english: Path,  # noqa: F811
                                                 tmp_path: Path) -> None:
    _check_counts("one XLA:CPU device",
                  step_counts(english, tmp_path, micro_batch_size=micro_batch_size))


COUNTS_CHILD = """
import json, sys
from pathlib import Path
from tests.test_xla import step_counts
print(json.dumps([step_counts(Path(sys.argv[1]), Path(sys.argv[2]) / str(m), device="xla:spmd",
                              micro_batch_size=m) for m in (8, 2)]))
"""


def test_one_graph_and_at_most_one_read_per_step_under_spmd(english: Path,  # noqa: F811
                                                            tmp_path: Path) -> None:
    got = _spmd_child(COUNTS_CHILD, english, tmp_path)
    for counts in got:
        _check_counts("SPMD over 2 XLA:CPU devices", counts)
