"""Figures of the SSL study: paired differences to the control with their intervals, never bare spreads.

Each function takes what :mod:`lipkit.study_summary` computes (summary tables, per-seed paired
differences) and returns a matplotlib ``Figure``; nothing is written unless the caller saves it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

_UNITS = {"mIoU": "points of mIoU", "L/R confusion": "points of L/R confusion (lower is better)",
          "L/R coverage": "points of L/R coverage", "joint error": "joint error (lower is better)"}


def difference_forest(tables: Mapping[str, pd.DataFrame], seeds: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
                      title: str = "") -> Figure:
    """One panel per metric: each arm's paired difference to its control (dot), its Holm-level t interval over seeds
    (thick bar), the bootstrap interval over val images where computed (thin bar below) and each seed's difference
    (grey dots). ``tables``: metric -> ``summary_table``; ``seeds``: metric -> arm -> per-seed differences. A key may
    qualify its metric in brackets, ``"mIoU (PASCAL labels)"``, to set two studies side by side."""
    if not tables:
        raise ValueError("difference_forest needs at least one summary table")
    arms = list(dict.fromkeys(a for t in tables.values() for a in t.index))
    fig = Figure(figsize=(4.2 * len(tables), 0.45 * len(arms) + 1.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(tables), sharey=True))
    for ax, (metric, table) in zip(axes, tables.items()):
        for y, arm in enumerate(arms):
            if arm not in table.index:
                continue
            row = table.loc[arm]
            if not math.isnan(row.get("lower", math.nan)):
                ax.plot([row["lower"], row["upper"]], [y, y], color="C0", linewidth=3, solid_capstyle="butt")
            if not math.isnan(row.get("images lower", math.nan)):
                ax.plot([row["images lower"], row["images upper"]], [y + 0.22] * 2, color="C1", linewidth=1.2)
            ax.plot(row["mean diff"], y, "o", color="C0", zorder=3)
            for d in (seeds or {}).get(metric, {}).get(arm, []):
                ax.plot(d, y - 0.2, ".", color="0.55", markersize=4)
        ax.axvline(0, color="0.2", linewidth=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(5))  # few ticks: three-decimal values must not run into each other
        ax.set_xlabel(f"arm - control, {_UNITS.get(metric.split(' (')[0], metric)}", fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(arms)), arms, fontsize=8)
    axes[0].invert_yaxis()
    fig.supxlabel("blue: mean and Holm-level t interval over seeds; orange: bootstrap interval over val images; "
                  "grey: one dot per seed", fontsize=7)  # a figure label: the layout keeps it clear of the axes' labels
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def view_differences(frame: pd.DataFrame, metric: str, title: str = "") -> Figure:
    """Paired difference to the control by view: ``frame`` has columns arm, view, mean diff, lower, upper."""
    if frame.empty:
        raise ValueError("view_differences needs at least one row")
    views = list(dict.fromkeys(frame["view"]))
    arms = list(dict.fromkeys(frame["arm"]))
    fig = Figure(figsize=(1.6 * len(arms) + 2.4, 3.4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(views)
    for k, view in enumerate(views):
        part = frame[frame["view"] == view].set_index("arm").reindex(arms)
        x = np.arange(len(arms)) + (k - (len(views) - 1) / 2) * width
        ax.errorbar(x, part["mean diff"], yerr=[part["mean diff"] - part["lower"], part["upper"] - part["mean diff"]],
                    fmt="o", capsize=3, label=view, color=f"C{k}")
    ax.axhline(0, color="0.2", linewidth=0.8)
    ax.set_xticks(range(len(arms)), arms, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(f"arm - control, {_UNITS.get(metric, metric)}", fontsize=8)
    ax.legend(title="view", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title or f"{metric} by view: paired difference, 95% t interval over seeds", fontsize=9)
    return fig


def class_differences_plot(table: pd.DataFrame, arm: str, title: str = "") -> Figure:
    """Per class: ``arm`` - control IoU (points), mean over seeds with its t interval (``class_differences``)."""
    shown = table.dropna(subset=["mean diff"])
    if shown.empty:
        raise ValueError("class_differences_plot needs at least one class with a difference")
    fig = Figure(figsize=(7.5, 3.6), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(shown))
    ax.bar(x, shown["mean diff"], color=["C3" if lo > 0 or hi < 0 else "0.6" for lo, hi in zip(shown["lower"], shown["upper"])])
    ax.errorbar(x, shown["mean diff"], yerr=[shown["mean diff"] - shown["lower"], shown["upper"] - shown["mean diff"]],
                fmt="none", color="0.1", capsize=2, linewidth=0.8)
    ax.axhline(0, color="0.2", linewidth=0.8)
    ax.set_xticks(x, shown.index, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(f"IoU, {arm} - control (points)", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title or f"Per class: {arm} - control, same seed; 95% t interval each (red: excludes 0, uncorrected)",
                 fontsize=9)
    return fig


__all__ = ["class_differences_plot", "difference_forest", "view_differences"]
