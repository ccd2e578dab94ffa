"""Models a user takes away from a study (``xfer export``), samples from them (``xfer generate``)
and every trial's curves in TensorBoard, all on the session's real tiny study (conftest)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch

from tests.conftest import TinyRun
from tests.faults_util import tensorboard_scalars
from xfer.cli import main as xfer_main
from xfer.data import load_split
from xfer.model import ByteLM
from xfer.model.generate import as_text, sample_bytes
from xfer.training.checkpoint import load_model
from xfer.training.config import TrainConfig
from xfer.training.device import resolve_device
from xfer.training.loop import evaluate

KEY = "finetune-base-twin-4K-s0"
EXPORT_FILES = {"model.safetensors", "config.json", "README.md"}


def xfer(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """``xfer ARGV`` in this process: exit status, stdout, stderr."""
    capsys.readouterr()
    try:
        rc = xfer_main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(err: str, command: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"xfer {command}: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.slow
def test_export_reproduces_the_trials_test_perplexity(tiny_run: TinyRun, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    run_dir, out = tiny_run.run_dir, tmp_path / "model"
    rc, stdout, err = xfer(capsys, "export", run_dir, "--trial", KEY, "--out", out)
    assert rc == 0, err
    assert stdout.strip() == str(out)
    assert {p.name for p in out.iterdir()} == EXPORT_FILES
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left

    model = ByteLM.from_pretrained(out)
    trial = run_dir / "trials" / KEY
    original = load_model(trial / "best")
    assert model.cfg == original.cfg
    # one embedding table, input and output (tied): the file holds it once and reloads it equal
    assert model.state_dict().keys() == original.state_dict().keys()
    for name, tensor in original.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    ids = torch.randint(3, 259, (2, 40), generator=torch.Generator().manual_seed(0))
    assert torch.equal(model(ids), original.eval()(ids))
    meta = json.loads((trial / "best" / "meta.json").read_text())
    cfg = TrainConfig.from_dict(meta["train"])
    nats, count = evaluate(model, load_split(run_dir / "data", "twin", "test"), cfg,
                           resolve_device("cpu", "fp32"))
    expected = json.loads((trial / "result.json").read_text())["test_perplexity"]
    got = math.exp(nats / count)
    print(f"test perplexity: export {got!r}, trial {expected!r}, "
          f"relative difference {abs(got - expected) / expected:.2e}")
    assert got == pytest.approx(expected, rel=1e-5)

    card = (out / "README.md").read_text()
    row = json.loads((run_dir / "ledger" / f"{KEY}.json").read_text())
    result = json.loads((trial / "result.json").read_text())
    name, digest = run_dir.name.rsplit("-", 1)
    for lang in ("base", "twin"):
        sha = hashlib.sha256((run_dir / "data" / lang / "manifest.json").read_bytes())
        assert f"{lang}: `{sha.hexdigest()}`" in card
    for needle in ("| kind | finetune", "| source language | base |", "| target language | twin |",
                   "| budget | 4K (4,000 bytes of twin) |", f"| bytes seen | {row['bytes_seen']:,}",
                   f"{result['dev_perplexity']:.6g} ({result['dev_bits_per_byte']:.6g} bits/byte)",
                   f"{result['test_perplexity']:.6g} ({result['test_bits_per_byte']:.6g} bits",
                   f"| study | {name}, config hash {digest} ", "python -m sweeps.grid --config",
                   f"`xfer export {run_dir} --trial {KEY} --out {out}`"):
        assert needle in card, needle
    assert json.loads((out / "config.json").read_text())["xfer"]["seq_len"] == cfg.seq_len


@pytest.mark.slow
def test_export_all(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc, stdout, err = xfer(capsys, "export", tiny_run.run_dir, "--all", "--out", tmp_path / "all")
    assert rc == 0, err
    keys = {p.stem for p in (tiny_run.run_dir / "ledger").glob("*.json")}
    assert len(keys) == 15 and {p.name for p in (tmp_path / "all").iterdir()} == keys
    assert len(stdout.splitlines()) == 15
    for key in keys:
        assert {p.name for p in (tmp_path / "all" / key).iterdir()} == EXPORT_FILES
        assert f"# {key}" in (tmp_path / "all" / key / "README.md").read_text()


@pytest.mark.slow
def test_export_bad_input(tiny_run: TinyRun, tmp_path: Path,
                          capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "model"
    rc, _, err = xfer(capsys, "export", tmp_path / "nope", "--trial", KEY, "--out", out)
    assert rc == 2 and "no such run folder" in one_error_line(err, "export")
    rc, _, err = xfer(capsys, "export", tmp_path, "--trial", KEY, "--out", out)
    assert rc == 2 and "not a study run folder" in one_error_line(err, "export")
    rc, _, err = xfer(capsys, "export", tiny_run.run_dir, "--trial", "pretrain-xx-1K-s0",
                      "--out", out)
    assert rc == 2 and "unknown trial key 'pretrain-xx-1K-s0'" in one_error_line(err, "export")
    assert list(tmp_path.iterdir()) == []  # nothing written, no temp folder left
    (out / "mine").mkdir(parents=True)
    rc, _, err = xfer(capsys, "export", tiny_run.run_dir, "--trial", KEY, "--out", out)
    assert rc == 2 and "already exists" in one_error_line(err, "export")
    assert [p.name for p in out.iterdir()] == ["mine"]
    rc, _, err = xfer(capsys, "export", tiny_run.run_dir, "--out", out)
    assert rc == 2 and one_error_line(err, "export")


@pytest.mark.slow
def test_generate_is_seeded_and_repeatable(tiny_run: TinyRun, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    key = "pretrain-base-40K-s0"
    out = tmp_path / "model"
    assert xfer(capsys, "export", tiny_run.run_dir, "--trial", key, "--out", out)[0] == 0
    args = ["--prompt", "The ", "--bytes", "32"]
    first = xfer(capsys, "generate", out, *args, "--seed", "3")
    assert first[0] == 0 and first[1].startswith("The ") and len(first[1]) > len("The \n")
    assert xfer(capsys, "generate", out, *args, "--seed", "3") == first
    assert xfer(capsys, "generate", out, *args, "--seed", "4")[1] != first[1]
    # the trial folder holds the same model: the same seed gives the same text
    assert xfer(capsys, "generate", tiny_run.run_dir / "trials" / key, *args, "--seed", "3") \
        == first
    # temperature 0 is greedy: each byte is the argmax of the model's next-byte logits
    model = ByteLM.from_pretrained(out)
    greedy = sample_bytes(model, b"The ", 16, 0.0, seed=0, context=64)
    ids = [1, *(b + 3 for b in b"The ")]
    for byte in greedy:
        logits = model(torch.tensor([ids]))[0, -1]
        logits[[0, 2]] = -math.inf
        assert int(logits.argmax()) == byte + 3
        ids.append(byte + 3)
    rc, stdout, _ = xfer(capsys, "generate", out, "--prompt", "The ", "--bytes", "16",
                         "--temperature", "0", "--seed", "9")
    assert rc == 0 and stdout == as_text(b"The " + greedy) + "\n"


def test_generate_text_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert as_text(b"ok \xc3\xa9 \xff\xc3") == "ok \u00e9 \ufffd\ufffd"
    rc, _, err = xfer(capsys, "generate", tmp_path / "nope", "--prompt", "a")
    assert rc == 2 and "no such model folder" in one_error_line(err, "generate")
    rc, _, err = xfer(capsys, "generate", tmp_path, "--prompt", "a")
    assert rc == 2 and "not an exported model" in one_error_line(err, "generate")
    rc, _, err = xfer(capsys, "generate", tmp_path, "--temperature", "-1")
    assert rc == 2 and "--temperature" in one_error_line(err, "generate")
    rc, _, err = xfer(capsys, "generate", tmp_path, "--bytes", "0")
    assert rc == 2 and "--bytes" in one_error_line(err, "generate")


@pytest.mark.slow
def test_tensorboard_has_every_trials_curves(tiny_run: TinyRun) -> None:
    run_dir = tiny_run.run_dir
    rows = [json.loads(p.read_text()) for p in (run_dir / "ledger").glob("*.json")]
    assert len(rows) == 15
    for row in rows:
        scalars = tensorboard_scalars(run_dir / "tensorboard" / row["key"])
        assert {"train_loss", "dev_loss", "bytes_per_s", "dev_perplexity"} <= set(scalars)
        assert [s for s, _ in scalars["train_loss"]] == list(range(1, row["steps"] + 1))
        assert all(0 < v < 10 for _, v in scalars["train_loss"] + scalars["dev_loss"])
        assert all(v > 0 for _, v in scalars["bytes_per_s"])
        assert scalars["dev_loss"][-1][0] == row["steps"]  # evaluated at the last step


def test_from_pretrained_refuses_weights_of_another_model(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    from xfer.errors import XferError
    from xfer.model import ModelConfig

    small = ModelConfig(name="a", d_model=16, n_layers=1, n_heads=1, d_head=16, d_ff=32)
    model = ByteLM(small)
    model.save_pretrained(tmp_path / "m")
    assert torch.equal(ByteLM.from_pretrained(tmp_path / "m").embed.weight, model.embed.weight)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["cfg"]["d_model"] = 32
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(XferError, match="does not hold this model's weights"):
        ByteLM.from_pretrained(tmp_path / "m")
    rc, _, err = xfer(capsys, "generate", tmp_path / "m", "--prompt", "a")
    assert rc == 2 and "does not hold this model's weights" in one_error_line(err, "generate")
