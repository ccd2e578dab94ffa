"""PNG figures for the report (matplotlib, Agg backend: no display needed).

- ``perplexity_vs_budget.png``: test perplexity against budget (bytes, log axis), one panel per
  target, one line per initialisation (geometric mean over seeds, bars: 95% t interval).
- ``dt_by_target.png``: D_T (MiB) per target by source at the report budget; dashed lines: the
  average over targets of the best source's D_T and of the worst source's D_T. Hatched bars are
  bounds (clamped D_E).
- ``dt_by_source.png``: box plot of D_T (MiB) per source over its cells; bound cells drawn as
  triangles (▲ a lower bound, ▼ an upper one, ◆ seeds bound both ways).
- ``powerlaw.png``: D_T against D_F (bytes, log-log) over the exact cells with D_T > 0, one colour
  per source, with the fitted D_T = k·(D_F)^α per source (solid) and per pair (dotted).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from xfer.analysis.transfer import EXACT, LOWER, SCRATCH, UPPER, cross_lingual  # noqa: E402
from xfer.io import atomic_write  # noqa: E402
from xfer.units import format_budget  # noqa: E402


def _legend(ax: object) -> None:
    """A legend when something is labelled (matplotlib warns on stderr otherwise)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def perplexity_figure(cells: pd.DataFrame, path: Path) -> Path:
    """Perplexity against budget per initialisation, one panel per target."""
    targets = sorted(cells["target"].unique())
    cols = min(4, max(1, len(targets)))
    rows = math.ceil(len(targets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    for ax, target in zip(axes.flat, targets, strict=False):
        mine = cells[cells["target"] == target]
        for init, group in mine.groupby("init", sort=True):
            group = group.sort_values("budget")
            style = {"color": "black", "linewidth": 2} if init == SCRATCH else {}
            ax.errorbar(group["budget"], group["perplexity"], yerr=_errors(group, "perplexity"),
                        marker="o", markersize=3, capsize=2, label=init, **style)
        ax.set_xscale("log")
        ax.set_title(f"target {target}")
        ax.set_xlabel("finetuning budget (bytes)")
        ax.set_ylabel("test perplexity")
        _legend(ax)
    for ax in list(axes.flat)[len(targets):]:
        ax.set_visible(False)
    fig.tight_layout()
    return _save(fig, path)


def _errors(cells: pd.DataFrame, value: str) -> np.ndarray:
    """[2, n] error-bar lengths below and above each cell's mean ``value``: its 95% t interval
    (``<value>_ci_low``/``_high``), 0 where there is none (one seed)."""
    mean = cells[value].to_numpy(float)
    low = cells.get(f"{value}_ci_low", pd.Series(np.nan, cells.index)).to_numpy(float)
    high = cells.get(f"{value}_ci_high", pd.Series(np.nan, cells.index)).to_numpy(float)
    return np.nan_to_num(np.clip(np.stack([mean - low, high - mean]), 0, None))



def dt_by_target_figure(cells: pd.DataFrame, budget: int, path: Path) -> Path:
    """Grouped bars: D_T (MiB) per target by source at ``budget``, best/worst-source averages."""
    at = cells[(cells["budget"] == budget) & cross_lingual(cells) & cells["d_t_mib"].notna()]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * at["target"].nunique() + 2), 3.6))
    targets = sorted(at["target"].unique())
    sources = sorted(at["init"].unique())
    width = 0.8 / max(1, len(sources))
    for i, source in enumerate(sources):
        mine = at[at["init"] == source].set_index("target")
        xs = [targets.index(t) + (i - (len(sources) - 1) / 2) * width for t in mine.index]
        bars = ax.bar(xs, mine["d_t_mib"], width, yerr=_errors(mine, "d_t_mib"), label=source,
                      capsize=2)
        for bar, bound in zip(bars, mine["bound"], strict=True):
            if bound != EXACT:
                bar.set_hatch("//")
    if len(at):
        per_target = at.groupby("target")["d_t_mib"]
        for value, name, colour in ((per_target.max().mean(), "best source (mean)", "green"),
                                    (per_target.min().mean(), "worst source (mean)", "red")):
            ax.axhline(value, linestyle="--", color=colour, linewidth=1, label=name)
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_xticks(range(len(targets)), targets)
    ax.set_xlabel("target")
    ax.set_ylabel(f"D_T at {format_budget(budget)} (MiB)")
    ax.set_title("data transfer by target and source (hatched: bound; bars: 95% t interval)")
    _legend(ax)  # no finetune finished: nothing to label
    fig.tight_layout()
    return _save(fig, path)


