"""Figures for human parsing: colourised labels, overlays, pose, and dataset/result plots.

Every plot function returns a ``matplotlib.figure.Figure`` built without pyplot (so a notebook
shows it exactly once, when it is the cell's value, and nothing leaks between calls) and never
writes a file: ``save_figure(fig, path)`` does that. Per-class plots take plain arrays, Series or
DataFrames so the same function draws image counts in notebook 01 and per-class IoU (several
methods side by side) in notebook 05.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from lipkit.labels import LIP, LIP_POSE_FLIP_PAIRS, LIP_POSE_JOINTS, LIP_POSE_LIMBS, LabelSet
from lipkit.stats import META_COLUMNS

IGNORE_COLOR = (255, 255, 255)  # ignore (255) and ids outside the label set are drawn white
_LEFT_JOINTS = {b for _, b in LIP_POSE_FLIP_PAIRS}  # 5, 4, 3, 15, 14, 13 are the L_ joints
_RIGHT_JOINTS = {a for a, _ in LIP_POSE_FLIP_PAIRS}
POSE_COLORS = {"left": "#1f77b4", "right": "#d62728", "centre": "#2ca02c"}


# ----------------------------------------------------------------------------- images
def color_lut(label_set: LabelSet = LIP) -> np.ndarray:
    """A (256, 3) uint8 table: class id -> palette colour, every other byte -> IGNORE_COLOR."""
    lut = np.tile(np.asarray(IGNORE_COLOR, dtype=np.uint8), (256, 1))
    lut[: label_set.num_classes] = label_set.palette_array
    return lut


def colorize(label: np.ndarray, label_set: LabelSet = LIP) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 RGB in the label set's palette (255 -> white)."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"colorize expects a (H, W) label map, got shape {label.shape}")
    return color_lut(label_set)[label.astype(np.uint8)]


def overlay(image: np.ndarray, label: np.ndarray, label_set: LabelSet = LIP, alpha: float = 0.6,
            skip_background: bool = True) -> np.ndarray:
    """Blend the colourised label over an RGB (or grey) image; background pixels stay as they are."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[:2] != np.shape(label):
        raise ValueError(f"image {image.shape[:2]} and label {np.shape(label)} sizes differ")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    colors = colorize(label, label_set).astype(np.float32)
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colors
    if skip_background:
        keep = np.asarray(label) == 0
        blended[keep] = image[keep]
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def draw_pose(ax: Axes, pose: np.ndarray, limbs: Sequence[tuple[int, int]] = LIP_POSE_LIMBS,
              size: float = 18.0, linewidth: float = 1.5, labels: bool = False) -> None:
    """Draw the 16 LIP joints (x, y[, v]; NaN = unannotated) and their limbs on ``ax``.

    The person's left joints are blue, right joints red, spine/head green; only limbs whose
    two ends are annotated are drawn.
    """
    pose = np.asarray(pose, dtype=np.float32)
    xy = pose[:, :2]
    ok = ~np.isnan(xy).any(axis=1)

    def colour(j: int) -> str:
        return POSE_COLORS["left" if j in _LEFT_JOINTS else "right" if j in _RIGHT_JOINTS else "centre"]

    for a, b in limbs:
        if ok[a] and ok[b]:
            side = b if (b in _LEFT_JOINTS or b in _RIGHT_JOINTS) else a
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], color=colour(side), linewidth=linewidth, alpha=0.9)
    idx = np.flatnonzero(ok)
    ax.scatter(xy[idx, 0], xy[idx, 1], s=size, c=[colour(j) for j in idx], edgecolors="white", linewidths=0.6, zorder=3)
    if labels:
        for j in idx:
            ax.annotate(LIP_POSE_JOINTS[j], xy[j], fontsize=6, color="white", xytext=(2, 2), textcoords="offset points")


