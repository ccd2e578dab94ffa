"""``xfer export``: a study trial's best model as a folder other tools load.

    xfer export RUN_FOLDER --trial pretrain-en-6G-s0 --out my-model
    xfer export RUN_FOLDER --all --out models          # models/<trial key>/ for every LM trial

Each exported folder holds ``model.safetensors`` and ``config.json`` (huggingface_hub's
``PyTorchModelHubMixin`` layout: ``ByteLM.from_pretrained(folder)`` loads it) and a model card,
``README.md``: what the model was trained on, how much, how well it scores, and the commands and
hashes that pin where it came from. Folders are built in a temp folder and renamed into place.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
from pathlib import Path

from xfer.boundary import finite, list_names, open_regular, read_bytes, read_json_object, resolve
from xfer.errors import XferError
from xfer.io import staged_folder
from xfer.kinds import KINDS, Kind
from xfer.model.stored import META_FILE, MODEL_FILE, RESULT_FILE, load_model, read_meta
from xfer.schema import MAX_INT, check_name, require

COMMANDS_FILE = "commands.txt"  # written by sweeps.runner: time, working folder, command
NUMBER = (int, float)
ROW_SPEC = {"kind": str, "source": (str, type(None)), "target": str, "budget": int, "seed": int}
RESULT_SPEC = {"test_perplexity": NUMBER, "test_bits_per_byte": NUMBER, "dev_perplexity": NUMBER,
               "dev_bits_per_byte": NUMBER, "bytes_seen": int, "steps": int}
META_SPEC = {"lang": str, "train.batch_size": int, "train.seq_len": int, "state.best_step": int,
             "model.name": str, "model.n_layers": int, "model.d_model": int}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``xfer export``."""
    parser.add_argument("run", type=Path, help="a study's run folder (<output>/<name>-<hash>)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", metavar="KEY", help="trial key, e.g. pretrain-en-6G-s0")
    which.add_argument("--all", action="store_true",
                       help="every finished language-model trial, into OUT/<key>/")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder to create (must not exist, or be empty)")


def run(args: argparse.Namespace) -> int:
    """Export, then print the folder(s) written."""
    which = ["--all"] if args.all else ["--trial", args.trial]
    command = shlex.join(["xfer", "export", str(args.run), *which, "--out", str(args.out)])
    run_dir = check_run_folder(args.run)
    keys = finished_lm_trials(run_dir) if args.all else [check_name(args.trial, "--trial")]
    if args.all and not keys:
        raise XferError(f"{run_dir}: no finished language-model trial to export")
    with staged_folder(args.out, "--out") as stage:
        for key in keys:
            write_export(run_dir, key, stage / key if args.all else stage, command)
    for key in keys:
        print(args.out / key if args.all else args.out)
    return 0


def check_run_folder(path: Path) -> Path:
    """``path`` resolved, if it is a study's run folder (config.json and ledger/); else
    XferError."""
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise XferError(f"no such run folder: {path}")
    if not (path / "config.json").exists() or not (path / "ledger").is_dir():
        raise XferError(f"not a study run folder (no config.json and ledger/): {path}")
    return path


def finished_lm_trials(run_dir: Path) -> list[str]:
    """Keys of the finished pretrain, finetune and scratch trials (the ledger), sorted."""
    return [key for key in list_names(run_dir / "ledger", "ledger", ".json", strict=True)
            if ledger_row(run_dir, key)["kind"] in KINDS]


