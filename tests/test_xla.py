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
from xfer.training.loop import run

os.environ.setdefault("PJRT_DEVICE", "CPU")
STEPS = 6
CFG = replace(BASE, max_steps=STEPS, precision="fp32")  # bf16 autocast is xla's default
LOSS_TOLERANCE = 1e-4  # nats/byte; float32 sums in another order
WARMUP_STEPS = 2  # step 1 compiles the step, step 2 again (the optimiser's state now exists)


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


class Counting(Recorder):
    """A Recorder that also takes torch_xla's totals after every optimiser step."""

    def __init__(self) -> None:
        super().__init__()
        self.totals: list[dict[str, int]] = []

    def on_step(self, metrics: dict) -> None:
        super().on_step(metrics)
        self.totals.append(_xla_counts())

    def per_step(self) -> dict[str, float]:
        """Compilations, graph executions and device-to-host transfers per optimiser step over
        the steps after WARMUP_STEPS (the run's evaluations, after its last step, left out)."""
        first, last = self.totals[WARMUP_STEPS - 1], self.totals[-1]
        steps = len(self.totals) - WARMUP_STEPS
        return {"steps": steps, **{k: (last[k] - first[k]) / steps for k in first}}


def _train(data: Path, out: Path, device: str, **changes
           ) -> tuple[list[float], float, Path, dict[str, float] | None]:
    """Losses (nats/byte), test perplexity, best checkpoint and, on xla, counts per step."""
    rec = Counting() if device.startswith("xla") else Recorder()
    result = run(TINY, replace(CFG, device=device, **changes), data, "en", 40_000, out,
                 callbacks=[rec])
    counts = rec.per_step() if isinstance(rec, Counting) else None
    return [m["train_loss"] for m in rec.steps], result.test_perplexity, out / "best", counts


@pytest.fixture(scope="module")
def on_xla(english: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    return _train(english, tmp_path_factory.mktemp("xla"), "xla")


@pytest.fixture(scope="module")
def on_cpu(english: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    return _train(english, tmp_path_factory.mktemp("cpu"), "cpu")


def test_xla_loss_curve_matches_eager_cpu(on_xla, on_cpu) -> None:
    xla_losses, xla_ppl, _, _ = on_xla
    cpu_losses, cpu_ppl, _, _ = on_cpu
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
    xla_losses, _, best, _ = on_xla
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
from tests.test_xla import CFG, Counting
from tests.test_train import TINY
from xfer.training.device import resolve_device
from xfer.training.loop import run
cfg = replace(CFG, device="xla:spmd")
replicas = resolve_device(cfg.device, cfg.precision).replicas
rec = Counting()
result = run(TINY, cfg, Path(sys.argv[1]), "en", 40_000, Path(sys.argv[2]), callbacks=[rec])
print(json.dumps({"replicas": replicas, "losses": [m["train_loss"] for m in rec.steps],
                  "test_perplexity": result.test_perplexity, "counts": rec.per_step()}))
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
    got = _spmd_child(SPMD_CHILD, english, tmp_path)
    cpu_losses, cpu_ppl, _, _ = on_cpu
    diff = max(abs(a - b) for a, b in zip(got["losses"], cpu_losses, strict=True))
    print(f"\nSPMD over {got['replicas']} XLA:CPU devices vs one eager CPU: max |loss diff| "
          f"{diff:.2e} nats/byte; test perplexity {got['test_perplexity']:.6f} vs {cpu_ppl:.6f}")
    assert got["replicas"] == 2
    assert diff < LOSS_TOLERANCE
    assert got["test_perplexity"] == pytest.approx(cpu_ppl, rel=1e-5)
    _check_counts(f"SPMD over {got['replicas']} XLA:CPU devices", got["counts"],
                  CFG.batch_size // CFG.micro_batch_size)


def _check_counts(where: str, counts: dict[str, float], micro_batches: int) -> None:
    """Per optimiser step after warm-up: no compilation (every step reuses the compiled graph),
    one graph execution (forward and backward of every micro-batch, clipping and AdamW: one
    graph, run by the step's torch_xla.sync()), at most one device-to-host transfer (the logged
    loss, read after that graph ran)."""
    print(f"\n{where}, {micro_batches} micro-batches a step, per optimiser step over "
          f"{counts['steps']} steps after {WARMUP_STEPS} warm-up steps: compilations "
          f"{counts['compilations']:g}, graph executions {counts['executions']:g}, "
          f"device-to-host transfers {counts['transfers']:g}")
    assert counts["compilations"] == 0
    assert counts["executions"] == 1
    assert counts["transfers"] <= 1


def test_one_graph_and_at_most_one_read_per_step(on_xla, english: Path,  # noqa: F811
                                                 tmp_path: Path) -> None:
    _check_counts("one XLA:CPU device", on_xla[3], CFG.batch_size // CFG.micro_batch_size)
    counts = _train(english, tmp_path, "xla", micro_batch_size=CFG.batch_size // 4)[3]
    _check_counts("one XLA:CPU device", counts, 4)

