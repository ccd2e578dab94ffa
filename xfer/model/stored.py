"""Reading a stored model, checked before use: checkpoint folders (``meta.json`` + ``model.pt``,
loaded with ``weights_only=True``) and exports (``config.json`` + ``model.safetensors``).

Run folders and exports are shared, so every file is untrusted: a model config is checked
against :data:`MAX_PARAMETERS` and against the size of its weights file before any tensor is
allocated, and every loader error becomes one :class:`XferError` line naming the file. The
training loop writes checkpoints (:mod:`xfer.training.checkpoint`); this module only reads them,
so the model package knows nothing of training.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from xfer.data.vocab import VOCAB_SIZE
from xfer.errors import XferError
from xfer.io import first_line, read_json_object
from xfer.model.decoder import WEIGHTS_FILE, ByteLM, ModelConfig
from xfer.schema import MAX_CONTEXT

MODEL_FILE, TRAINER_FILE, META_FILE = "model.pt", "trainer.pt", "meta.json"
RESULT_FILE = "result.json"  # a finished run's result, in its output folder
EXPORT_CONFIG = "config.json"  # an export's model config (huggingface_hub's name)
MAX_PARAMETERS = 20_000_000_000  # 80 GB in fp32: refused before allocation beyond this
MIN_BYTES_PER_PARAMETER = 2  # bf16: a weights file smaller than this per parameter is truncated
MAX_SAFETENSORS_HEADER = 100 << 20  # bytes of JSON header in a safetensors file


def parameter_count(cfg: ModelConfig) -> int:
    """Parameters of a :class:`ByteLM` with ``cfg`` (the tied embedding once), by arithmetic,
    so a config can be sized without allocating it."""
    d, inner = cfg.d_model, cfg.n_heads * cfg.d_head
    block = 2 * d + 4 * inner * d + 3 * cfg.d_ff * d + cfg.rel_buckets * cfg.n_heads
    return cfg.vocab_size * d + cfg.n_layers * block + d


def checked_config(data: object, where: str, weights: Path) -> ModelConfig:
    """The :class:`ModelConfig` in ``data`` (from ``where``, a file name), refused unless its
    vocabulary is the byte vocabulary, its size is at most :data:`MAX_PARAMETERS` and
    ``weights`` (the file meant to hold it) is large enough for it."""
    if not isinstance(data, dict):
        raise XferError(f"{where}: the model config is not a mapping")
    try:
        cfg = ModelConfig.from_dict(data)
    except TypeError as exc:
        raise XferError(f"{where}: not a valid model config ({first_line(exc)})") from None
    except XferError as exc:
        raise XferError(f"{where}: {exc}") from None
    if cfg.vocab_size != VOCAB_SIZE:
        raise XferError(f"{where}: vocab_size {cfg.vocab_size} is not the byte vocabulary's "
                        f"{VOCAB_SIZE}")
    count = parameter_count(cfg)
    if count > MAX_PARAMETERS:
        raise XferError(f"{where}: the model config declares {count:.3g} parameters, more "
                        f"than the limit of {MAX_PARAMETERS:.3g}")
    try:
        size = Path(weights).stat().st_size
    except OSError as exc:
        raise XferError(f"cannot read {weights}: {first_line(exc)}") from None
    if size < count * MIN_BYTES_PER_PARAMETER:
        raise XferError(f"{weights}: {size:,} bytes cannot hold the {count:,} parameters that "
                        f"{where} declares (truncated, or the config was changed)")
    return cfg


def read_meta(path: Path) -> dict:
    """A checkpoint's meta.json (a mapping with a ``model`` mapping and, when present, a
    ``train`` mapping); XferError if the directory is not a checkpoint."""
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file() or not (Path(path) / MODEL_FILE).is_file():
        raise XferError(f"not a checkpoint directory: {path}")
    meta = read_json_object(meta_path, f"checkpoint {path}: {META_FILE}", "model")
    for key in ("model", "train"):
        if key in meta and not isinstance(meta[key], dict):
            raise XferError(f"{meta_path}: {key!r} is not a mapping")
    return meta


def context_length(meta: dict, where: Path) -> int:
    """The training window (bytes) of a checkpoint's meta.json: ``train.seq_len``, an integer
    from 1 to :data:`MAX_CONTEXT`."""
    seq_len = meta.get("train", {}).get("seq_len") if isinstance(meta.get("train"), dict) \
        else None
    return checked_context(seq_len, f"{where}: train.seq_len")


def checked_context(value: object, where: str) -> int:
    """``value`` if it is an integer context length in [1, :data:`MAX_CONTEXT`] bytes."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONTEXT:
        raise XferError(f"{where} must be an integer from 1 to {MAX_CONTEXT}, got {value!r}")
    return value