def ledger_row(run_dir: Path, key: str) -> dict:
    """The ledger row of trial ``key`` (checked: a file inside the run folder, the fields the
    card reads, its ``key`` equal to its file name)."""
    row_path = resolve(run_dir, "ledger", f"{check_name(key, 'trial key')}.json",
                       what=f"ledger entry {key}")
    where = f"ledger row {row_path}"
    row = read_json_object(row_path, where, "kind", finite=False)  # a diverged run's NaN
    require(row, ROW_SPEC, where)
    if row.get("key", key) != key:
        raise XferError(f"{where}: its key {str(row.get('key'))[:80]!r} is not {key!r}")
    if row["kind"] not in set(Kind):
        raise XferError(f"{where}: kind {str(row['kind'])[:40]!r} is not one of "
                        f"{', '.join(Kind)}")
    for name in ("budget", "seed"):
        if not 0 <= row[name] <= MAX_INT:
            raise XferError(f"{where}: {name} must be from 0 to 2**63-1, got {row[name]}")
    for name in ("source", "target"):
        if row[name] is not None:
            check_name(row[name], f"{where}: {name}")
    return row


def trial_record(run_dir: Path, key: str) -> dict:
    """Everything the card says about trial ``key``: its ledger row, result.json and best
    checkpoint's meta.json; XferError for an unknown, unfinished or non-LM trial."""
    row_path = run_dir / "ledger" / f"{check_name(key, 'trial key')}.json"
    if not row_path.exists() and not row_path.is_symlink():
        known = finished_lm_trials(run_dir)
        hint = f"; finished trials: {', '.join(known[:6])}{', ...' if len(known) > 6 else ''}" \
            if known else "; none has finished"
        raise XferError(f"unknown trial key {key!r} in {run_dir}{hint}")
    row = ledger_row(run_dir, key)
    if row["kind"] not in KINDS:
        raise XferError(f"trial {key} is a {row['kind']} classifier, not a language model")
    folder = resolve(run_dir, "trials", key, what=f"trial {key}")
    for parts in ((RESULT_FILE,), ("best", META_FILE), ("best", MODEL_FILE)):
        resolve(folder, *parts, what=f"trial {key}")
    result = read_json_object(folder / RESULT_FILE, f"{folder / RESULT_FILE}",
                              "test_perplexity", finite=False)  # then checked field by field
    require(result, RESULT_SPEC, f"{folder / RESULT_FILE}")
    for name in RESULT_SPEC:
        finite(result[name], f"{folder / RESULT_FILE}: {name}", 0, 2.0**63)
    meta = read_meta(folder / "best")
    require(meta, META_SPEC, f"{folder / 'best' / META_FILE}")
    check_name(meta["lang"], f"{folder / 'best' / META_FILE}: lang")
    for name in ("train.batch_size", "train.seq_len", "state.best_step"):
        section, field = name.split(".")
        if not 0 <= meta[section][field] <= MAX_INT:
            raise XferError(f"{folder / 'best' / META_FILE}: {name} is out of range")
    return {"key": key, "row": row, "result": result, "meta": meta, "checkpoint": folder / "best"}


def manifest_sha256(run_dir: Path, lang: str) -> str:
    """sha256 of ``<run>/data/<lang>/manifest.json``'s bytes (the manifest holds each split's
    own sha256, so this one hash pins the data)."""
    path = resolve(run_dir, "data", lang, "manifest.json", what=f"data of {lang}")
    try:
        with open_regular(path, f"the data manifest of {lang}", 64 << 20) as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as exc:
        raise XferError(f"{path}: cannot read: {exc.strerror or exc}") from None


def study_identity(run_dir: Path) -> tuple[str, str]:
    """(study name, config hash): the run folder is named ``<name>-<hash>``."""
    config = read_json_object(resolve(run_dir, "config.json", what="config.json"),
                              f"{run_dir / 'config.json'}", "name")
    name = check_name(config["name"], f"{run_dir / 'config.json'}: name")
    prefix = f"{name}-"
    digest = run_dir.name[len(prefix):] if run_dir.name.startswith(prefix) else "unknown"
    return name, digest


