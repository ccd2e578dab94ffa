"""Eq. 1 (effective data D_E) and Eq. 2 (data transfer D_T) over a results table.

Units: budgets, D_E and D_T are bytes of target-language UTF-8 text; ``d_t_mib`` is D_T in MiB
(2^20 bytes, what the paper's tables call "MB"). Perplexities are test perplexities per byte.

The results table has one row per trial with columns ``init`` ("scratch" or a source code),
``target``, ``budget`` (bytes) and ``perplexity``; optional ``kind`` (pretrain rows are ignored
here) and ``seed``. :func:`compute_transfer` validates it, builds one scratch curve per target and
adds ``scratch_perplexity``, ``d_e``, ``d_t``, ``d_t_mib`` and ``bound`` to every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xfer.analysis.intervals import CELL, add_intervals, interval_columns
from xfer.errors import XferError
from xfer.kinds import Kind
from xfer.units import MIB

REQUIRED_COLUMNS = ("init", "target", "budget", "perplexity")
SCRATCH = "scratch"
EXACT, LOWER, UPPER = "exact", "lower", "upper"
# Eq. 1 in bytes against perplexity (the paper's), in log bytes against perplexity, or in log bytes
# against log perplexity (the mean loss): the one without a blind spot (bench/calibration.py)
INTERPOLATIONS = ("linear", "log", "loglog")
DEFAULT_INTERP = "loglog"


@dataclass(frozen=True)
class ScratchCurve:
    """One target's scratch curve: perplexity against budget (bytes), budgets increasing.

    ``budgets``/``perplexities`` are every measured point (seeds averaged in log space);
    ``env_budgets``/``env_perplexities`` the monotone envelope used for Eq. 1: the points whose
    perplexity is strictly lower than at every smaller budget (so a bigger budget that scored
    worse is dropped, and a perplexity maps to the smallest budget that reached it).
    """

    budgets: np.ndarray
    perplexities: np.ndarray
    env_budgets: np.ndarray
    env_perplexities: np.ndarray

    @property
    def monotone(self) -> bool:
        """True when no point was dropped from the envelope."""
        return len(self.env_budgets) == len(self.budgets)

    @property
    def dropped_budgets(self) -> list[int]:
        """Budgets (bytes) whose scratch perplexity was no better than a smaller budget's."""
        return [int(b) for b in self.budgets if b not in set(self.env_budgets.tolist())]


def cross_lingual(frame: pd.DataFrame) -> pd.Series:
    """Mask of the rows finetuned from another language: ``init`` neither scratch nor the target
    itself (a source finetuned on its own language is not transfer)."""
    return (frame["init"] != SCRATCH) & (frame["init"] != frame["target"])


def scratch_curve(budgets: Sequence[float], perplexities: Sequence[float]) -> ScratchCurve:
    """Build a :class:`ScratchCurve` from scratch points (budgets in bytes, any order)."""
    b = np.asarray(budgets, dtype=float)
    p = np.asarray(perplexities, dtype=float)
    if b.shape != p.shape or b.ndim != 1 or len(b) < 2:
        raise XferError(f"a scratch curve needs at least two points, got {len(b)}")
    if len(np.unique(b)) != len(b):
        raise XferError("a scratch curve has two points with the same budget")
    order = np.argsort(b)
    b, p = b[order], p[order]
    best_before = np.concatenate([[np.inf], np.minimum.accumulate(p)[:-1]])
    keep = p < best_before
    return ScratchCurve(b, p, b[keep], p[keep])