def _image_axis(ax: Axes, image: np.ndarray, title: str | None = None) -> None:
    ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def example_grid(items: Sequence[Mapping[str, Any]], label_set: LabelSet = LIP, ncols: int = 4,
                 rows: Sequence[str] = ("image", "overlay"), alpha: float = 0.6, show_pose: bool = False,
                 panel_size: float = 2.2) -> Figure:
    """A grid of samples (dicts with ``image``, ``label``, optional ``id``/``pose``).

    Each sample is a column block showing ``rows`` from {"image", "label", "overlay"};
    ``ncols`` samples per row of blocks. Pose joints go on the first panel when asked.
    """
    if not items:
        raise ValueError("example_grid needs at least one sample")
    for r in rows:
        if r not in ("image", "label", "overlay"):
            raise ValueError(f"unknown row {r!r}; use image, label or overlay")
    ncols = min(ncols, len(items))
    nblocks = -(-len(items) // ncols)
    fig = Figure(figsize=(panel_size * ncols, panel_size * 1.25 * len(rows) * nblocks), layout="constrained")
    axes = fig.subplots(nblocks * len(rows), ncols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for n, item in enumerate(items):
        block, col = divmod(n, ncols)
        for r, kind in enumerate(rows):
            ax = axes[block * len(rows) + r, col]
            ax.axis("on")
            if kind == "image":
                img = item["image"]
            elif kind == "label":
                img = colorize(item["label"], label_set)
            else:
                img = overlay(item["image"], item["label"], label_set, alpha)
            _image_axis(ax, img, str(item.get("id", n)) if r == 0 else None)
            if show_pose and r == 0 and item.get("pose") is not None:
                draw_pose(ax, item["pose"], size=8, linewidth=1.0)
    return fig


def palette_legend(label_set: LabelSet = LIP, ncols: int = 4) -> Figure:
    """The label set's classes as colour swatches with id and name."""
    k = label_set.num_classes
    nrows = -(-k // ncols)
    fig = Figure(figsize=(2.6 * ncols, 0.42 * nrows + 0.5), layout="constrained")
    ax = fig.subplots()
    for i, (name, rgb) in enumerate(zip(label_set.classes, label_set.palette_array)):
        r, c = i % nrows, i // nrows
        ax.add_patch(Rectangle((c * 2.6, nrows - r - 0.9), 0.5, 0.8, facecolor=rgb / 255.0, edgecolor="0.5", linewidth=0.5))
        ax.text(c * 2.6 + 0.6, nrows - r - 0.6, f"{i:2d} {name}", va="center", fontsize=9)
    ax.set_xlim(0, 2.6 * ncols)
    ax.set_ylim(0, nrows)
    ax.axis("off")
    ax.set_title(f"{label_set.name.upper()} label set: {k} classes (palette of the authors' visualisations)", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- per-class bars
def class_bars(values: Any, label_set: LabelSet = LIP, ylabel: str = "", title: str = "", log: bool = False,
               skip_background: bool = False, sort: bool = False, colors: str = "palette",
               annotate: bool = False, integer: bool = False, ax: Axes | None = None) -> Figure:
    """Bars per class of one series (array/Series of length K) or several (DataFrame, one column each).

    One series is drawn in the classes' palette colours (``colors="palette"``); several series
    are grouped bars with a legend (e.g. per-class IoU of baseline vs SSL). ``sort`` orders
    classes by the first series, descending; ``integer`` keeps the value axis on whole numbers (counts).
    """
    frame = values.to_frame() if isinstance(values, pd.Series) else values
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame({ylabel or "value": np.asarray(values)})
    if len(frame) != label_set.num_classes:
        raise ValueError(f"{len(frame)} values for {label_set.num_classes} classes of {label_set.name!r}")
    frame = frame.reset_index(drop=True)
    ids = np.arange(label_set.num_classes)
    if skip_background:
        ids = ids[1:]
    if sort:
        ids = ids[np.argsort(-frame.iloc[ids, 0].to_numpy(dtype=float), kind="stable")]
    fig = ax.figure if ax is not None else Figure(figsize=(max(6.0, 0.42 * len(ids) + 1.5), 3.6), layout="constrained")
    ax = ax if ax is not None else fig.subplots()
    x = np.arange(len(ids))
    nser = frame.shape[1]
    width = 0.8 / nser
    for s, column in enumerate(frame.columns):
        heights = frame[column].to_numpy(dtype=float)[ids]
        pos = x + (s - (nser - 1) / 2) * width
        if nser == 1 and colors == "palette":
            bars = ax.bar(pos, heights, width, color=label_set.palette_array[ids] / 255.0, edgecolor="0.3", linewidth=0.5)
        else:
            bars = ax.bar(pos, heights, width, label=str(column), edgecolor="0.3", linewidth=0.5)
        if annotate:
            ax.bar_label(bars, fmt="%.3g", fontsize=6, padding=1)
    ax.set_xticks(x, [label_set.classes[i] for i in ids], rotation=60, ha="right", fontsize=8)
    if log:
        ax.set_yscale("log")
    elif integer:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    if nser > 1 or colors != "palette":
        ax.legend(fontsize=8)
    return fig


def images_per_class(stats: Any, sort: bool = True) -> Figure:
    """Number of images containing each class (the LIP paper's label-distribution figure)."""
    table = stats.class_table()
    return class_bars(table["images"], stats.label_set, ylabel="images", sort=sort, skip_background=True, integer=True,
                      title=f"Images per class ({stats.num_images} images, split {stats.split!r})")


def pixel_share(stats: Any, sort: bool = True) -> Figure:
    """Share of all labelled pixels per class, on a log scale (background included)."""
    table = stats.class_table()
    share = table["pixel_share"].replace(0, np.nan)
    return class_bars(share, stats.label_set, ylabel="share of pixels (log)", log=True, sort=sort,
                      title="Pixel share per class: a long tail spanning orders of magnitude")


def region_sizes(stats: Any) -> Figure:
    """Box plot of the share of the image each class covers where present (log scale)."""
    frame = stats.region_sizes()
    ls = stats.label_set
    ids = [i for i in range(1, ls.num_classes)]
    data = [frame.loc[frame["class_id"] == i, "area_share"].to_numpy() for i in ids]
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax = fig.subplots()
    keep = [j for j, d in enumerate(data) if len(d)]
    bp = ax.boxplot([data[j] for j in keep], positions=keep, widths=0.6, patch_artist=True, showfliers=False)
    for patch, j in zip(bp["boxes"], keep):
        patch.set_facecolor(ls.palette_array[ids[j]] / 255.0)
    ax.set_xticks(range(len(ids)), [ls.classes[i] for i in ids], rotation=60, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("share of image area (log)")
    ax.set_title("Region size per class where present", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return fig


def heatmap(frame: pd.DataFrame, title: str = "", fmt: str = ".2f", cmap: str = "viridis", annot: bool = True,
            vmin: float | None = None, vmax: float | None = None, cbar_label: str = "") -> Figure:
    """A labelled heatmap of any square or rectangular table (co-occurrence, confusion)."""
    import seaborn as sns

    fig = Figure(figsize=(0.5 * frame.shape[1] + 3, 0.42 * frame.shape[0] + 1.5), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(frame, ax=ax, annot=annot, fmt=fmt, cmap=cmap, vmin=vmin, vmax=vmax, annot_kws={"fontsize": 8},
                cbar_kws={"label": cbar_label}, square=frame.shape[0] == frame.shape[1])
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    return fig


def cooccurrence(stats: Any, mode: str = "conditional", skip_background: bool = True) -> Figure:
    """Co-occurrence heatmap; ``conditional`` row i, column j = P(j in image | i in image), in percent."""
    frame = stats.cooccurrence(mode)
    if skip_background:
        frame = frame.iloc[1:, 1:]
    title = {"conditional": "P(column class present | row class present), %",
             "jaccard": "Jaccard overlap of the images containing each pair, %",
             "count": "Images containing both classes"}[mode]
    if mode != "count":
        frame = 100 * frame
    return heatmap(frame, title=title, fmt=".0f", vmin=0, vmax=None if mode == "count" else 100)


def size_distribution(stats: Any) -> Figure:
    """Image width vs height scatter and the distribution of classes present per image."""
    sizes = stats.image_sizes()
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.scatter(sizes["width"], sizes["height"], s=6, alpha=0.4)
    ax1.set_xlabel("width (px)")
    ax1.set_ylabel("height (px)")
    ax1.set_title("Image sizes (LIP images are small and varied)", fontsize=10)
    counts = np.bincount(sizes["classes_present"].to_numpy(dtype=int), minlength=1)
    ax2.bar(np.arange(len(counts)), counts, color="0.4")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_xlabel("person classes present in the image")
    ax2.set_ylabel("images")
    ax2.set_title("Parts visible per image", fontsize=10)
    return fig


def count_bars(counts: Mapping[str, pd.Series], title: str = "") -> Figure:
    """One small bar chart per named Series of counts (e.g. views, truncation, occlusion)."""
    counts = {k: v for k, v in counts.items() if len(v)}
    fig = Figure(figsize=(3.2 * max(len(counts), 1), 3.0), layout="constrained")
    axes = fig.subplots(1, max(len(counts), 1), squeeze=False)[0]
    if not counts:
        axes[0].text(0.5, 0.5, "no metadata", ha="center", va="center")
        axes[0].axis("off")
    for ax, (name, series) in zip(axes, counts.items()):
        ax.bar([str(i) for i in series.index], series.to_numpy(), color="0.4")
        ax.set_title(name, fontsize=10)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("images")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def view_distribution(stats: Any) -> Figure:
    """SynthLIP view / truncation (framing) / occluded-fraction counts (an empty panel without metadata)."""
    return count_bars({c.replace("_", " "): stats.meta_counts(c) for c in META_COLUMNS},
                      title="Views, framing and occlusion (SynthLIP metadata)")


def pose_visibility(stats: Any) -> Figure:
    """Share of images where each joint is annotated, and joints annotated per image."""
    vis = stats.pose_visibility()
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    if len(vis) == 0:
        for ax in (ax1, ax2):
            ax.text(0.5, 0.5, "no pose annotations", ha="center", va="center")
            ax.axis("off")
        return fig
    col = [POSE_COLORS["left" if j in _LEFT_JOINTS else "right" if j in _RIGHT_JOINTS else "centre"]
           for j in range(len(vis))]
    ax1.bar(range(len(vis)), vis["annotated"].to_numpy(), color=col, label="annotated")
    ax1.bar(range(len(vis)), vis["v_is_1"].to_numpy(), color="none", edgecolor="0.2", hatch="///",
            linewidth=0.5, label="annotated with v = 1")
    ax1.legend(fontsize=7, loc="lower right")
    ax1.set_xticks(range(len(vis)), list(vis.index), rotation=60, ha="right", fontsize=8)
    ax1.set_ylim(0, 1.02)
    ax1.set_ylabel("share of images annotated")
    ax1.set_title("Joint visibility (missing = outside the image or hidden)", fontsize=10)
    per = stats.joints_per_image()
    ax2.bar(per.index, per.to_numpy(), color="0.4")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_xlabel("joints annotated")
    ax2.set_ylabel("images")
    return fig


# ----------------------------------------------------------------------------- curves
def learning_curves(frame: pd.DataFrame, x: str, y: Sequence[str] | str, hue: str | None = None,
                    title: str = "", logy: bool = False) -> Figure:
    """One panel per metric in ``y`` against ``x``, one line per value of ``hue`` (e.g. run)."""
    ys = [y] if isinstance(y, str) else list(y)
    fig = Figure(figsize=(3.6 * len(ys), 3.0), layout="constrained")
    axes = fig.subplots(1, len(ys), squeeze=False)[0]
    groups = frame.groupby(hue, sort=True) if hue else [("", frame)]
    for name, part in groups:
        for ax, col in zip(axes, ys):
            ax.plot(part[x], part[col], label=str(name) if hue else None)
    for ax, col in zip(axes, ys):
        ax.set_xlabel(x)
        ax.set_ylabel(col)
        ax.grid(alpha=0.3)
        if logy:
            ax.set_yscale("log")
        if hue:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----------------------------------------------------------------------------- files
def compact(fig: Figure, dpi: int = 80, max_colors: int = 256) -> Any:
    """The figure as a palette PNG ``PIL.Image`` (shown inline by Jupyter): photo grids stored in
    a notebook shrink about four-fold compared with the figure itself."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    with Image.open(buffer) as im:
        return im.convert("RGB").quantize(colors=int(max_colors))


def save_figure(fig: Figure, path: str | Path, dpi: int = 100, max_colors: int | None = None) -> Path:
    """Write ``fig`` to ``path`` (format by suffix), creating parent folders; returns the path.

    ``max_colors`` (PNG only) stores a palette image with at most that many colours: photo
    panels shrink about four-fold, plots with flat colours are unchanged to the eye.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if max_colors and path.suffix.lower() == ".png":
        compact(fig, dpi=dpi, max_colors=max_colors).save(path, optimize=True)
    else:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def saver(figures_dir: str | Path | None, dpi: int = 100, max_colors: int | None = 256) -> Callable[..., Figure]:
    """A notebook helper: ``save(fig, "name.png")`` writes into ``figures_dir`` and returns ``fig``.

    With an empty ``figures_dir`` it writes nothing (interactive and nbval runs keep the repo
    clean). PNGs are palette-quantised (``max_colors``) to keep committed figures small;
    ``save(fig, name, dpi=...)`` overrides the resolution for one figure.
    """

    def save(fig: Figure, name: str, dpi: int = dpi) -> Figure:
        if figures_dir:
            save_figure(fig, Path(figures_dir) / name, dpi=dpi, max_colors=max_colors)
        return fig

    return save