def study_command(run_dir: Path) -> str:
    """The command that started the study (first line of commands.txt), or a note."""
    path = resolve(run_dir, COMMANDS_FILE, what=COMMANDS_FILE)
    lines = read_bytes(path, f"{path}", "text").decode("utf-8", "replace").splitlines() \
        if path.exists() else []
    if not lines or lines[0].count("\t") < 2:
        return "(not recorded in this run folder)"
    _, cwd, command = lines[0].split("\t", 2)
    return f"`{command}` (in {cwd})"


def model_card(run_dir: Path, record: dict, num_parameters: int, command: str | None) -> str:
    """The README.md of an export (YAML front matter, then a table); perplexities and bits per
    byte are the best-dev checkpoint's, over every byte of the split in windows of seq_len."""
    from huggingface_hub import ModelCardData

    from xfer.units import format_budget

    row, result, meta = record["row"], record["result"], record["meta"]
    name, digest = study_identity(run_dir)
    train, model = meta["train"], meta["model"]
    source, target = row["source"], row["target"]
    langs = [lang for lang in dict.fromkeys([source, target]) if lang]
    manifests = "; ".join(f"{lang}: `{manifest_sha256(run_dir, lang)}`" for lang in langs)
    start = "random initialisation" if row["kind"] != "finetune" else \
        f"the best checkpoint of the {source} pretrain"
    front = ModelCardData(library_name="xfer", tags=["byte-level", "xfer", row["kind"]])
    rows = [
        ("kind", f"{row['kind']} (from {start})"),
        ("source language", source or "none (trained on the target only)"),
        ("target language", target),
        ("budget", f"{format_budget(row['budget'])} ({row['budget']:,} bytes of {meta['lang']})"),
        ("bytes seen", f"{result['bytes_seen']:,} ({result['steps']:,} steps of "
                       f"{train['batch_size']} x {train['seq_len']} bytes)"),
        ("dev perplexity", f"{result['dev_perplexity']:.6g} "
                           f"({result['dev_bits_per_byte']:.6g} bits/byte)"),
        ("test perplexity", f"{result['test_perplexity']:.6g} "
                            f"({result['test_bits_per_byte']:.6g} bits/byte)"),
        ("evaluated on", f"every byte of the {meta['lang']} dev/test splits, windows of "
                         f"{train['seq_len']} bytes, best-dev checkpoint "
                         f"(step {meta['state']['best_step']})"),
        ("data manifest sha256", manifests),
        ("study", f"{name}, config hash {digest} (run folder {run_dir})"),
        ("trial", f"`{record['key']}`, seed {row['seed']}"),
        ("trained by", study_command(run_dir)),
        ("exported by", f"`{command}`" if command else "xfer.model.export.write_export"),
        ("model", f"ByteLM `{model['name']}` (n_layers {model['n_layers']}, d_model "
                  f"{model['d_model']}), {num_parameters:,} parameters, 259 byte ids"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"""---
{front.to_yaml()}
---

# {record['key']}

A byte-level language model trained by xfer in study `{name}`.

| | |
|---|---|
{table}

## Use

```python
from xfer.model import ByteLM
model = ByteLM.from_pretrained("path/to/this/folder")  # logits = model(ids); ids = bytes + 3
```

```
xfer generate path/to/this/folder --prompt "..." --bytes 200 --seed 0
```
"""


def write_export(run_dir: Path, key: str, folder: Path, command: str | None) -> Path:
    """Write trial ``key``'s best model, config.json and card into ``folder`` (created)."""
    record = trial_record(run_dir, key)
    model = load_model(record["checkpoint"])
    row, train = record["row"], record["meta"]["train"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(model_card(run_dir, record, model.num_parameters(),
                                                 command), encoding="utf-8")
    model.save_pretrained(folder, config={
        "cfg": model.cfg.to_dict(),
        "xfer": {"trial": key, "kind": row["kind"], "source": row["source"],
                 "target": row["target"], "budget": row["budget"], "seq_len": train["seq_len"],
                 "test_perplexity": record["result"]["test_perplexity"]}})
    return folder