def effective_data(perplexity: float | np.ndarray, curve: ScratchCurve,
                   interp: str = DEFAULT_INTERP) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 1: D_E (bytes) = the budget at which the scratch curve reaches ``perplexity``.

    Piecewise-linear interpolation (``numpy.interp``) over the envelope points sorted by
    increasing perplexity (no ``period``): ``interp="linear"`` of budget against perplexity (the
    paper's Eq. 1), ``"log"`` of log budget against perplexity, ``"loglog"`` (the default) of
    log budget against log perplexity, i.e. against the mean loss (nats per byte). A perplexity
    better than the best scratch point is clamped to the largest budget and marked ``"lower"``
    (D_E is at least that); one worse than the smallest budget's is clamped to the smallest
    budget and marked ``"upper"`` (D_E is at most that). Returns ``(d_e, bound)`` arrays.
    """
    if interp not in INTERPOLATIONS:
        raise XferError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interp!r}")
    p = np.atleast_1d(np.asarray(perplexity, dtype=float))
    order = np.argsort(curve.env_perplexities)
    xp, fp = curve.env_perplexities[order], curve.env_budgets[order]
    if interp == "linear":
        d_e = np.interp(p, xp, fp)
    elif interp == "log":
        d_e = np.exp(np.interp(p, xp, np.log(fp)))
    else:
        d_e = np.exp(np.interp(np.log(p), np.log(xp), np.log(fp)))
    d_e = np.where(p <= xp[0], fp[0], np.where(p >= xp[-1], fp[-1], d_e))  # ends exact in bytes
    bound = np.where(p < xp[0], LOWER, np.where(p > xp[-1], UPPER, EXACT))
    return d_e, bound


def data_transfer(d_e: float | np.ndarray, budget: float | np.ndarray) -> np.ndarray:
    """Eq. 2: D_T (bytes) = D_E − budget: the target bytes that pretraining was worth."""
    return np.asarray(d_e, dtype=float) - np.asarray(budget, dtype=float)


@dataclass
class Problem:
    """Something in the table that could not be analysed: ``kind`` is "error" or "note"."""

    what: str
    reason: str
    kind: str = "error"

    def line(self) -> str:
        return f"{self.what}: {self.reason}"


@dataclass
class TransferResult:
    """Rows with D_E/D_T added, per-target scratch curves, and what was skipped and why."""

    rows: pd.DataFrame
    curves: dict[str, ScratchCurve]
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.kind == "error"]


def _row_names(frame: pd.DataFrame) -> str:
    names = [f"{r.init}->{r.target}@{r.budget}" for r in frame.itertuples()]
    extra = f" (+{len(names) - 5} more)" if len(names) > 5 else ""
    return ", ".join(names[:5]) + extra


def validate(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, list[Problem]]:
    """Check the table; return it (codes as str), a mask of usable rows, and the problems found.

    Missing required columns raise :class:`XferError`. Pretrain rows (``kind == "pretrain"``)
    are not usable (not part of D_T). Rows with a non-positive or non-finite perplexity or
    budget, and duplicated cells (same init, target, budget and seed), are not usable and are
    reported as errors naming the rows.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in results.columns]
    if missing:
        raise XferError(f"results table lacks required column(s): {', '.join(missing)}")
    if results.empty:
        raise XferError("results table has no rows")
    frame = results.reset_index(drop=True).copy()
    frame["init"] = frame["init"].astype(str)
    frame["target"] = frame["target"].astype(str)
    usable = pd.Series(True, index=frame.index)
    if "kind" in frame.columns:
        usable &= frame["kind"].astype(str) != Kind.PRETRAIN
    problems: list[Problem] = []
    ppl = pd.to_numeric(frame["perplexity"], errors="coerce")
    budget = pd.to_numeric(frame["budget"], errors="coerce")
    bad = ~(np.isfinite(ppl) & (ppl > 0)) | ~(np.isfinite(budget) & (budget > 0)
                                              & (budget < 2**63) & (budget % 1 == 0))
    if (bad & usable).any():
        problems.append(Problem(f"rows {_row_names(frame[bad & usable])}",
                                "non-positive or missing perplexity or budget; rows skipped"))
    usable &= ~bad
    frame["perplexity"] = ppl.astype(float)
    frame["budget"] = budget.where(~bad, 0).astype(np.int64)
    key = ["init", "target", "budget"] + (["seed"] if "seed" in frame.columns else [])
    dup = frame[usable].duplicated(key, keep=False).reindex(frame.index, fill_value=False)
    if dup.any():
        why = "duplicate rows for one cell" + ("" if "seed" in frame.columns else
                                                " and no seed column") + "; cell skipped"
        problems.append(Problem(f"rows {_row_names(frame[dup].drop_duplicates(key))}", why))
        usable &= ~dup
    return frame, usable, problems


