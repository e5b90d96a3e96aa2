"""Result figures of notebooks 02-05: curves, tables, per-class IoU, L/R confusion, attention, joints, ablations.

Like :mod:`lipkit.viz`, every plot function returns a ``matplotlib.figure.Figure`` built without
pyplot and writes nothing (``lipkit.viz.save_figure`` does). Inputs are plain arrays and
DataFrames (from :mod:`lipkit.experiments`), so the figures are testable without training.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from lipkit.labels import LIP, LabelSet
from lipkit.paper_results import PAPER_ATTENTION_SSL_IOU, PAPER_RESULTS  # re-exported: notebooks read vr.PAPER_*
from lipkit.ssl import joint_groups_for, parsing_to_joints
from lipkit.viz import class_bars, colorize, learning_curves, overlay

_COLUMNS = {"pixel_accuracy": "pixel acc", "mean_accuracy": "mean acc", "mean_iou": "mIoU",
            "frequency_weighted_iou": "fwIoU", "lr_confusion": "L/R confusion", "joint_error": "joint error"}


# ------------------------------------------------------------------------------ tables
def results_table(frame: pd.DataFrame, by: str = "method",
                  metrics: Sequence[str] = ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"),
                  decimals: int = 2) -> pd.DataFrame:
    """The paper's table layout: one row per ``by`` value, one column per metric (%).

    With several rows per method (seeds) a cell reads ``mean ± std (n)``; with one, the number.
    """
    missing = [m for m in (by, *metrics) if m not in frame]
    if missing:
        raise ValueError(f"results_table: columns {missing} missing (have {list(frame.columns)})")
    order = list(dict.fromkeys(frame[by]))
    rows = {}
    for name in order:
        part = frame[frame[by] == name]
        cells = {}
        for m in metrics:
            v = part[m].to_numpy(dtype=float)
            if len(v) == 1:
                cells[_COLUMNS.get(m, m)] = f"{v[0]:.{decimals}f}"
            else:
                cells[_COLUMNS.get(m, m)] = f"{v.mean():.{decimals}f} ± {v.std(ddof=1):.{decimals}f} ({len(v)})"
        rows[name] = cells
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = by
    return out


# ------------------------------------------------------------------------------ curves
def training_curves(logs: Mapping[str, pd.DataFrame], y: Sequence[str] = ("loss",), x: str = "step",
                    title: str = "", logy: bool = False, kind: str = "train") -> Figure:
    """Log lines of one ``kind`` ("train" or "val") of several runs, one panel per metric in ``y``.

    Runs without such lines are left out (e.g. a run validated only at its end has one val line).
    """
    parts = [(log[log["kind"] == kind] if "kind" in log else log).assign(run=str(name)) for name, log in logs.items()]
    parts = [p for p in parts if len(p)]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[x, *y, "run"])
    fig = learning_curves(frame, x, list(y), hue="run", title=title, logy=logy)
    for ax, col in zip(fig.axes, y):
        ax.set_xlabel(AXIS_LABELS.get(x, x))
        ax.set_ylabel(AXIS_LABELS.get(col, col))
    return fig


# Words and units of the training log's columns on a figure's axes.
AXIS_LABELS: dict[str, str] = {
    "step": "training step (one optimiser update)",
    "epoch": "epoch (passes over the training images)",
    "images": "training images seen",
    "elapsed_s": "training time (s)",
    "loss": "training loss (nats per pixel, summed over outputs)",
    "ce": "cross-entropy (nats per pixel)",
    "joint_error": "joint error L_joint (sigma 1 heatmaps)",
    "mean_iou": "mIoU (fraction of 1)",
    "pixel_accuracy": "pixel accuracy (fraction of 1)",
    "left_right_confusion": "L/R confusion (fraction of 1)",
    "lr": "learning rate",
}


# ------------------------------------------------------------------------------ per class
def per_class_iou_bars(iou: Mapping[str, pd.Series] | pd.DataFrame, label_set: LabelSet = LIP,
                       paper: Mapping[str, float] | None = None, title: str = "Per-class IoU (%)") -> Figure:
    """Grouped bars of per-class IoU of several methods; ``paper`` adds the published values as a series."""
    frame = pd.DataFrame(dict(iou)) if not isinstance(iou, pd.DataFrame) else iou.copy()
    frame = frame.reindex(list(label_set.classes))
    if paper is not None:
        frame["paper (Attention+SSL)"] = [paper.get(c, np.nan) for c in label_set.classes]
    fig = class_bars(frame, label_set, ylabel="IoU (%)", title=title)
    return fig


def per_class_difference(diff: pd.Series | pd.DataFrame, label_set: LabelSet = LIP, spread: pd.Series | None = None,
                         title: str = "Per-class IoU difference (points)") -> Figure:
    """Bars of per-class differences (e.g. SSL - control), green up / red down, optional error bars."""
    values = diff.mean(axis=1) if isinstance(diff, pd.DataFrame) else diff
    values = values.reindex(list(label_set.classes)).to_numpy(dtype=float)
    if spread is None and isinstance(diff, pd.DataFrame) and diff.shape[1] > 1:
        spread = diff.std(axis=1, ddof=1)
    err = None if spread is None else spread.reindex(list(label_set.classes)).to_numpy(dtype=float)
    fig = Figure(figsize=(max(6.0, 0.42 * label_set.num_classes + 1.5), 3.4), layout="constrained")
    ax = fig.subplots()
    x = np.arange(label_set.num_classes)
    colors = np.where(np.nan_to_num(values) >= 0, "#2ca02c", "#d62728")
    ax.bar(x, np.nan_to_num(values), color=colors, edgecolor="0.3", linewidth=0.5,
           yerr=None if err is None else np.nan_to_num(err), capsize=2)
    ax.axhline(0, color="0.2", linewidth=0.8)
    ax.set_xticks(x, list(label_set.classes), rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("difference (points)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return fig


def lr_confusion_matrices(matrices: Mapping[str, np.ndarray], label_set: LabelSet = LIP,
                          title: str = "Left/right confusion (rows: ground truth, share of the row)") -> Figure:
    """Row-normalised confusion among the mirror classes (and background), one panel per model."""
    ids = [0] + [i for pair in label_set.flip_pairs for i in pair]
    names = [label_set.classes[i] for i in ids]
    fig = Figure(figsize=(4.0 * len(matrices) + 0.8, 3.9), layout="constrained")
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    im = None
    for ax, (name, m) in zip(axes, matrices.items()):
        m = np.asarray(m, dtype=np.float64)
        if m.shape != (label_set.num_classes, label_set.num_classes):
            raise ValueError(f"{name}: matrix {m.shape}, expected ({label_set.num_classes}, {label_set.num_classes})")
        rows = m[np.ix_(ids, range(m.shape[1]))]
        sub = rows[:, ids] / np.maximum(rows.sum(1, keepdims=True), 1)
        im = ax.imshow(sub, vmin=0, vmax=1, cmap="magma")
        for (r, c), v in np.ndenumerate(sub):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v < 0.5 else "black")
        ax.set_xticks(range(len(ids)), names, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(ids)), names, fontsize=7)
        ax.set_title(str(name), fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=list(axes), shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return fig


def group_bars(frame: pd.DataFrame, metric: str = "mean_iou", title: str = "", ylabel: str | None = None) -> Figure:
    """Grouped bars: rows of ``frame`` are groups (e.g. views), columns are methods (values of ``metric``)."""
    fig = Figure(figsize=(1.4 * len(frame) + 3, 3.2), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(frame))
    n = frame.shape[1]
    w = 0.8 / max(n, 1)
    for k, col in enumerate(frame.columns):
        bars = ax.bar(x + (k - (n - 1) / 2) * w, frame[col].to_numpy(dtype=float), w, label=str(col), edgecolor="0.3", linewidth=0.5)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    ax.set_xticks(x, [str(i) for i in frame.index])
    ax.set_ylabel(ylabel or _COLUMNS.get(metric, metric))
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# ------------------------------------------------------------------------------ images
def rq1_curve(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = ("mIoU", "limbs IoU", "small parts IoU"),
              title: str = "RQ1 on SynthLIP: the same network and steps on more training images") -> Figure:
    """Each metric (in %) against the number of distinct training images (log axis), one line per metric."""
    if not rows:
        raise ValueError("rq1_curve needs at least one row (run `python -m lipkit search` for the rq1 variants)")
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    images = [r["train images"] for r in rows]
    for metric in metrics:
        ax.plot(images, [r[metric] for r in rows], marker="o", label=metric)
    ax.set_xscale("log")
    ax.set_xticks(images, [f"{n:,}" for n in images])
    ax.minorticks_off()
    ax.set_xlabel("distinct training images (same steps, so fewer images = more epochs)")
    ax.set_ylabel("IoU on val (%), mean of 2 val seeds")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _wrap_to_panel(title: str, panel_size: float) -> str:
    """``title`` broken into lines about as wide as a panel (9 pt text: about 11 characters an inch)."""
    return textwrap.fill(title, width=max(8, int(panel_size * 11)), break_long_words=False)


def prediction_grid(images: Sequence[np.ndarray], columns: Mapping[str, Sequence[np.ndarray]], label_set: LabelSet = LIP,
                    titles: Sequence[str] | None = None, panel_size: float = 1.7) -> Figure:
    """One row per image: the image, then each named column of label maps (e.g. GT, baseline, SSL)."""
    if not images:
        raise ValueError("prediction_grid needs at least one image")
    for name, maps in columns.items():
        if len(maps) != len(images):
            raise ValueError(f"column {name!r} has {len(maps)} label maps for {len(images)} images")
    ncol = 1 + len(columns)
    fig = Figure(figsize=(panel_size * ncol, panel_size * 1.1 * len(images)), layout="constrained")
    axes = fig.subplots(len(images), ncol, squeeze=False)
    for r, img in enumerate(images):
        panels = [("image", np.asarray(img))] + [(name, colorize(maps[r], label_set)) for name, maps in columns.items()]
        for c, (name, arr) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(arr, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(_wrap_to_panel(name, panel_size), fontsize=9)
        if titles is not None:
            axes[r, 0].set_ylabel(str(titles[r]), fontsize=7)
    return fig


def attention_maps(image: np.ndarray, attention: np.ndarray, scales: Sequence[float],
                   title: str = "Attention-to-Scale: per-pixel weight of each scale") -> Figure:
    """The image and one panel per scale of the (S, h, w) softmax attention weights (0..1)."""
    attention = np.asarray(attention, dtype=np.float32)
    if attention.ndim != 3 or attention.shape[0] != len(scales):
        raise ValueError(f"attention must be (S, h, w) with S = {len(scales)} scales, got {attention.shape}")
    fig = Figure(figsize=(2.3 * (len(scales) + 1) + 0.6, 2.8), layout="constrained")
    axes = fig.subplots(1, len(scales) + 1)
    axes[0].imshow(image)
    axes[0].set_title("image", fontsize=9)
    im = None
    for ax, s, a in zip(axes[1:], scales, attention):
        im = ax.imshow(a, vmin=0, vmax=1, cmap="viridis", interpolation="nearest")
        ax.set_title(f"scale {s:g}: mean {a.mean():.2f}", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=list(axes[1:]), shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return fig


def joints_on_parsing(image: np.ndarray, panels: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                      names: Sequence[str], label_set: LabelSet = LIP, heatmaps: Mapping[str, np.ndarray] | None = None,
                      title: str = "") -> Figure:
    """Joints derived from parsing maps drawn on them.

    ``panels``: name -> (label map (H, W), joints (J, 2) as (x, y) in that map's pixels, present (J,)).
    ``heatmaps``: name -> (J, h, w) heatmaps, drawn as their maximum over joints in a second row.
    """
    ncol = 1 + len(panels)
    nrow = 2 if heatmaps else 1
    fig = Figure(figsize=(2.4 * ncol, 2.6 * nrow + 0.4), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False)
    axes[0, 0].imshow(image)
    axes[0, 0].set_title("image", fontsize=9)
    cmap = [f"C{j % 10}" for j in range(len(names))]
    for c, (name, (label, joints, present)) in enumerate(panels.items(), start=1):
        ax = axes[0, c]
        ax.imshow(overlay(image, label, label_set, 0.75) if np.shape(image)[:2] == np.shape(label) else colorize(label, label_set))
        for j, ((x, y), ok) in enumerate(zip(np.asarray(joints), np.asarray(present))):
            if ok:
                ax.scatter([x], [y], s=36, c=cmap[j], edgecolors="white", linewidths=0.8, zorder=3)
                ax.annotate(names[j], (x, y), fontsize=5, color="white", xytext=(3, 3), textcoords="offset points")
        ax.set_title(name, fontsize=9)
    if heatmaps:
        axes[1, 0].axis("off")
        for c, name in enumerate(panels, start=1):
            ax = axes[1, c]
            if name in heatmaps:
                ax.imshow(np.asarray(heatmaps[name]).max(0), cmap="inferno", interpolation="nearest")
                ax.set_title(f"{name}: heatmaps (max over joints)", fontsize=7)
            else:
                ax.axis("off")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def joints_rgb(label: np.ndarray, label_set: LabelSet = LIP, groups: Any = None) -> np.ndarray:
    """The colourised label map with its SSL joints (region centres) burned in as white-ringed black squares."""
    label = np.asarray(label)
    rgb = colorize(label, label_set).copy()
    joints, present = parsing_to_joints(torch.from_numpy(label.astype(np.int64))[None], groups or joint_groups_for(label_set))
    h, w = label.shape
    r = max(1, min(h, w) // 40)
    for (x, y), ok in zip(joints[0].tolist(), present[0].tolist()):
        if ok:
            rgb[max(0, y - r - 1):y + r + 2, max(0, x - r - 1):x + r + 2] = 255
            rgb[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1] = 0
    return rgb


# ------------------------------------------------------------------------------ ablations
def ablation_plot(frame: pd.DataFrame, metric: str = "mean_iou", by: str = "setting", pair: str = "seed",
                  control: str = "control", title: str = "") -> Figure:
    """Left: ``metric`` per setting (one dot per seed, mean ± std bars). Right: paired difference to ``control``."""
    order = list(dict.fromkeys(frame[by]))
    label = _COLUMNS.get(metric, metric)
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    base = frame[frame[by] == control].set_index(pair)[metric] if control in order else None
    others = [o for o in order if o != control]
    for k, name in enumerate(order):
        part = frame[frame[by] == name]
        v = part[metric].to_numpy(dtype=float)
        ax1.scatter(np.full(len(v), k) + np.linspace(-0.12, 0.12, len(v)), v, s=14, color="0.4", zorder=3)
        ax1.errorbar(k + 0.25, v.mean(), yerr=v.std(ddof=1) if len(v) > 1 else 0, fmt="o", color="C0", capsize=3)
    ax1.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
    ax1.set_ylabel(label)
    ax1.set_title(f"{label} per setting (dots: seeds; blue: mean ± std)", fontsize=9)
    ax1.grid(axis="y", alpha=0.3)
    if base is not None and others:
        for k, name in enumerate(others):
            part = frame[frame[by] == name].set_index(pair)[metric]
            d = (part - base.reindex(part.index)).to_numpy(dtype=float)
            ax2.scatter(np.full(len(d), k) + np.linspace(-0.12, 0.12, len(d)), d, s=14, color="0.4", zorder=3)
            ax2.errorbar(k + 0.25, np.nanmean(d), yerr=np.nanstd(d, ddof=1) if len(d) > 1 else 0, fmt="o", color="C3", capsize=3)
        ax2.axhline(0, color="0.2", linewidth=0.8)
        ax2.set_xticks(range(len(others)), others, rotation=30, ha="right", fontsize=8)
        ax2.set_ylabel(f"{label} - {control} (same seed)")
        ax2.set_title("paired difference to the control (red: mean ± std)", fontsize=9)
        ax2.grid(axis="y", alpha=0.3)
    else:
        ax2.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


__all__ = [
    "PAPER_ATTENTION_SSL_IOU", "PAPER_RESULTS", "ablation_plot", "attention_maps", "group_bars", "joints_on_parsing", "joints_rgb",
    "lr_confusion_matrices", "per_class_difference", "per_class_iou_bars", "prediction_grid", "results_table", "rq1_curve",
    "training_curves",
]
