"""A tiny study run folder built by hand in well under a second (no Ray, no training): one
scratch trial with a 16-wide model, its ledger row, result and best checkpoint, a results table
the analysis accepts, config.json and a data manifest. The crafted-run-folder and CLI fuzz tests
copy it and break one thing at a time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from xfer.cli import main as xfer_main

KEY = "scratch-qt-1K-s0"  # the one language-model trial
SOURCE, TARGET = "qs", "qt"  # codes no lang2vec entry has: distances are skipped with a note
RUN_NAME = "study-0123456789"


def tiny_model_config() -> dict:
    """A ByteLM config of 16 dimensions, one layer (about 5k parameters)."""
    from xfer.model import ModelConfig

    return ModelConfig(name="t16", d_model=16, n_layers=1, n_heads=1, d_head=16,
                       d_ff=32).to_dict()


def results_table() -> pd.DataFrame:
    """Scratch and finetune rows of one target at three budgets (bytes), two seeds."""
    rows = []
    for seed in (0, 1):
        for budget, scratch, finetune in ((1000, 9.0, 8.0), (2000, 8.0, 7.5), (4000, 7.0, 6.8)):
            for kind, init, source, ppl in (("scratch", "scratch", None, scratch),
                                            ("finetune", SOURCE, SOURCE, finetune)):
                rows.append({"kind": kind, "init": init, "source": source, "target": TARGET,
                             "budget": budget, "seed": seed, "perplexity": ppl + 0.1 * seed,
                             "dev_perplexity": ppl + 0.1 * seed,
                             "key": f"{kind}-{init}-{TARGET}-{budget}-s{seed}"})
    return pd.DataFrame(rows)


def make_run_folder(parent: Path) -> Path:
    """``parent/study-0123456789``: a run folder ``xfer export``, ``xfer generate`` (its trial
    folder) and ``xfer analyse`` accept as it is."""
    from xfer.model import ByteLM, ModelConfig
    from xfer.training.checkpoint import save_checkpoint
    from xfer.training.config import TrainConfig

    run = parent / RUN_NAME
    torch.manual_seed(0)
    model = ByteLM(ModelConfig.from_dict(tiny_model_config()))
    train = TrainConfig(kind="scratch", seq_len=16, batch_size=2, micro_batch_size=2).to_dict()
    trial = run / "trials" / KEY
    save_checkpoint(trial / "best", model, {"model": model.cfg.to_dict(), "train": train,
                                            "lang": TARGET, "state": {"best_step": 3},
                                            "init": None})
    result = {"test_perplexity": 9.5, "test_bits_per_byte": 3.2, "dev_perplexity": 9.4,
              "dev_bits_per_byte": 3.2, "bytes_seen": 96, "steps": 3}
    (trial / "result.json").write_text(json.dumps(result))
    (run / "ledger").mkdir()
    row = {"kind": "scratch", "init": "scratch", "source": None, "target": TARGET,
           "budget": 1000, "seed": 0, "key": KEY}
    (run / "ledger" / f"{KEY}.json").write_text(json.dumps(row))
    study = {"name": "study", "corpus": str(parent), "languages": {
        "sources": [SOURCE], "targets": [TARGET], "extra_pairs": []}, "analysis": {}}
    (run / "config.json").write_text(json.dumps(study))
    (run / "data" / TARGET).mkdir(parents=True)
    (run / "data" / TARGET / "manifest.json").write_text("{}")
    (run / "commands.txt").write_text("2026-12-04T00:00:00\t/tmp\tpython -m sweeps.grid\n")
    results_table().to_parquet(run / "results.parquet", index=False)
    return run


def copy_run(template: Path, parent: Path) -> Path:
    """A copy of the template run folder under ``parent`` (same folder name)."""
    return Path(shutil.copytree(template, parent / template.name, symlinks=True))


def xfer(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    """``xfer ARGV`` in this process: exit status, stdout, stderr."""
    capsys.readouterr()
    try:
        rc = xfer_main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` (symlinks not followed) -> (kind, size, mtime_ns)."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
        out[str(path.relative_to(root))] = (kind, st.st_size if kind == "file" else 0,
                                            st.st_mtime_ns if kind == "file" else 0)
    return out
