"""The progress line's ETA: the trial seconds still to run, spread over the trial slots.

A trial's cost is learned per class, its kind, budget and lr: the mean wall seconds of the class's
finished trials (early stopping ends finetunes and small scratch runs well before their planned
bytes, so bytes alone overestimate what is left). A class with no finished trial yet costs its
planned bytes at the seconds per planned byte of every finished trial so far. A running trial is
credited with the seconds it has run. The searcher starts one trial of each class early
(:meth:`sweeps.searcher.DependencySearcher.suggest`), so every class is measured within the
study's first minutes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

TrialClass = tuple[str, int, float | None]  # kind, budget (bytes), lr (TrialSpec.cost_class)


def trial_seconds(row: Mapping) -> float:
    """Wall seconds a finished trial took, from its ledger row."""
    return max(0.0, float(row["ended_at"]) - float(row["started_at"]))


def class_seconds(rows: Mapping[str, Mapping], classes: Mapping[str, TrialClass]
                  ) -> dict[TrialClass, float]:
    """Mean wall seconds of each class's finished trials."""
    seen: dict[TrialClass, list[float]] = defaultdict(list)
    for key, row in rows.items():
        if key in classes and "started_at" in row and "ended_at" in row:
            seen[classes[key]].append(trial_seconds(row))
    return {c: sum(s) / len(s) for c, s in seen.items()}


def eta_seconds(planned: Mapping[str, int], classes: Mapping[str, TrialClass],
                rows: Mapping[str, Mapping], running: Mapping[str, float], now: float,
                slots: int) -> float | None:
    """Seconds until every trial of ``planned`` has finished, or None before any trial of
    this study has finished. ``rows``: the ledger's finished trials; ``running``: key -> wall
    time it started; ``slots``: trials that run at once."""
    timed = {k: r for k, r in rows.items() if k in planned and "ended_at" in r}
    if not timed:
        return None
    per_class = class_seconds(timed, classes)
    planned_done = sum(planned[k] for k in timed)
    per_byte = sum(trial_seconds(r) for r in timed.values()) / max(planned_done, 1)
    left: list[float] = []
    for key, n in planned.items():
        if key in rows:
            continue
        cost = per_class.get(classes[key], n * per_byte)
        left.append(max(0.0, cost - (now - running[key])) if key in running else cost)
    if not left:
        return 0.0
    return max(sum(left) / max(1, min(slots, len(left))), max(left))
