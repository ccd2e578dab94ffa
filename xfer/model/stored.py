"""Reading a stored model, checked before use: checkpoint folders (``meta.json`` + ``model.pt``,
loaded with ``weights_only=True``) and exports (``config.json`` + ``model.safetensors``).

Run folders and exports are shared, so every file is untrusted: a model config is checked
against :data:`MAX_PARAMETERS` and against the size of its weights file before any tensor is
allocated, and every loader error becomes one :class:`XferError` line naming the file. The
training loop writes checkpoints (:mod:`xfer.training.checkpoint`); this module only reads them,
so the model package knows nothing of training.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from xfer.boundary import (
    open_regular,
    parse_json,
    read_json_object,
    regular_file,
    resolve,
    stored_bytes,
)
from xfer.data.vocab import VOCAB_SIZE
from xfer.errors import XferError
from xfer.io import first_line
from xfer.memory import check_allocation
from xfer.model.decoder import WEIGHTS_FILE, ByteLM, ModelConfig
from xfer.schema import MAX_CONTEXT, build

MODEL_FILE, TRAINER_FILE, META_FILE = "model.pt", "trainer.pt", "meta.json"
RESULT_FILE = "result.json"  # a finished run's result, in its output folder
EXPORT_CONFIG = "config.json"  # an export's model config (huggingface_hub's name)
MAX_PARAMETERS = 20_000_000_000  # 80 GB in fp32: refused before allocation beyond this
MIN_BYTES_PER_PARAMETER = 2  # bf16: a weights file smaller than this per parameter is truncated
MAX_SAFETENSORS_HEADER = 100 << 20  # bytes of JSON header in a safetensors file
LOAD_COPIES = 2  # fp32 copies of the weights alive while a model loads (the model, the file's)
DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}  # safetensors dtypes a model may hold


def parameter_count(cfg: ModelConfig) -> int:
    """Parameters of a :class:`ByteLM` with ``cfg`` (the tied embedding once), by arithmetic,
    so a config can be sized without allocating it."""
    d, inner = cfg.d_model, cfg.n_heads * cfg.d_head
    block = 2 * d + 4 * inner * d + 3 * cfg.d_ff * d + cfg.rel_buckets * cfg.n_heads
    return cfg.vocab_size * d + cfg.n_layers * block + d


def checked_config(data: object, where: str, weights: Path) -> ModelConfig:
    """The :class:`ModelConfig` in ``data`` (from ``where``, a file name), refused unless every
    field has its type, its vocabulary is the byte vocabulary, its size is at most
    :data:`MAX_PARAMETERS`, fits the memory available (:func:`xfer.memory.check_allocation`)
    and ``weights`` (the file meant to hold it) stores enough bytes for it: the bytes actually
    on disk, so a sparse file of the right apparent size is refused."""
    if not isinstance(data, dict):
        raise XferError(f"{where}: the model config is not a mapping")
    cfg = build(ModelConfig, data, f"{where}: model config")
    if not (math.isfinite(cfg.norm_eps) and 0 < cfg.norm_eps <= 1):
        raise XferError(f"{where}: norm_eps must be a number in (0, 1], got {cfg.norm_eps!r}")
    if cfg.vocab_size != VOCAB_SIZE:
        raise XferError(f"{where}: vocab_size {cfg.vocab_size} is not the byte vocabulary's "
                        f"{VOCAB_SIZE}")
    count = parameter_count(cfg)
    if count > MAX_PARAMETERS:
        raise XferError(f"{where}: the model config declares {count:.3g} parameters, more "
                        f"than the limit of {MAX_PARAMETERS:.3g}")
    size = stored_bytes(regular_file(weights, f"{weights}"))
    if size < count * MIN_BYTES_PER_PARAMETER:
        raise XferError(f"{weights}: {size:,} bytes on disk cannot hold the {count:,} "
                        f"parameters that {where} declares (truncated, sparse, or the config "
                        "was changed)")
    check_allocation(LOAD_COPIES * 4 * count, f"{where}: a model of {count:,} parameters")
    return cfg


def read_meta(path: Path) -> dict:
    """A checkpoint's meta.json (a mapping with a ``model`` mapping and, when present, a
    ``train`` mapping); XferError if the directory is not a checkpoint."""
    meta_path = resolve(path, META_FILE, what=f"checkpoint {path}")
    if not meta_path.exists() or not (Path(path) / MODEL_FILE).exists():
        raise XferError(f"not a checkpoint directory: {path}")
    meta = read_json_object(meta_path, f"checkpoint {path}: {META_FILE}", "model",
                            finite=False)  # its best dev loss is Infinity before an eval
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
    file = resolve(path, name, what=f"checkpoint {path}")
    if not file.exists():
        raise XferError(f"checkpoint {path} has no {name}")
    try:
        with open_regular(file, f"checkpoint {path}: {name}") as fh:
            state = torch.load(fh, map_location="cpu", weights_only=True)
    except XferError:
        raise
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


def safetensors_header(path: Path) -> tuple[dict, int]:
    """(header, data bytes) of the safetensors file ``path``: the header parsed through the
    boundary (size, depth and number limits), each tensor's dtype, shape and offsets checked
    to be whole, in range and consistent, the data laid end to end within the bytes stored on
    disk; before the library maps anything."""
    with open_regular(path, f"{path}") as fh:
        st = os.fstat(fh.fileno())
        head = fh.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 2 <= length <= min(st.st_size - 8, MAX_SAFETENSORS_HEADER):
            raise XferError(f"{path}: not a safetensors file, or truncated")
        raw = fh.read(length)
    header = parse_json(raw, f"{path}: safetensors header")
    if not isinstance(header, dict):
        raise XferError(f"{path}: the safetensors header is not a mapping")
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        where = f"{path}: tensor {name[:80]!r}"
        if not isinstance(info, dict) or info.get("dtype") not in DTYPE_BYTES:
            raise XferError(f"{where}: no dtype of {', '.join(DTYPE_BYTES)}")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if not isinstance(shape, list) or len(shape) > 8 or not all(
                type(n) is int and 0 <= n < 2**40 for n in shape):
            raise XferError(f"{where}: shape is not a list of sizes")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(
                type(n) is int and 0 <= n < 2**62 for n in offsets):
            raise XferError(f"{where}: data_offsets is not two byte offsets")
        if offsets[1] - offsets[0] != math.prod(shape) * DTYPE_BYTES[info["dtype"]]:
            raise XferError(f"{where}: its offsets do not span its shape")
        spans.append(tuple(offsets))
    end = 0
    for begin, stop in sorted(spans):
        if begin != end:
            raise XferError(f"{path}: tensors overlap or leave a gap at byte {begin:,}")
        end = stop
    needed = 8 + length + end
    if needed > st.st_size:
        raise XferError(f"{path}: truncated ({st.st_size:,} bytes; its header needs "
                        f"{needed:,})")
    if needed > stored_bytes(st) + (64 << 10):
        raise XferError(f"{path}: sparse: {stored_bytes(st):,} bytes on disk, its header "
                        f"needs {needed:,}")
    return header, end


def check_safetensors(path: Path, cfg: ModelConfig | None = None) -> None:
    """Refuse a safetensors file whose header is unreadable, whose tensors lie beyond the
    bytes it stores, or (given ``cfg``) whose tensor names and shapes are not those of a
    :class:`ByteLM` with ``cfg`` (sized on the meta device: nothing allocated)."""
    header, _ = safetensors_header(path)
    if cfg is None:
        return
    with torch.device("meta"):
        expected = {k: list(v.shape) for k, v in ByteLM(cfg).state_dict().items()}
    found = {k: v["shape"] for k, v in header.items() if k != "__metadata__"}
    if found != expected:
        wrong = sorted(set(found) ^ set(expected)) or \
            sorted(k for k in found if found[k] != expected[k])
        raise XferError(f"{path}: does not hold this model's weights: its tensors are not "
                        f"those its config declares (first difference: {wrong[0][:80]!r})")


def load_export(folder: Path) -> tuple[ByteLM, dict]:
    """(model, the ``xfer`` section of config.json) of an export folder, checked first: the
    config, then the weights file's header against it, then the weights are loaded."""
    import safetensors.torch

    folder = Path(folder)
    weights = resolve(folder, WEIGHTS_FILE, what=f"export {folder}")
    config = resolve(folder, EXPORT_CONFIG, what=f"export {folder}")
    data = read_json_object(config, f"{config}", "cfg", finite=False)  # cfg checked by type
    cfg = checked_config(data["cfg"], f"{folder / EXPORT_CONFIG}", weights)
    check_safetensors(weights, cfg)
    model = ByteLM(cfg)
    try:
        safetensors.torch.load_model(model, str(weights), strict=True)
    except Exception as exc:  # noqa: BLE001  e.g. SafetensorError on a file changed meanwhile
        raise XferError(f"{weights}: cannot load ({first_line(exc)})") from None
    info = data.get("xfer")
    return model.eval(), info if isinstance(info, dict) else {}
