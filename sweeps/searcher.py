"""A Ray Tune Searcher that hands out the study's trials in dependency order, with no barrier.

``suggest`` returns a trial's config as soon as its language's data is prepared and (for a
finetune) its pretrain has finished with a checkpoint; until then it returns ``None`` so Tune
asks again later, and ``Searcher.FINISHED`` once every trial has finished, failed or been
skipped (a finetune whose pretrain failed). Scratch runs therefore start beside the pretrains,
and one source's finetunes start while other sources still pretrain. The first ready trial of
each class (kind, budget and lr) goes before the others, so the progress line's ETA
(:mod:`sweeps.eta`) has timed every class early on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container, Mapping
from pathlib import Path

from ray.tune.search import Searcher

from sweeps.trials import TrialSpec
from xfer.errors import XferError
from xfer.training.config import Kind

# Which ready trial goes first: pretrains are on the critical path, finetunes next (their
# pretrain is done), scratch runs fill the gaps; bigger budgets first within a kind.
_PRIORITY = {Kind.PRETRAIN: 0, Kind.FINETUNE: 1, Kind.DOWNSTREAM: 1, Kind.SCRATCH: 2}


def schedule_order(trials: list[TrialSpec]) -> list[TrialSpec]:
    """Trials in the order the searcher prefers them when several are ready."""
    return sorted(trials, key=lambda t: (_PRIORITY.get(t.kind, 1), -t.budget, t.key))


class DependencySearcher(Searcher):
    """Suggests each trial once, when its dependencies are done.

    Args:
        trials: the trials still to run (finished ones already left out).
        checkpoints: key -> checkpoint URI of finished trials; read at every ``suggest`` (the
            driver's ledger fills it when a trial completes), so a parent counts as done once its
            checkpoint is known.
        make_config: builds a trial's Tune config (its whole config: nothing global).
        data_ready: ``lang -> bool``, whether the language's dataset is prepared; raises
            XferError when its preparation failed.
        finished: keys of finished trials (the ledger); a parent among them without a
            checkpoint can never hand one over, so its dependants fail at once.
        max_concurrent: trials live at once (more would only queue inside Tune, in front of
            finetunes that become ready later).
    """

    def __init__(self, trials: list[TrialSpec], checkpoints: Mapping[str, str],
                 make_config: Callable[[TrialSpec, str | None], dict],
                 data_ready: Callable[[str], bool] = lambda lang: True,
                 max_concurrent: int = 1, finished: Container[str] = ()) -> None:
        super().__init__(metric=None, mode=None)
        self.pending = schedule_order(trials)
        self.checkpoints = checkpoints
        self.make_config = make_config
        self.data_ready = data_ready
        self.finished = finished
        self.max_concurrent = max(1, max_concurrent)
        self.live: dict[str, TrialSpec] = {}
        self.failed: dict[str, str] = {}  # key -> why
        self.suggested: list[str] = []
        self.classes_started: set[tuple] = set()

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: object) -> bool:
        """Accept Tune's ``param_space`` (the study config) as it is: nothing to search."""
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Concurrency is handled here."""
        self.max_concurrent = max(1, max_concurrent)
        return True

    def ready(self, trial: TrialSpec) -> bool:
        """Whether ``trial`` may start now (a data preparation error fails its language)."""
        if trial.parent and trial.parent not in self.checkpoints:
            return False
        if trial.kind == Kind.DOWNSTREAM:  # its task was built before the experiment started
            return True
        try:
            return self.data_ready(trial.lang)
        except XferError as exc:  # reported by the driver, not raised in Tune
            self.fail_language(trial.lang, f"data preparation failed: {exc}")
            return False

    def suggest(self, trial_id: str) -> dict | str | None:
        """The next ready trial's config, ``None`` (ask again later) or ``FINISHED``."""
        self._skip_orphans()
        if not self.pending and not self.live:
            return Searcher.FINISHED
        if len(self.live) >= self.max_concurrent:
            return None
        # a stable sort: trials of classes not yet started first, each group in schedule order
        for trial in sorted(self.pending, key=lambda t: t.cost_class in self.classes_started):
            if trial in self.pending and self.ready(trial):  # ready() may fail a language
                self.pending.remove(trial)
                self.classes_started.add(trial.cost_class)
                self.live[trial_id] = trial
                self.suggested.append(trial.key)
                parent_ckpt = self.checkpoints.get(trial.parent) if trial.parent else None
                return self.make_config(trial, parent_ckpt)
        return None

    def _skip_orphans(self) -> None:
        """Drop trials whose parent failed, or finished without a checkpoint: they can never
        start."""
        keep = []
        for trial in self.pending:
            if trial.parent in self.failed:
                self.failed[trial.key] = f"skipped: its pretrain {trial.parent} failed"
            elif trial.parent and trial.parent in self.finished and \
                    trial.parent not in self.checkpoints:
                self.failed[trial.key] = (
                    f"its pretrain {trial.parent} finished without a checkpoint (ledger/"
                    f"{trial.parent}.json names none); delete that file to train it again")
            else:
                keep.append(trial)
        self.pending = keep

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """A trial ended; a failed one (retries exhausted) takes its dependants with it."""
        trial = self.live.pop(trial_id, None)
        if trial is not None and (error or not (result or {}).get("final")):
            self.failed[trial.key] = "failed" if error else "ended without a final result"

    def fail_language(self, lang: str, why: str) -> None:
        """Data preparation for ``lang`` failed: every pending trial on it fails."""
        keep = []
        for trial in self.pending:
            if trial.lang == lang:
                self.failed[trial.key] = why
            else:
                keep.append(trial)
        self.pending = keep

    def get_state(self) -> dict:
        """JSON-able state (resume itself goes through the run folder's ledger)."""
        return {"pending": [t.key for t in self.pending],
                "live": {k: t.key for k, t in self.live.items()},
                "failed": self.failed, "suggested": self.suggested}

    def save(self, checkpoint_path: str) -> None:
        """Tune saves searcher state periodically; write it as JSON for inspection."""
        Path(checkpoint_path).write_text(json.dumps(self.get_state(), indent=1))

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore: a new driver rebuilds the pending list from the ledger."""
