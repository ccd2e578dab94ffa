"""Sentence-pair tasks for the downstream check: read them, check them, build one from FLORES-200.

A task is two splits of pairs with columns ``premise``, ``hypothesis`` (text) and ``label`` (two
classes, stored as 0/1). It comes from a local folder holding ``<split>.tsv``, ``<split>.jsonl``
or ``<split>.parquet`` per split, or from a Hugging Face dataset through ``datasets.load_dataset``
(e.g. ASSIN2, ``nilc-nlp/assin2`` with label column ``entailment_judgment``) and a column mapping.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from xfer.errors import XferError
from xfer.io import first_line, read_json_object
from xfer.schema import check_name

COLUMNS = ("premise", "hypothesis", "label")
FORMATS = (".tsv", ".jsonl", ".parquet")
TASK_META = "task.json"


def read_table(path: Path) -> pd.DataFrame:
    """A TSV (header row, no quoting), JSONL or Parquet file; XferError if unreadable."""
    path = Path(path)
    try:
        if path.suffix == ".tsv":
            return pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False,
                               dtype=str)
        if path.suffix == ".jsonl":
            return pd.read_json(path, lines=True, dtype=False)
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
    except Exception as exc:  # pandas/pyarrow raise many types for a bad file
        raise XferError(f"cannot read task file {path}: {first_line(exc)}") from None
    raise XferError(f"task file {path} is not one of {', '.join(FORMATS)}")


def find_split_file(folder: Path, split: str) -> Path:
    """The one ``<split>.tsv|.jsonl|.parquet`` in ``folder``; XferError if none or several."""
    found = [folder / f"{split}{ext}" for ext in FORMATS if (folder / f"{split}{ext}").is_file()]
    if len(found) != 1:
        what = "no" if not found else "more than one"
        raise XferError(f"task folder {folder} has {what} {split} file "
                        f"({' / '.join(split + ext for ext in FORMATS)})")
    return found[0]


def select_columns(frame: pd.DataFrame, columns: Mapping[str, str], where: str) -> pd.DataFrame:
    """Rename the source columns to premise/hypothesis/label; XferError naming any missing one."""
    wanted = {ours: columns.get(ours, ours) for ours in COLUMNS}
    missing = [theirs for theirs in wanted.values() if theirs not in frame.columns]
    if missing:
        raise XferError(f"{where} lacks column(s) {', '.join(missing)} "
                        f"(has {', '.join(map(str, frame.columns))})")
    out = frame[[wanted[c] for c in COLUMNS]].copy()
    out.columns = list(COLUMNS)
    if len(out) == 0:
        raise XferError(f"{where} has no pairs")
    if out.isna().any().any():
        raise XferError(f"{where} has missing values")
    out["premise"] = out["premise"].astype(str)
    out["hypothesis"] = out["hypothesis"].astype(str)
    return out.reset_index(drop=True)


def encode_labels(train: pd.DataFrame, validation: pd.DataFrame) -> tuple[list[str], pd.DataFrame,
                                                                          pd.DataFrame]:
    """Map the two label values (sorted; 0/1 stay 0/1) to 0 and 1 in both splits.

    XferError if the training labels are not exactly two classes or validation has another one.
    """
    values = sorted(pd.unique(train["label"]).tolist(), key=str)
    if len(values) != 2:
        raise XferError(f"task labels must be two classes; training split has {len(values)}: "
                        f"{', '.join(map(str, values[:5]))}")
    code = {v: i for i, v in enumerate(values)}
    other = sorted({v for v in pd.unique(validation["label"]).tolist() if v not in code}, key=str)
    if other:
        raise XferError(f"validation labels {', '.join(map(str, other))} are not in the training "
                        f"labels {values[0]}, {values[1]}")
    train = train.assign(label=train["label"].map(code).astype(np.int64))
    validation = validation.assign(label=validation["label"].map(code).astype(np.int64))
    return [str(v) for v in values], train, validation


def load_local(folder: Path, split: str, columns: Mapping[str, str]) -> pd.DataFrame:
    """One split of a local task folder, columns renamed (labels not yet encoded)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise XferError(f"task folder {folder} does not exist")
    path = find_split_file(folder, split)
    return select_columns(read_table(path), columns, str(path))


def load_hub(name: str, config: str | None, split: str, columns: Mapping[str, str]) -> pd.DataFrame:
    """One split of a Hugging Face dataset (needs the hub or its local cache)."""
    import datasets

    try:
        frame = datasets.load_dataset(name, config, split=split).to_pandas()
    except Exception as exc:  # network, missing dataset or split
        raise XferError(f"cannot load dataset {name!r} split {split!r}: "
                        f"{first_line(exc)}") from None
    return select_columns(frame, columns, f"dataset {name!r} split {split!r}")


