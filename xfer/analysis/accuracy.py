"""The downstream check's table: validation accuracy per source against scratch (markdown).

It lives in the analysis (which reports it) so the analysis needs nothing from
:mod:`xfer.downstream`, which trains the classifiers."""

from __future__ import annotations

import math

import pandas as pd

from xfer.analysis.report import markdown_table
from xfer.analysis.transfer import SCRATCH
from xfer.errors import XferError
from xfer.kinds import Kind


def percent(value: float) -> str:
    """``value`` (a share, 0..1) in percent with one decimal, or "–" when missing."""
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.1f}"


def downstream_table(rows: pd.DataFrame) -> str:
    """Markdown: validation accuracy (%) per init (sources, then the scratch baseline).

    ``rows``: one row per downstream run with ``init`` and ``accuracy`` (0..1); optional
    ``accuracy_before``, ``seed``, ``language``, ``task``. Several seeds: mean ± std. Passed to
    :func:`xfer.analysis.analyse.analyse` as ``extra_sections={"Downstream accuracy": ...}``.
    """
    missing = [c for c in ("init", "accuracy") if c not in rows.columns]
    if missing:
        raise XferError(f"downstream results lack column(s) {', '.join(missing)}")
    if rows.empty:
        raise XferError("no downstream results to tabulate")
    frame = rows.copy()
    if "accuracy_before" not in frame:
        frame["accuracy_before"] = float("nan")
    stats = frame.groupby("init").agg(mean=("accuracy", "mean"), std=("accuracy", "std"),
                                      n=("accuracy", "size"), before=("accuracy_before", "mean"))
    scratch = stats["mean"].get(SCRATCH, float("nan"))
    sources = stats.drop(index=SCRATCH, errors="ignore").sort_values("mean", ascending=False)
    order = list(sources.index) + ([SCRATCH] if SCRATCH in stats.index else [])
    table = []
    for name in order:
        row = stats.loc[name]
        acc = percent(row["mean"]) + (f" ± {100 * row['std']:.1f}" if row["n"] > 1 else "")
        delta = (f"{100 * (row['mean'] - scratch):+.1f}"
                 if name != SCRATCH and math.isfinite(scratch) else "–")
        table.append([name, acc, delta, percent(row["before"]), str(int(row["n"]))])
    what = []
    for col in ("task", "language"):
        if col in frame:
            what.append(f"{col} {', '.join(sorted(map(str, frame[col].dropna().unique())))}")
    intro = ("Validation accuracy (%) of each source model finetuned as a two-class sentence-pair "
             "classifier (best epoch), against a randomly initialised model (scratch)"
             + (f"; {'; '.join(what)}" if what else "") + ". Chance is 50%.")
    header = ["init", "accuracy %", "Δ vs scratch (points)", "before training %", "runs"]
    return intro + "\n\n" + markdown_table(header, table)


def report_section(rows: list[dict]) -> dict[str, str]:
    """``{"Downstream accuracy": table}`` from the ledger's downstream rows (empty if none)."""
    rows = [r for r in rows if r.get("kind") == Kind.DOWNSTREAM and r.get("accuracy") is not None]
    if not rows:
        return {}
    frame = pd.DataFrame(rows)[["init", "seed", "accuracy", "accuracy_before", "target"]]
    frame = frame.rename(columns={"target": "language"})
    return {"Downstream accuracy": downstream_table(frame)}
