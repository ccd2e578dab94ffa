"""The paper's figures, for "The paper's claims" (matplotlib, Agg backend):

- ``paper_dt_by_target.png`` (the paper's Figure 3): D_T (MiB) at the smallest finetune budget per
  target, one bar per source, bars: 95% t interval over seeds; the legend sits outside the axes.
- ``paper_perplexity.png`` (Figure 2): test perplexity against the budget (bytes, log axis), one
  panel per target: the scratch curve (black) and each source's finetunes (geometric mean over
  seeds, bars: 95% interval); one legend under the panels.
- ``paper_alpha.png``: the power law's α per (source, target) pair with its 95% interval, beside
  Hernandez et al.'s 0.18 (dashed) and 0.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from xfer.analysis.intervals import log_t_interval, t_interval  # noqa: E402
from xfer.analysis.powerlaw import HERNANDEZ_ALPHA  # noqa: E402
from xfer.analysis.transfer import SCRATCH, cross_lingual  # noqa: E402
from xfer.io import atomic_write  # noqa: E402
from xfer.units import format_budget  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def _colours(sources: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {s: cmap(i % 10) for i, s in enumerate(sources)}


def dt_by_target(rows: pd.DataFrame, path: Path) -> Path:
    """Figure 3: mean D_T (MiB) per target by source at the smallest finetune budget."""
    ft = rows[cross_lingual(rows)]
    ft = ft[(ft["budget"] == ft["budget"].min()) & np.isfinite(ft["d_t_mib"].astype(float))]
    targets, sources = sorted(ft["target"].unique()), sorted(ft["init"].unique())
    colours, width = _colours(sources), 0.8 / max(1, len(sources))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(targets) + 2), 3.6))
    for i, source in enumerate(sources):
        xs, means, errs = [], [], [[], []]
        for j, target in enumerate(targets):
            values = ft[(ft["init"] == source) & (ft["target"] == target)]["d_t_mib"]
            if values.empty:
                continue
            mean = float(values.mean())
            low, high = t_interval(values.to_numpy(float))
            xs.append(j + (i - (len(sources) - 1) / 2) * width)
            means.append(mean)
            errs[0].append(mean - low if math.isfinite(low) else 0.0)
            errs[1].append(high - mean if math.isfinite(high) else 0.0)
        ax.bar(xs, means, width, yerr=errs, capsize=2, color=colours[source], label=source)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(targets)), targets)
    ax.set_xlabel("target")
    ax.set_ylabel("D_T (MiB)")
    budget = int(ft["budget"].min()) if len(ft) else 0
    ax.set_title(f"D_T per target by source, finetune budget {budget:,} bytes (95% t intervals)",
                 fontsize=9)
    ax.legend(title="source", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return _save(fig, path)


def _curve(group: pd.DataFrame) -> tuple[list[int], list[float], list[list[float]]]:
    """Budgets, geometric-mean perplexities and their interval half-widths (low, high)."""
    budgets, means, errs = [], [], [[], []]
    for budget, g in group.groupby("budget", sort=True):
        values = g["perplexity"].to_numpy(float)
        values = values[np.isfinite(values) & (values > 0)]  # rows the analysis skipped
        if len(values) == 0:
            continue
        mean = float(np.exp(np.log(values).mean()))
        low, high = log_t_interval(values)
        budgets.append(int(budget))
        means.append(mean)
        errs[0].append(mean - low if math.isfinite(low) else 0.0)
        errs[1].append(high - mean if math.isfinite(high) else 0.0)
    return budgets, means, errs


def perplexity_by_budget(rows: pd.DataFrame, path: Path) -> Path:
    """Figure 2: test perplexity against budget per target, scratch and each source."""
    use = rows[(rows["init"] != rows["target"]) & (rows["kind"].astype(str) != "pretrain")] \
        if "kind" in rows.columns else rows[rows["init"] != rows["target"]]
    targets = sorted(use["target"].unique())
    sources = sorted(set(use["init"]) - {SCRATCH})
    colours = {**_colours(sources), SCRATCH: "black"}
    cols = min(5, max(1, len(targets)))
    rows_n = math.ceil(len(targets) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(2.6 * cols, 2.4 * rows_n + 0.6),
                             squeeze=False)
    for ax, target in zip(axes.flat, targets, strict=False):
        mine = use[use["target"] == target]
        for init in [SCRATCH, *sources]:
            group = mine[mine["init"] == init]
            if group.empty:
                continue
            b, m, e = _curve(group)
            ax.errorbar(b, m, yerr=e, marker="o", markersize=3, capsize=2, color=colours[init],
                        linewidth=1.6 if init == SCRATCH else 1.0, label=init)
        ax.set_xscale("log")
        ticks = sorted(mine["budget"].unique())
        ax.set_xticks(ticks, [format_budget(int(b)) for b in ticks], rotation=45, fontsize=6)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_title(target, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(targets):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("budget (bytes)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("test perplexity", fontsize=8)
    handles = [plt.Line2D([], [], color=colours[i], marker="o", label=i)
               for i in [SCRATCH, *sources]]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
               bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _save(fig, path)


def alpha_by_pair(fit: pd.DataFrame, path: Path) -> Path | None:
    """α per pair with its 95% interval (horizontal bars: pair labels never overlap)."""
    pairs = fit[fit["fixed_effects"] == "none"] if len(fit) else fit
    if pairs.empty:
        return None
    pairs = pairs.sort_values(["source", "target"])
    y = np.arange(len(pairs))
    alpha = pairs["alpha"].to_numpy(float)
    low = np.nan_to_num(alpha - pairs["alpha_ci_low"].to_numpy(float))
    high = np.nan_to_num(pairs["alpha_ci_high"].to_numpy(float) - alpha)
    fig, ax = plt.subplots(figsize=(5.5, 0.25 * len(pairs) + 1.2))
    ax.errorbar(alpha, y, xerr=[low, high], fmt="o", markersize=3, capsize=2, color="tab:blue")
    ax.axvline(HERNANDEZ_ALPHA, color="tab:red", linestyle="--", linewidth=1)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.text(HERNANDEZ_ALPHA, len(pairs) - 0.3, " Hernandez et al. 0.18", color="tab:red",
            fontsize=7, va="bottom")
    ax.set_yticks(y, [f"{s}→{t}" for s, t in zip(pairs["source"], pairs["target"], strict=True)],
                  fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("α in D_T = k·D_F^α (95% t interval over seeds)")
    return _save(fig, path)


def paper_figures(rows: pd.DataFrame, fit: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """Write the three figures into ``out_dir``; title -> path of each one written."""
    out_dir = Path(out_dir)
    out = {"D_T per target by source (the paper's Figure 3)":
           dt_by_target(rows, out_dir / "paper_dt_by_target.png"),
           "Perplexity against budget per target (the paper's Figure 2)":
           perplexity_by_budget(rows, out_dir / "paper_perplexity.png")}
    alpha = alpha_by_pair(fit, out_dir / "paper_alpha.png")
    if alpha is not None:
        out["α per pair beside Hernandez et al.'s 0.18"] = alpha
    return out