# ---- the constructed task: translation detection on aligned FLORES-200 lines ----

def read_aligned(flores_dir: Path, lang: str) -> list[str]:
    """The lines of ``<flores_dir>/<lang>.txt`` (one sentence per line)."""
    path = Path(flores_dir) / f"{check_name(lang, 'language')}.txt"
    if not path.is_file():
        raise XferError(f"no aligned file for language {lang!r}: {path}")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise XferError(f"cannot read {path}: {first_line(exc)}") from None


def translation_pairs(premises: list[str], hypotheses: list[str], lines: np.ndarray,
                      rng: np.random.Generator) -> pd.DataFrame:
    """Pairs over ``lines`` only: the first half (after shuffling) true translations (label 1),
    the rest a hypothesis from another line of the same set whose text differs (label 0)."""
    lines = rng.permutation(lines)
    n_pos = (len(lines) + 1) // 2
    rows = []
    for k, i in enumerate(lines):
        if k < n_pos:
            rows.append((premises[i], hypotheses[i], 1))
            continue
        shift = int(rng.integers(1, len(lines)))
        for step in range(len(lines) - 1):  # skip lines whose text equals the true translation
            j = lines[(k + shift + step) % len(lines)]
            if j != i and hypotheses[j] != hypotheses[i]:
                break
        else:
            raise XferError("cannot find a different sentence for a negative pair")
        rows.append((premises[i], hypotheses[j], 0))
    order = rng.permutation(len(rows))
    return pd.DataFrame([rows[o] for o in order], columns=list(COLUMNS))


def build_translation_task(flores_dir: Path, premise_lang: str, hypothesis_lang: str,
                           n_train: int, n_val: int, seed: int, out: Path) -> Path:
    """Write a balanced translation-detection task to folder ``out`` (train/validation JSONL).

    A pair is a line in ``premise_lang`` and either the same line in ``hypothesis_lang`` (label
    1) or another line (label 0). Lines are split between train and validation first, so no
    sentence of one split occurs in the other. With ``premise_lang == hypothesis_lang`` the task is
    copy detection (a sanity check that needs no cross-lingual knowledge). Deterministic in
    ``seed``; written atomically (temp folder, then rename). A second call with the same settings
    returns ``out`` untouched; other settings in an existing ``out`` are an XferError.
    """
    out = Path(out)
    meta = {"source": str(Path(flores_dir).resolve()), "premise_lang": premise_lang,
            "hypothesis_lang": hypothesis_lang, "n_train": int(n_train), "n_validation": int(n_val),
            "seed": int(seed), "kind": "translation"}
    if (out / TASK_META).is_file():
        old = read_json_object(out / TASK_META, f"{out / TASK_META}", None)
        if old != meta:
            diff = sorted(k for k in meta if old.get(k) != meta[k])
            raise XferError(f"task folder {out} holds a task with other settings "
                            f"({', '.join(diff)})")
        return out
    if out.exists() and any(out.iterdir()):
        raise XferError(f"{out} exists and is not a task folder")
    if n_train < 2 or n_val < 2:
        raise XferError(f"a task needs at least 2 training and 2 validation pairs, got "
                        f"{n_train} and {n_val}")
    premises = read_aligned(flores_dir, premise_lang)
    hypotheses = read_aligned(flores_dir, hypothesis_lang)
    if len(premises) != len(hypotheses):
        raise XferError(f"{premise_lang}.txt has {len(premises)} lines but {hypothesis_lang}.txt "
                        f"{len(hypotheses)}: not aligned")
    if n_train + n_val > len(premises):
        raise XferError(f"{n_train} + {n_val} pairs need as many lines; {flores_dir} has "
                        f"{len(premises)}")
    rng = np.random.default_rng(seed)
    lines = rng.permutation(len(premises))
    splits = {"train": translation_pairs(premises, hypotheses, lines[:n_train], rng),
              "validation": translation_pairs(premises, hypotheses,
                                              lines[n_train:n_train + n_val], rng)}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, frame in splits.items():
            frame.to_json(tmp / f"{name}.jsonl", orient="records", lines=True, force_ascii=False)
        (tmp / TASK_META).write_text(json.dumps(meta, indent=2, sort_keys=True))
        os.chmod(tmp, 0o755)
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
