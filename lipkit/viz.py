"""Figures for human parsing: colourised labels, overlays, pose, and dataset/result plots.

Every plot function returns a ``matplotlib.figure.Figure`` built without pyplot (so a notebook
shows it exactly once, when it is the cell's value, and nothing leaks between calls) and never
writes a file: ``save_figure(fig, path)`` does that. Per-class plots take plain arrays, Series or
DataFrames so the same function draws image counts in notebook 01 and per-class IoU (several
methods side by side) in notebook 05. Dataset figures title themselves with the data's name
(``DatasetStats.name``: SynthLIP or LIP), split and image count, so a SynthLIP figure never reads
as a statement about LIP; overlays carry a legend of the classes they show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.patches import Patch, Rectangle
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


def classes_present(labels: Iterable[np.ndarray], label_set: LabelSet = LIP, skip_background: bool = True) -> list[int]:
    """Ids of ``label_set`` that occur in any of ``labels``, ascending (ignore and unknown ids left out)."""
    seen = np.zeros(256, dtype=bool)
    for label in labels:
        seen[np.unique(np.asarray(label).astype(np.uint8))] = True
    return [int(i) for i in np.flatnonzero(seen[: label_set.num_classes]) if not (skip_background and i == 0)]


def class_legend(fig: Figure, labels: Iterable[np.ndarray], label_set: LabelSet = LIP, skip_background: bool = True,
                 ncols: int = 6, fontsize: float = 8) -> Legend | None:
    """A legend under ``fig``: colour patch and name of each class present in ``labels`` (None if none is).

    ``skip_background`` leaves class 0 out, as overlays leave background pixels unpainted.
    """
    ids = classes_present(labels, label_set, skip_background)
    if not ids:
        return None
    handles = [Patch(facecolor=label_set.palette_array[i] / 255.0, edgecolor="0.4", linewidth=0.5,
                     label=label_set.classes[i]) for i in ids]
    return fig.legend(handles=handles, loc="outside lower center", ncols=min(ncols, len(ids)), fontsize=fontsize,
                      frameon=False, handlelength=1.2, columnspacing=1.0)


def example_grid(items: Sequence[Mapping[str, Any]], label_set: LabelSet = LIP, ncols: int = 4,
                 rows: Sequence[str] = ("image", "overlay"), alpha: float = 0.6, show_pose: bool = False,
                 panel_size: float = 2.2, title: str = "", legend: bool = True) -> Figure:
    """A grid of samples (dicts with ``image``, ``label``, optional ``id``/``pose``).

    Each sample is a column block showing ``rows`` from {"image", "label", "overlay"};
    ``ncols`` samples per row of blocks. Pose joints go on the first panel when asked. ``legend``
    adds the classes present in the labels shown (background too when a ``label`` row paints it).
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
    if legend and {"label", "overlay"} & set(rows):
        class_legend(fig, [it["label"] for it in items if it.get("label") is not None], label_set,
                     skip_background="label" not in rows)
    if title:
        fig.suptitle(title, fontsize=10)
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


def dataset_title(stats: Any, what: str) -> str:
    """A dataset figure's title, ``"<name> <split>, <n> images: <what>"``; the name comes from the data."""
    split = f" {stats.split}" if stats.split else ""
    return f"{stats.name}{split}, {stats.num_images} images: {what}"


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
                      title=dataset_title(stats, "images containing each class"))