def load_state(path: Path, name: str) -> dict:
    """One torch file of a checkpoint, loaded on CPU with weights_only=True."""
    file = Path(path) / name
    if not file.is_file():
        raise XferError(f"checkpoint {path} has no {name}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  any loader error of an untrusted file is one line
        # weights_only refuses pickled objects (UnpicklingError); torn/garbage files fail to parse
        raise XferError(f"checkpoint {path}: {name} is corrupt or not a weights-only "
                        f"checkpoint ({first_line(exc)})") from None
    if not isinstance(state, dict):
        raise XferError(f"checkpoint {path}: {name} does not hold a mapping of tensors")
    return state


def load_weights(model: ByteLM, path: Path) -> None:
    """Load a checkpoint's weights into ``model``; XferError if it was made for another config."""
    saved = checked_config(read_meta(path)["model"], f"{Path(path) / META_FILE}",
                           Path(path) / MODEL_FILE)
    if saved != model.cfg:
        raise XferError(f"checkpoint {path} is for model config {saved.name!r} "
                        f"({saved}), not {model.cfg.name!r}")
    state = load_state(path, MODEL_FILE)
    try:
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001  shapes, names or types of an untrusted file
        raise XferError(f"checkpoint {path}: {MODEL_FILE} does not hold this model's weights "
                        f"({first_line(exc)})") from None


def load_model(checkpoint_dir: Path) -> ByteLM:
    """The model stored in a checkpoint directory (on CPU)."""
    path = Path(checkpoint_dir)
    model = ByteLM(checked_config(read_meta(path)["model"], f"{path / META_FILE}",
                                  path / MODEL_FILE))
    load_weights(model, path)
    return model


def check_safetensors(path: Path) -> None:
    """Refuse a safetensors file whose header is unreadable or whose tensors lie beyond its
    end (truncated), before the library maps it."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 2 <= length <= min(size - 8, MAX_SAFETENSORS_HEADER):
                raise XferError(f"{path}: not a safetensors file, or truncated")
            header = json.loads(fh.read(length))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise XferError(f"{path}: unreadable safetensors header ({first_line(exc)})") from None
    if 8 + length + max(ends, default=0) > size:
        raise XferError(f"{path}: truncated ({size:,} bytes; its header needs "
                        f"{8 + length + max(ends):,})")


def load_export(folder: Path) -> tuple[ByteLM, dict]:
    """(model, the ``xfer`` section of config.json) of an export folder, checked first."""
    folder = Path(folder)
    weights = folder / WEIGHTS_FILE
    data = read_json_object(folder / EXPORT_CONFIG, f"{folder / EXPORT_CONFIG}", "cfg")
    checked_config(data["cfg"], f"{folder / EXPORT_CONFIG}", weights)
    check_safetensors(weights)
    try:
        model = ByteLM.from_pretrained(folder)
    except XferError:
        raise
    except Exception as exc:  # noqa: BLE001  e.g. SafetensorError on a damaged file
        raise XferError(f"{weights}: cannot load ({first_line(exc)})") from None
    info = data.get("xfer")
    return model, info if isinstance(info, dict) else {}