def dt_by_source_figure(cells: pd.DataFrame, path: Path) -> Path:
    """Box plot of D_T (MiB) per source over the given cells."""
    ft = cells[cross_lingual(cells) & cells["d_t_mib"].notna()]
    sources = sorted(ft["init"].unique())
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(sources) + 2), 3.6))
    data = [ft.loc[ft["init"] == s, "d_t_mib"].to_numpy() for s in sources]
    if sources:
        ax.boxplot(data, tick_labels=sources)
        marks = {EXACT: "o", LOWER: "^", UPPER: "v", "mixed": "D"}
        for i, source in enumerate(sources, start=1):
            mine = ft[ft["init"] == source]
            for bound, group in mine.groupby("bound"):
                ax.scatter(np.full(len(group), i), group["d_t_mib"], s=8 if bound == EXACT else 20,
                           marker=marks.get(bound, "o"), color=f"C{i % 10}", alpha=0.6)
    ax.set_xlabel("source")
    ax.set_ylabel("D_T (MiB)")
    ax.set_title("D_T distribution per source (▲ lower bound, ▼ upper bound)")
    fig.tight_layout()
    return _save(fig, path)


def powerlaw_figure(points: pd.DataFrame, fit: pd.DataFrame, path: Path) -> Path:
    """Log-log D_T against D_F (bytes) of ``points`` (init, target, budget, d_t) with the fitted
    lines of ``fit`` (source, target, k, alpha; target "all" = pooled per source)."""
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    sources = sorted(set(points["init"]) | set(fit["source"]))
    colours = {s: f"C{i % 10}" for i, s in enumerate(sources)}
    for source, group in points.groupby("init", sort=True):
        ax.scatter(group["budget"], group["d_t"], color=colours[source], s=14, alpha=0.7,
                   label=f"{source}→any target")
    for r in fit.itertuples():
        mine = points[(points["init"] == r.source)
                      & ((points["target"] == r.target) | (r.target == "all"))]
        xs = np.geomspace(mine["budget"].min(), mine["budget"].max(), 20)
        pooled = r.target == "all"
        ax.plot(xs, r.k * xs ** r.alpha, color=colours[r.source], linewidth=1.8 if pooled else 0.8,
                linestyle="-" if pooled else ":",
                label=f"{r.source} (all): α={r.alpha:.2f}" if pooled else None)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("finetuning data D_F (bytes)")
    ax.set_ylabel("data transferred D_T (bytes)")
    ax.set_title("D_T = k·(D_F)^α (exact cells, D_T > 0)")
    _legend(ax)
    fig.tight_layout()
    return _save(fig, path)


def write_figures(cells: pd.DataFrame, corr_cells: pd.DataFrame, budget: int,
                  out_dir: Path) -> dict[str, Path]:
    """All three figures into ``out_dir``; returns caption -> path."""
    box_cells = corr_cells if len(corr_cells) else cells
    return {
        "Perplexity against finetuning budget": perplexity_figure(
            cells, out_dir / "perplexity_vs_budget.png"),
        f"D_T per target by source at {format_budget(budget)}": dt_by_target_figure(
            cells, budget, out_dir / "dt_by_target.png"),
        "D_T distribution per source": dt_by_source_figure(box_cells,
                                                           out_dir / "dt_by_source.png"),
    }
