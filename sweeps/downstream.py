"""The downstream check inside a study (issue 8): the config section, its task, its report table.

The optional ``downstream:`` section of a study config holds the fields of
:class:`xfer.downstream.DownstreamConfig` (epochs, lr, batch_size, max_len, ...) and either
``task`` (a local task folder, or a hub dataset with ``source: hub``) or ``construct``, which
makes the driver build a translation-detection task once, before the trials start::

    construct:
      corpus: synthetic        # pairs from the generated languages; bundled (the FLORES-200
                               # text shipped in the package); or a folder of aligned <lang>.txt
      premise_lang: base
      hypothesis_lang: twin
      n_train: 256             # pairs (half true translations, half another sentence)
      n_validation: 128

Each seed gets one downstream trial per pretrained source (initialised from its best
checkpoint) and one from scratch; their validation accuracies become the report's
"Downstream accuracy" table (:func:`xfer.downstream.table.downstream_table`).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xfer.downstream import DownstreamConfig
from xfer.errors import XferError
from xfer.schema import NAME_PATTERN, build, check_keys

SENTENCE_END = ". "


@dataclass(frozen=True)
class Construct:
    """How the driver builds the task: aligned sentences of two languages (``corpus``:
    ``synthetic``, ``bundled`` or a folder of ``<lang>.txt``), pair counts, and the sampling
    seed."""

    corpus: str
    premise_lang: str
    hypothesis_lang: str
    n_train: int = 256
    n_validation: int = 128
    seed: int = 0


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
    folder = aligned_folder(c.corpus)
    for lang in (c.premise_lang, c.hypothesis_lang):
        if not (folder / f"{lang}.txt").is_file():
            raise XferError(f"downstream.construct: no aligned file {folder / f'{lang}.txt'}")
    return c


def aligned_folder(corpus: str) -> Path:
    """The folder of aligned ``<lang>.txt`` files that ``construct.corpus`` names: ``bundled``
    is the package's FLORES-200 text, anything else a folder."""
    from xfer.data.corpora import BUNDLED, bundled_parallel

    return bundled_parallel() if corpus == BUNDLED else Path(corpus).expanduser().resolve()


TASK_DIR = "downstream/task"  # where the driver builds a constructed task, in the run folder


@dataclass(frozen=True)
class DownstreamSection:
    """The study's ``downstream:`` section, typed: the classifier's settings and where its task
    comes from. ``classifier.task`` is the given task folder or hub dataset, or, with
    ``construct``, :data:`TASK_DIR`, relative to the run folder, where the driver builds it."""

    classifier: DownstreamConfig
    construct: Construct | None = None

    @property
    def language(self) -> str:
        """The task's language as trial keys and the report name it."""
        return self.classifier.language or "task"

    def to_dict(self) -> dict:
        """Plain JSON-able dict, the YAML section's shape (inverse: :meth:`from_dict`)."""
        out = self.classifier.to_dict()
        if self.construct is not None:
            out["construct"] = dataclasses.asdict(self.construct)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> DownstreamSection:
        """The section again from :meth:`to_dict`'s output."""
        data = dict(data)
        construct = data.pop("construct", None)
        return cls(DownstreamConfig.from_dict(data),
                   Construct(**construct) if construct is not None else None)

    def resolved(self, run_dir: Path) -> DownstreamConfig:
        """The classifier the trials run: a constructed task built (once) under ``run_dir``,
        a local task folder made absolute."""
        task = self.classifier.task
        if self.construct is not None:
            task = str(build_task(self.construct, run_dir / Path(TASK_DIR).parent))
        elif self.classifier.source == "local":
            task = str(Path(task).expanduser().resolve())
        return dataclasses.replace(self.classifier, task=task)

    def planned_pair_bytes(self) -> int:
        """Upper bound of the bytes one downstream trial trains on: epochs x pairs x max_len
        (0 when the task's size is unknown before it is read)."""
        if self.construct is None:
            return 0
        return self.classifier.epochs * self.construct.n_train * self.classifier.max_len


def check_section(section: Any, languages: Any = None) -> DownstreamSection | None:
    """The validated ``downstream:`` section (None when absent)."""
    if section is None:
        return None
    if not isinstance(section, dict):
        raise XferError(f"downstream: expected a mapping, got {section!r}")
    check_keys(section, [*DownstreamConfig.__dataclass_fields__, "construct"], "downstream")
    fields = dict(section)
    if "seed" in fields:
        raise XferError("downstream.seed: trials take the study's seeds; remove it")
    construct = fields.pop("construct", None)
    if construct is None and "task" not in fields:
        raise XferError("downstream: give task (a task folder or hub dataset) or construct")
    if construct is not None and "task" in fields:
        raise XferError("downstream: give task or construct, not both")
    c = None
    if construct is not None:
        c = check_construct(construct)
        fields["task"] = TASK_DIR
        fields.setdefault("language", f"{c.premise_lang}-{c.hypothesis_lang}")
    out = DownstreamSection(build(DownstreamConfig, fields, "downstream"), c)
    if not NAME_PATTERN.fullmatch(out.language):  # part of trial keys and folders
        raise XferError(f"downstream.language: {out.language!r} may only use "
                        "letters, digits, '.', '_' and '-'")
    task = Path(out.classifier.task).expanduser()
    if c is None and out.classifier.source == "local" and not task.is_dir():
        raise XferError(f"downstream.task: task folder {out.classifier.task!r} does not exist")
    return out


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


def build_task(c: Construct, work: Path) -> Path:
    """Build the constructed task (once; idempotent) under ``work`` and return its folder."""
    from xfer.downstream.tasks import build_translation_task
    from xfer.io import atomic_write_bytes

    source = aligned_folder(c.corpus)
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