def build_curves(frame: pd.DataFrame) -> tuple[dict[str, ScratchCurve], list[Problem]]:
    """One :class:`ScratchCurve` per target from its scratch rows (seeds: mean log perplexity).

    ``frame`` holds usable rows only.
    """
    curves: dict[str, ScratchCurve] = {}
    problems: list[Problem] = []
    scratch = frame[frame["init"] == SCRATCH]
    for target in sorted(frame["target"].unique()):
        points = scratch[scratch["target"] == target]
        per_budget = np.exp(np.log(points["perplexity"]).groupby(points["budget"]).mean())
        if len(per_budget) < 2:
            problems.append(Problem(f"target {target}", f"{len(per_budget)} scratch point(s); "
                                    "needs at least two for a scratch curve; not analysed"))
            continue
        curves[target] = scratch_curve(per_budget.index.to_numpy(), per_budget.to_numpy())
        if not curves[target].monotone:
            problems.append(Problem(
                f"target {target}", "scratch curve not monotone (budget(s) "
                f"{curves[target].dropped_budgets} no better than a smaller one); "
                "monotone envelope used", kind="note"))
    return curves, problems


def seed_curves(frame: pd.DataFrame) -> tuple[dict[tuple[str, int], ScratchCurve],
                                                list[Problem]]:
    """One :class:`ScratchCurve` per (target, seed) from that seed's scratch rows (``frame``:
    usable rows with a ``seed`` column); a seed with fewer than two scratch points has none."""
    curves: dict[tuple[str, int], ScratchCurve] = {}
    bent: dict[str, list[str]] = {}
    scratch = frame[frame["init"] == SCRATCH]
    for (target, seed), points in scratch.groupby(["target", "seed"], sort=True):
        if points["budget"].nunique() < 2:
            continue
        curve = scratch_curve(points["budget"].to_numpy(), points["perplexity"].to_numpy())
        curves[(str(target), int(seed))] = curve
        if not curve.monotone:
            bent.setdefault(str(target), []).append(f"seed {seed} {curve.dropped_budgets}")
    problems = [Problem(f"target {t}", "scratch curve of a seed not monotone ("
                        f"{'; '.join(seeds)} no better than a smaller budget); its monotone "
                        "envelope used", kind="note") for t, seeds in bent.items()]
    return curves, problems


def _map_rows(out: pd.DataFrame, mask: pd.Series, curve: ScratchCurve, interp: str) -> None:
    """D_E and bound of the rows of ``mask`` through ``curve``."""
    d_e, bound = effective_data(out.loc[mask, "perplexity"].to_numpy(), curve, interp)
    out.loc[mask, "d_e"] = d_e
    out.loc[mask, "bound"] = bound


def compute_transfer(results: pd.DataFrame, interp: str = DEFAULT_INTERP) -> TransferResult:
    """Every input row plus ``scratch_perplexity``, ``d_e``, ``d_t`` (bytes), ``d_t_mib`` (MiB)
    and ``bound`` (exact, lower, upper); ``interp`` as in :func:`effective_data`.

    With a ``seed`` column, each seed is one replicate of the whole measurement: a finetune of
    seed s is mapped through the scratch curve of seed s (so its D_T carries both sides' seed
    noise). A finetune whose seed has no scratch curve of its own is not analysed (an error
    naming the seeds): the target's mean curve would hide its scratch side's noise. Scratch rows
    are mapped through the mean curve (their D_T shows seed noise around 0). Pretrain rows,
    unusable rows and rows of targets without a usable scratch curve keep NaN values and an
    empty bound.
    """
    frame, usable, problems = validate(results)
    curves, curve_problems = build_curves(frame[usable])
    problems += curve_problems
    per_seed: dict[tuple[str, int], ScratchCurve] = {}
    if "seed" in frame.columns:
        per_seed, seed_problems = seed_curves(frame[usable])
        problems += seed_problems
    out = frame.copy()
    out["scratch_perplexity"] = np.nan
    out["d_e"] = np.nan
    out["bound"] = ""
    for target, curve in curves.items():
        mask = usable & (out["target"] == target)
        finetune = mask & (out["init"] != SCRATCH)
        _map_rows(out, mask & ~finetune if "seed" in out.columns else mask, curve, interp)
        unpaired = []
        for seed in (sorted(set(out.loc[finetune, "seed"])) if "seed" in out.columns else []):
            own = per_seed.get((target, int(seed)))
            if own is None:
                unpaired.append(str(seed))
                continue
            _map_rows(out, finetune & (out["seed"] == seed), own, interp)
        if unpaired:
            problems.append(Problem(f"target {target}", f"seed(s) {', '.join(unpaired)} have "
                                    "no scratch curve of their own (two or more scratch budgets "
                                    "of that seed); their finetunes are not analysed"))
        lookup = dict(zip(curve.budgets.astype(np.int64).tolist(), curve.perplexities, strict=True))
        out.loc[mask, "scratch_perplexity"] = out.loc[mask, "budget"].map(lookup).astype(float)
    out["d_t"] = data_transfer(out["d_e"].to_numpy(), out["budget"].to_numpy())
    out["d_t_mib"] = out["d_t"] / MIB
    return TransferResult(add_intervals(out), curves, problems)


