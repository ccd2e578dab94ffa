"""The downstream check inside a study (issue 8): the config section, its task, its report table.

The optional ``downstream:`` section of a study config holds the fields of
:class:`xfer.downstream.DownstreamConfig` (epochs, lr, batch_size, max_len, ...) and either
``task`` (a local task folder, or a hub dataset with ``source: hub``) or ``construct``, which
makes the driver build a translation-detection task once, before the trials start::

    construct:
      corpus: synthetic        # pairs from the generated languages; or a folder of aligned
                               # <lang>.txt files, e.g. ../shared/corpus/parallel/flores200
      premise_lang: base
      hypothesis_lang: twin
      n_train: 256             # pairs (half true translations, half another sentence)
      n_validation: 128

Each seed gets one downstream trial per pretrained source (initialised from its best
checkpoint) and one from scratch; their validation accuracies become the report's
"Downstream accuracy" table (:func:`xfer.downstream.table.downstream_table`).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xfer.errors import XferError
from xfer.schema import NAME_PATTERN, build, check_keys

TASK_PLACEHOLDER = "<built by the driver>"
SENTENCE_END = ". "


@dataclass(frozen=True)
class Construct:
    """How the driver builds the task: aligned sentences of two languages (``corpus``:
    ``synthetic`` or a folder of ``<lang>.txt``), pair counts, and the sampling seed."""

    corpus: str
    premise_lang: str
    hypothesis_lang: str
    n_train: int = 256
    n_validation: int = 128
    seed: int = 0


def _downstream_config(data: dict) -> Any:
    """A :class:`DownstreamConfig` from a section's fields (one-line errors for bad values)."""
    from xfer.downstream import DownstreamConfig

    return build(DownstreamConfig, data, "downstream")


def check_construct(data: Any) -> Construct:
    """Validate ``downstream.construct``: languages that exist and are parallel, sizes >= 2."""
    c = build(Construct, data, "downstream.construct")
    if c.n_train < 2 or c.n_validation < 2 or c.seed < 0:
        raise XferError("downstream.construct: n_train and n_validation must be at least 2 and "
                        f"seed non-negative, got {c.n_train}, {c.n_validation}, {c.seed}")
    if c.corpus == "synthetic":
        from xfer.data import synthetic

        for lang in (c.premise_lang, c.hypothesis_lang):
            if synthetic.language(lang).grammar is None:
                raise XferError(f"downstream.construct: generated language {lang!r} has no "
                                "parallel text (choose a content language, e.g. base, twin)")
        return c
    folder = Path(c.corpus).expanduser()
    for lang in (c.premise_lang, c.hypothesis_lang):
        if not (folder / f"{lang}.txt").is_file():
            raise XferError(f"downstream.construct: no aligned file {folder / f'{lang}.txt'}")
    return c


def check_section(section: Any, languages: Any = None) -> dict | None:
    """The validated ``downstream:`` section as a plain dict (None when absent)."""
    if section is None:
        return None
    if not isinstance(section, dict):
        raise XferError(f"downstream: expected a mapping, got {section!r}")
    from xfer.downstream import DownstreamConfig

    known = [*DownstreamConfig.__dataclass_fields__, "construct"]
    check_keys(section, known, "downstream")
    section = copy.deepcopy(section)
    if "seed" in section:
        raise XferError("downstream.seed: trials take the study's seeds; remove it")
    construct = section.pop("construct", None)
    if construct is None and "task" not in section:
        raise XferError("downstream: give task (a task folder or hub dataset) or construct")
    if construct is not None and "task" in section:
        raise XferError("downstream: give task or construct, not both")
    cfg = _downstream_config({**section, "task": section.get("task", TASK_PLACEHOLDER)})
    if construct is not None:
        c = check_construct(construct)
        section["construct"] = c.__dict__.copy()
        section.setdefault("language", f"{c.premise_lang}-{c.hypothesis_lang}")

    if not NAME_PATTERN.fullmatch(task_language(section)):  # part of trial keys and folders
        raise XferError(f"downstream.language: {task_language(section)!r} may only use "
                        "letters, digits, '.', '_' and '-'")
    if construct is None and cfg.source == "local" and not Path(cfg.task).expanduser().is_dir():
        raise XferError(f"downstream.task: task folder {cfg.task!r} does not exist")
    return section


def task_language(section: dict) -> str:
    """The task's language as trial keys and the report name it."""
    return str(section.get("language") or "task")


def synthetic_aligned_lines(premise_lang: str, hypothesis_lang: str, n: int,
                            seed: int) -> tuple[list[str], list[str]]:
    """``n`` aligned sentence pairs of two generated content languages: the same documents in
    both (``synthetic.documents`` with one seed is parallel), cut at ``. ``; premises distinct."""
    from xfer.data import synthetic

    premises: list[str] = []
    hypotheses: list[str] = []
    seen: set[str] = set()
    docs = zip(synthetic.documents(premise_lang, seed), synthetic.documents(hypothesis_lang, seed),
               strict=True)
    for a, b in itertools.islice(docs, 100 * n):
        sa, sb = a.split(SENTENCE_END), b.split(SENTENCE_END)
        if len(sa) != len(sb):
            continue
        for p, h in zip(sa, sb, strict=True):
            if p and h and p not in seen:
                seen.add(p)
                premises.append(p)
                hypotheses.append(h)
                if len(premises) == n:
                    return premises, hypotheses
    raise XferError(f"downstream.construct: found only {len(premises)} distinct sentences")


def build_task(section: dict, work: Path) -> Path:
    """Build the constructed task (once; idempotent) under ``work`` and return its folder."""
    from xfer.downstream.tasks import build_translation_task
    from xfer.io import atomic_write_bytes

    c = Construct(**section["construct"])
    source = Path(c.corpus).expanduser().resolve()
    if c.corpus == "synthetic":
        source = work / "aligned"
        lines = synthetic_aligned_lines(c.premise_lang, c.hypothesis_lang,
                                        c.n_train + c.n_validation, c.seed)
        for lang, text in zip((c.premise_lang, c.hypothesis_lang), lines, strict=True):
            path = source / f"{lang}.txt"
            data = ("\n".join(text) + "\n").encode("utf-8")
            if not path.is_file() or path.read_bytes() != data:
                atomic_write_bytes(path, data)
    return build_translation_task(source, c.premise_lang, c.hypothesis_lang, c.n_train,
                                  c.n_validation, c.seed, work / "task")


def resolved_config(section: dict, run_dir: Path) -> dict:
    """The ``DownstreamConfig`` dict the trials run (``task`` built on the driver if asked)."""
    fields = {k: v for k, v in section.items() if k != "construct"}
    if "construct" in section:
        fields["task"] = str(build_task(section, run_dir / "downstream"))
    elif fields.get("source", "local") == "local":
        fields["task"] = str(Path(fields["task"]).expanduser().resolve())
    return _downstream_config(fields).to_dict()


def planned_pair_bytes(section: dict) -> int:
    """Upper bound of the bytes one downstream trial trains on: epochs x pairs x max_len
    (0 when the task's size is unknown before it is read)."""
    construct = section.get("construct")
    if not construct:
        return 0
    fields = {k: v for k, v in section.items() if k != "construct"}
    cfg = _downstream_config({**fields, "task": TASK_PLACEHOLDER})
    return cfg.epochs * int(construct["n_train"]) * cfg.max_len