def pixel_share(stats: Any, sort: bool = True) -> Figure:
    """Share of all labelled pixels per class, on a log scale (background included)."""
    table = stats.class_table()
    share = table["pixel_share"].replace(0, np.nan)
    return class_bars(share, stats.label_set, ylabel="share of pixels (log)", log=True, sort=sort,
                      title=dataset_title(stats, "share of the labelled pixels per class (log scale)"))


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
    ax.set_title(dataset_title(stats, "share of the image a class covers where present (box: quartiles, line: median)"), fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return fig


COMPARISON_PANELS = {"pixel share": "share of the labelled pixels", "image share": "share of images containing the class",
                     "median region": "median share of the image where present"}


def comparison_bars(frame: pd.DataFrame, label_set: LabelSet, title: str = "",
                    panels: Sequence[str] = tuple(COMPARISON_PANELS)) -> Figure:
    """Two datasets' per-class numbers as grouped bars on a log scale, one panel per property.

    ``frame`` has one row per class and columns (property, dataset), as ``lipkit.stats_ccp.compare``
    returns; ``ratio`` columns are left out and zeros (absent classes) leave no bar.
    """
    fig = Figure(figsize=(max(7.0, 0.55 * label_set.num_classes + 1.5), 2.6 * len(panels) + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(panels), 1, sharex=True))
    for ax, group in zip(axes, panels):
        values = frame[group].drop(columns="ratio", errors="ignore").astype(float).replace(0, np.nan)
        class_bars(values, label_set, ylabel=f"{group} (log)", log=True,
                   title=COMPARISON_PANELS.get(group, group), ax=ax)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    for ax in axes[1:]:  # one legend, in the top panel
        ax.get_legend().remove()
    axes[0].legend(loc="upper right", ncols=2, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def heatmap(frame: pd.DataFrame, title: str = "", fmt: str = ".2f", cmap: str = "viridis", annot: Any = True,
            vmin: float | None = None, vmax: float | None = None, cbar_label: str = "", annot_size: float = 8) -> Figure:
    """A labelled heatmap of any square or rectangular table (co-occurrence, confusion).

    ``annot`` is True (values in ``fmt``), False, or an array of cell texts (then ``fmt=""``).
    """
    import seaborn as sns

    fig = Figure(figsize=(0.5 * frame.shape[1] + 3, 0.42 * frame.shape[0] + 1.5), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(frame, ax=ax, annot=annot, fmt=fmt, cmap=cmap, vmin=vmin, vmax=vmax, annot_kws={"fontsize": annot_size},
                cbar_kws={"label": cbar_label}, square=frame.shape[0] == frame.shape[1])
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    return fig


def cooccurrence_text(values: np.ndarray, hide_zero: bool = True) -> np.ndarray:
    """Cell texts of a co-occurrence table: whole numbers; blank for NaN, the diagonal and (``hide_zero``)
    values that round to 0, so the numbers that say something stand out."""
    values = np.asarray(values, dtype=float)
    shown = np.isfinite(values) & ~(hide_zero & (np.round(values) == 0))
    np.fill_diagonal(shown, False)
    text = np.full(values.shape, "", dtype=object)
    text[shown] = [f"{v:.0f}" for v in values[shown]]
    return text


def cooccurrence(stats: Any, mode: str = "conditional", skip_background: bool = True, hide_zero: bool = True,
                 fontsize: float = 10) -> Figure:
    """Co-occurrence heatmap; ``conditional`` row i, column j = P(j in image | i in image), in percent.

    Cells show whole numbers at ``fontsize`` points; the diagonal and (``hide_zero``) zeros stay blank.
    Each row label gives the images containing its class: the number of images the row rests on.
    """
    frame = stats.cooccurrence(mode)
    images = stats.class_table()["images"].to_numpy()
    if skip_background:
        frame, images = frame.iloc[1:, 1:], images[1:]
    what = {"conditional": "P(column class present | row class present), %",
            "jaccard": "Jaccard overlap of the images containing each pair, %",
            "count": "images containing both classes"}[mode]
    if mode != "count":
        frame = 100 * frame
    frame = frame.set_axis([f"{c} ({k})" for c, k in zip(frame.index, images)], axis=0)
    fig = heatmap(frame, title=dataset_title(stats, what), fmt="", annot=cooccurrence_text(frame.to_numpy(), hide_zero),
                  vmin=0, vmax=None if mode == "count" else 100, annot_size=fontsize)
    fig.axes[0].set_ylabel("class (images containing it)")
    fig.axes[0].set_xlabel("blank: diagonal" + (", or 0" if hide_zero else ""), fontsize=8)
    return fig


def size_edges(sizes: pd.DataFrame, max_bins: int = 80) -> np.ndarray:
    """Histogram bin edges over widths and heights: 1 px bins centred on whole pixels while at most
    ``max_bins`` fit, else wider ones, so a pile of images at exactly one size stays one bar."""
    values = sizes[["width", "height"]].to_numpy()
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 1)
    step = max(1, -(-(hi - lo + 1) // max_bins))
    return np.arange(lo, hi + step + 1, step) - 0.5


def size_distribution(stats: Any) -> Figure:
    """Histograms of image width and height, and the number of person classes present per image.

    A tall bar at an end of the size range means many images of exactly that size: in SynthLIP,
    the widths the generator clamps to its range.
    """
    sizes = stats.image_sizes()
    fig = Figure(figsize=(9.5, 3.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    edges = size_edges(sizes)
    for side, colour in (("width", "#1f77b4"), ("height", "#ff7f0e")):
        ax1.hist(sizes[side], bins=edges, histtype="step", linewidth=1.5, color=colour, label=side)
    ax1.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_xlabel("pixels")
    ax1.set_ylabel("images")
    ax1.legend(fontsize=8)
    ax1.set_title("Image width and height", fontsize=10)
    fig.suptitle(dataset_title(stats, "image sizes and parts visible"), fontsize=10)
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
                      title=dataset_title(stats, "views, framing and occluded share (generator metadata)"))


def pose_visibility(stats: Any) -> Figure:
    """Share of images where each joint has coordinates (and v = 1), and joints with coordinates per image.

    The v = 1 legend says what SynthLIP writes (a joint covered by the person's own body); for real
    data it says that LIP does not document v.
    """
    vis = stats.pose_visibility()
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    fig.suptitle(dataset_title(stats, "pose joints"), fontsize=10)
    if len(vis) == 0:
        for ax in (ax1, ax2):
            ax.text(0.5, 0.5, "no pose annotations", ha="center", va="center")
            ax.axis("off")
        return fig
    col = [POSE_COLORS["left" if j in _LEFT_JOINTS else "right" if j in _RIGHT_JOINTS else "centre"]
           for j in range(len(vis))]
    v1 = "v = 1 (covered by the person's own body)" if stats.generator is not None else "v = 1 (meaning undocumented)"
    ax1.bar(range(len(vis)), vis["annotated"].to_numpy(), color=col)
    ax1.bar(range(len(vis)), vis["v_is_1"].to_numpy(), color="none", edgecolor="0.2", hatch="///", linewidth=0.5)
    handles = [Patch(facecolor=POSE_COLORS[k], label=f"{k} joint has coordinates") for k in ("left", "right", "centre")]
    handles.append(Patch(facecolor="none", edgecolor="0.2", hatch="///", linewidth=0.5, label=v1))
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    ax1.set_xticks(range(len(vis)), list(vis.index), rotation=60, ha="right", fontsize=8)
    ax1.set_ylim(0, 1.02)
    ax1.set_ylabel("share of images")
    ax1.set_title("Joints with coordinates in the pose file", fontsize=10)
    per = stats.joints_per_image()
    ax2.bar(per.index, per.to_numpy(), color="0.4")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_xlabel("joints with coordinates")
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
