"""Checkpoint directories, written atomically (temp dir + rename), read with weights_only=True
(reading, checked: :mod:`xfer.model.stored`).

A checkpoint directory holds ``model.pt`` (state dict), ``meta.json`` (configs, step, metrics)
and, for resumable ones, ``trainer.pt`` (optimiser, scheduler and RNG states).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from xfer.boundary.outputs import temp_prefix
from xfer.errors import XferError
from xfer.io import replace_dir
from xfer.model import ByteLM, ModelConfig
from xfer.model.stored import (
    META_FILE,
    MODEL_FILE,
    RESULT_FILE,
    TRAINER_FILE,
    load_model,
    load_state,
    load_weights,
    read_meta,
)
from xfer.training.config import check_same_settings

# Reading lives below the model (xfer.model.stored); the names stay importable from here.
__all__ = ["META_FILE", "MODEL_FILE", "RESULT_FILE", "TRAINER_FILE", "load_model", "load_state",
           "load_weights", "read_meta"]
STEPS_DIR = "checkpoints"  # a run's step checkpoints, in its output folder
PREFIX = "step-"


def on_cpu(state: object) -> object:
    """``state`` with every tensor in it (nested dicts, lists, tuples) copied to the CPU.

    Checkpoints then name no device: one written on xla or cuda loads where neither exists."""
    if isinstance(state, torch.Tensor):
        return state.detach().cpu()
    if isinstance(state, dict):
        return {key: on_cpu(value) for key, value in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(on_cpu(value) for value in state)
    return state


def save_checkpoint(path: Path, model: ByteLM, meta: dict, trainer: dict | None = None) -> Path:
    """Write a checkpoint directory at ``path`` atomically (replacing any old one), on CPU."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path.name), dir=path.parent))
    torch.save(on_cpu(model.state_dict()), tmp / MODEL_FILE)
    if trainer is not None:
        torch.save(on_cpu(trainer), tmp / TRAINER_FILE)
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    replace_dir(tmp, path)
    return path


def list_checkpoints(folder: Path) -> list[Path]:
    """Finished step checkpoints in ``folder``, oldest first (temp dirs start with '.')."""
    if not Path(folder).is_dir():
        return []
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_dir() and p.name.startswith(PREFIX) and (p / META_FILE).is_file())


def resume_point(out_dir: Path, resume_from: Path | None) -> Path | None:
    """``resume_from``, else the newest step checkpoint in ``out_dir/checkpoints`` (or None)."""
    if resume_from:
        return Path(resume_from)
    return (list_checkpoints(Path(out_dir) / STEPS_DIR) or [None])[-1]


def remove_step_checkpoints(out_dir: Path) -> None:
    """Delete a finished run's step checkpoints (``out_dir/checkpoints``); its ``best`` folder
    and result are what finetunes, exports and a rerun read."""
    shutil.rmtree(Path(out_dir) / STEPS_DIR, ignore_errors=True)


def step_dir(folder: Path, step: int) -> Path:
    """Where the checkpoint of optimiser step ``step`` lives."""
    return Path(folder) / f"{PREFIX}{step:08d}"


def prune(folder: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints."""
    for old in list_checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def check_run_settings(meta: dict, model_cfg: ModelConfig, section: str, settings: dict,
                       where: Path, *, defaults: dict | None = None,
                       init: str | None = None) -> None:
    """A checkpoint or result made with other settings may not be continued: XferError naming
    the first differing one. ``section`` is the meta key of the run's settings ("train" or
    "downstream"); ``defaults`` fill keys an older checkpoint lacks (fields are added so, with
    the old behaviour as default); ``init``, when given, must be what the run started from."""
    if not isinstance(meta.get(section), dict):
        raise XferError(f"{where}: its meta.json has no {section!r} settings")
    if ModelConfig.from_dict(meta["model"]) != model_cfg:
        raise XferError(f"{where} was made with model config {meta['model'].get('name')!r}, "
                        f"not {model_cfg.name!r}")
    if init is not None and meta.get("init") != init:
        raise XferError(f"{where} was initialised from {meta.get('init')!r}, not {init!r}")
    saved = {**meta, section: {**(defaults or {}), **meta[section]}}
    check_same_settings(saved, section, settings, where)


def rng_state() -> dict:
    """The torch random generators' states (CPU, and every GPU's when there are GPUs)."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Set the generators back to a :func:`rng_state` (GPU states only where there are GPUs)."""
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
