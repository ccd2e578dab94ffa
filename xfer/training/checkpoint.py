"""Checkpoint directories, written atomically (temp dir + rename), read with weights_only=True.

A checkpoint directory holds ``model.pt`` (state dict), ``meta.json`` (configs, step, metrics)
and, for resumable ones, ``trainer.pt`` (optimiser, scheduler and RNG states).
"""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
from pathlib import Path

import torch

from xfer.errors import XferError
from xfer.io import first_line, read_json_object, replace_dir
from xfer.model import ByteLM, ModelConfig
from xfer.training.config import check_same_settings

MODEL_FILE, TRAINER_FILE, META_FILE = "model.pt", "trainer.pt", "meta.json"
RESULT_FILE = "result.json"  # a finished run's result, in its output folder
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    torch.save(on_cpu(model.state_dict()), tmp / MODEL_FILE)
    if trainer is not None:
        torch.save(on_cpu(trainer), tmp / TRAINER_FILE)
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    replace_dir(tmp, path)
    return path


def read_meta(path: Path) -> dict:
    """A checkpoint's meta.json; XferError if the directory is not a checkpoint."""
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file() or not (Path(path) / MODEL_FILE).is_file():
        raise XferError(f"not a checkpoint directory: {path}")
    return read_json_object(meta_path, f"checkpoint {path}: {META_FILE}", "model")


def load_state(path: Path, name: str) -> dict:
    """One torch file of a checkpoint, loaded on CPU with weights_only=True."""
    try:
        return torch.load(Path(path) / name, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise XferError(f"checkpoint {path} has no {name}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        # weights_only refuses pickled objects (UnpicklingError); torn/garbage files fail to parse
        raise XferError(f"checkpoint {path}: {name} is corrupt or not a weights-only "
                        f"checkpoint ({first_line(exc)})") from None


def load_weights(model: ByteLM, path: Path) -> None:
    """Load a checkpoint's weights into ``model``; XferError if it was made for another config."""
    saved = ModelConfig.from_dict(read_meta(path)["model"])
    if saved != model.cfg:
        raise XferError(f"checkpoint {path} is for model config {saved.name!r} "
                        f"({saved}), not {model.cfg.name!r}")
    state = load_state(path, MODEL_FILE)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise XferError(f"checkpoint {path}: {MODEL_FILE} does not hold this model's weights "
                        f"({first_line(exc)})") from None


def load_model(checkpoint_dir: Path) -> ByteLM:
    """The model stored in a checkpoint directory (on CPU)."""
    model = ByteLM(ModelConfig.from_dict(read_meta(checkpoint_dir)["model"]))
    load_weights(model, checkpoint_dir)
    return model


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
