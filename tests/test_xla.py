"""The xla device for real, on XLA:CPU: same losses as eager CPU, SPMD data parallel over two
devices, a checkpoint trained on xla finetuned on cpu.

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


def test_spmd_data_parallel_over_two_xla_devices_matches_one_device(
        on_cpu, english: Path, tmp_path: Path) -> None:  # noqa: F811
    env = {**os.environ, "PJRT_DEVICE": "CPU", "CPU_NUM_DEVICES": "2",
           "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", SPMD_CHILD.format(steps=STEPS), str(english),
                           str(tmp_path / "spmd")], env=env, capture_output=True, text=True,
                          timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    cpu_losses, cpu_ppl, _ = on_cpu
    diff = max(abs(a - b) for a, b in zip(got["losses"], cpu_losses, strict=True))
    print(f"\nSPMD over {got['replicas']} XLA:CPU devices vs one eager CPU: max |loss diff| "
          f"{diff:.2e} nats/byte; test perplexity {got['test_perplexity']:.6f} vs {cpu_ppl:.6f}")
    assert got["replicas"] == 2
    assert diff < LOSS_TOLERANCE
    assert got["test_perplexity"] == pytest.approx(cpu_ppl, rel=1e-5)