def _combined_bound(bounds: pd.Series) -> str:
    kinds = set(bounds)
    if kinds <= {EXACT}:
        return EXACT
    if LOWER in kinds and UPPER in kinds:
        return "mixed"
    return LOWER if LOWER in kinds else UPPER


def summarise_cells(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (init, target, budget): mean and standard deviation over seeds.

    ``perplexity`` is the mean over seeds in log space (exp of the mean log perplexity, i.e. of
    the mean loss), the same mean as the scratch curve's points; D_E and D_T are plain means of
    the seeds' values. Columns: ``n_seeds``, ``perplexity``/``perplexity_std``, ``d_e``,
    ``d_t``/``d_t_std`` (bytes), ``d_t_mib``/``d_t_mib_std``, ``d_t_mib_ci_low``/
    ``d_t_mib_ci_high`` (95% t interval of the mean over seeds) and ``perplexity_ci_low``/
    ``perplexity_ci_high`` (of the geometric mean; :mod:`xfer.analysis.intervals`), ``bound``
    (exact, lower, upper, or mixed when seeds disagree). Standard deviations and intervals are
    NaN for a single seed.
    """
    rows = rows[rows["bound"] != ""].assign(log_perplexity=lambda f: np.log(f["perplexity"]))
    grouped = rows.groupby(["init", "target", "budget"], sort=True)
    cells = grouped.agg(
        n_seeds=("perplexity", "size"), log_perplexity=("log_perplexity", "mean"),
        perplexity_std=("perplexity", "std"), scratch_perplexity=("scratch_perplexity", "first"),
        d_e=("d_e", "mean"), d_t=("d_t", "mean"), d_t_std=("d_t", "std"),
        bound=("bound", _combined_bound)).reset_index()
    cells.insert(4, "perplexity", np.exp(cells.pop("log_perplexity")))
    cells["d_t_mib"] = cells["d_t"] / MIB
    cells["d_t_mib_std"] = cells["d_t_std"] / MIB
    for value, log in (("d_t_mib", False), ("perplexity", True)):
        cells = cells.merge(interval_columns(rows, value, log=log), on=CELL, how="left")
    return cells


def difference_bound(bound_1: str, bound_2: str) -> str:
    """What D_T(1) − D_T(2) is when either side is a bound: ``exact`` when both are exact,
    ``lower`` when every bound pushes the difference up (side 1 a lower bound, side 2 an upper
    one), ``upper`` when every bound pushes it down, else ``unknown`` (bounds pull both ways,
    or seeds disagree)."""
    if "mixed" in (bound_1, bound_2):
        return "unknown"
    pushes = {LOWER: {bound_1 == LOWER, bound_2 == UPPER}, UPPER: {bound_1 == UPPER,
                                                                   bound_2 == LOWER}}
    up, down = True in pushes[LOWER], True in pushes[UPPER]
    return EXACT if not (up or down) else "unknown" if up and down else LOWER if up else UPPER


def commutativity(cells: pd.DataFrame, budget: int) -> pd.DataFrame:
    """For each pair of languages finetuned in both directions at ``budget`` (bytes):
    ``d_t_mib_12`` = D_T(lang1 → lang2), ``d_t_mib_21`` the reverse, their bounds,
    ``difference_mib`` = first − second (MiB) and ``bound_difference`` (see
    :func:`difference_bound`)."""
    at = cells[(cells["budget"] == budget) & cross_lingual(cells)]
    index = {(r.init, r.target): r for r in at.itertuples()}
    rows = []
    for (a, b), forward in sorted(index.items()):
        back = index.get((b, a))
        if back is None or a > b:
            continue
        rows.append({"lang1": a, "lang2": b, "d_t_mib_12": forward.d_t_mib,
                     "bound_12": forward.bound, "d_t_mib_21": back.d_t_mib,
                     "bound_21": back.bound, "difference_mib": forward.d_t_mib - back.d_t_mib,
                     "bound_difference": difference_bound(forward.bound, back.bound)})
    return pd.DataFrame(rows, columns=["lang1", "lang2", "d_t_mib_12", "bound_12", "d_t_mib_21",
                                       "bound_21", "difference_mib", "bound_difference"])
