"""What trials a study has: one pretrain per source, one scratch run per (target, budget), one
finetune per (source, target, budget) with source != target, and (with a ``downstream:``
section) one downstream classifier per source plus one from scratch; each per seed (pretrains
and downstream trials per pretrain seed: ``pretrain_seeds``, by default every seed)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sweeps.config import StudyConfig
from xfer.training.config import Kind
from xfer.units import format_budget


@dataclass(frozen=True)
class TrialSpec:
    """One training run of the study. ``lang`` is the language trained on (the source for a
    pretrain, the target otherwise); ``budget`` in bytes of that language's training prefix."""

    kind: Kind
    lang: str
    budget: int
    seed: int
    source: str | None = None  # finetune/downstream: the pretrained source (None: scratch)
    parent: str | None = None  # finetune/downstream: key of the pretrain it starts from
    lr: float | None = None  # with ``lr_search``: this variant's peak lr (None: the recipe's)

    @property
    def key(self) -> str:
        """Unique, filesystem-safe name, e.g. ``finetune-en-de-10K-s0``."""
        if self.kind == Kind.DOWNSTREAM:
            return f"downstream-{self.init}-{self.lang}-s{self.seed}"
        b = format_budget(self.budget)
        lr = "" if self.lr is None else f"-lr{self.lr:g}"
        if self.kind == Kind.FINETUNE:
            return f"finetune-{self.source}-{self.lang}-{b}-s{self.seed}{lr}"
        return f"{self.kind}-{self.lang}-{b}-s{self.seed}{lr}"

    @property
    def cost_class(self) -> tuple[str, int, float | None]:
        """Trials expected to cost alike: same kind, budget and lr (:mod:`sweeps.eta`)."""
        return (str(self.kind), self.budget, self.lr)

    @property
    def init(self) -> str:
        """The results table's ``init``: ``scratch`` or the source language."""
        return self.source if self.kind in (Kind.FINETUNE, Kind.DOWNSTREAM) and self.source \
            else "scratch"

    def to_dict(self) -> dict:
        """JSON-able description (key and parent included)."""
        return {**asdict(self), "key": self.key, "init": self.init}

    @classmethod
    def from_dict(cls, data: dict) -> TrialSpec:
        """Inverse of :meth:`to_dict`."""
        lr = data.get("lr")
        return cls(data["kind"], data["lang"], int(data["budget"]), int(data["seed"]),
                   data.get("source"), data.get("parent"), None if lr is None else float(lr))


def pairs(study: StudyConfig) -> list[tuple[str, str]]:
    """(source, target) pairs finetuned: the grid minus the diagonal, then the extra pairs."""
    langs = study.languages
    out = [(s, t) for s in langs.sources for t in langs.targets if s != t]
    out += [p for p in langs.extra_pairs if p not in out]
    return out


def pretrain_seed_of(study: StudyConfig, seed: int) -> int:
    """The pretrain seed whose models the finetunes of ``seed`` start from: ``seed`` itself, or
    with ``pretrain_seeds`` set, the one at the same position (cycling through them)."""
    if not study.pretrain_seeds:
        return seed
    return study.pretrain_seeds[study.seeds.index(seed) % len(study.pretrain_seeds)]


def build_trials(study: StudyConfig) -> list[TrialSpec]:
    """All trials: per pretrain seed its pretrains (and downstream trials), per seed its scratch
    runs and finetunes (one per lr of ``lr_search``, if any). Each finetune names its pretrain as
    parent."""
    sources = list(dict.fromkeys([s for s, _ in pairs(study)]))
    targets = list(dict.fromkeys([*study.languages.targets, *(t for _, t in pairs(study))]))
    trials: list[TrialSpec] = []
    pretrain: dict[tuple[str, int], TrialSpec] = {}
    for seed in dict.fromkeys(pretrain_seed_of(study, s) for s in study.seeds):
        mine = [TrialSpec(Kind.PRETRAIN, s, study.budgets.pretrain, seed) for s in sources]
        pretrain.update({(p.lang, seed): p for p in mine})
        trials += mine
        if study.downstream is not None:
            trials += downstream_trials(study, mine, seed)
    for seed in study.seeds:
        parent = pretrain_seed_of(study, seed)
        trials += [TrialSpec(Kind.SCRATCH, t, b, seed, lr=lr)
                   for t in targets for b in study.scratch_budgets
                   for lr in study.lr_search.get(Kind.SCRATCH, (None,))]
        trials += [TrialSpec(Kind.FINETUNE, t, b, seed, source=s, parent=pretrain[s, parent].key,
                             lr=lr)
                   for s, t in pairs(study) for b in study.budgets.finetune
                   for lr in study.lr_search.get(Kind.FINETUNE, (None,))]
    return trials


def downstream_trials(study: StudyConfig, pretrains: list[TrialSpec],
                      seed: int) -> list[TrialSpec]:
    """One downstream trial per pretrained source (after its pretrain), one from scratch."""
    lang = study.downstream.language
    return [*(TrialSpec(Kind.DOWNSTREAM, lang, 0, seed, source=p.lang, parent=p.key)
              for p in pretrains), TrialSpec(Kind.DOWNSTREAM, lang, 0, seed)]


def language_budgets(study: StudyConfig, trials: list[TrialSpec]) -> dict[str, list[int]]:
    """Every training budget each language's dataset must offer (bytes, increasing)."""
    out: dict[str, set[int]] = {}
    for t in trials:
        if t.kind != Kind.DOWNSTREAM:  # its task is built on the driver, not a dataset
            out.setdefault(t.lang, set()).add(t.budget)
    return {lang: sorted(b) for lang, b in out.items()}


def count_by_kind(trials: list[TrialSpec]) -> dict[str, int]:
    """Number of trials of each kind."""
    counts = {Kind.PRETRAIN: 0, Kind.SCRATCH: 0, Kind.FINETUNE: 0}
    for t in trials:
        counts[t.kind] = counts.get(t.kind, 0) + 1
    return counts
