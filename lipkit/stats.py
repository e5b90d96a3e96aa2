"""Dataset statistics of a LIP-format split, computed from the label maps alone.

One pass reads every label PNG once and keeps a per-image class histogram (``np.bincount``);
everything else is derived from that (N, K) matrix with array operations: images per class,
pixel shares, region sizes, co-occurrence (a presence-matrix product), image sizes. Images are
never decoded: sizes come from the labels (same size as their image by LIP's layout) or, for the
unlabelled test split, from the JPEG headers. Pose visibility comes from the pose CSV and view /
truncation counts from SynthLIP's ``meta_<split>.jsonl`` when they exist; the dataset is named
from the data (``SynthLIP`` where the generator's ``synthlip.json`` lies in the root, else the label
set's name), so figures and notes never call SynthLIP numbers LIP's. ``what_it_shows`` writes the
closing note of notebook 01: the images behind each number, which numbers the generator fixes and
which are measured, and what they do not say about real LIP.

``python -m lipkit stats ROOT --split train`` prints the tables in markdown.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter
from tqdm.auto import tqdm

from lipkit.data.io import read_id_list, read_label, read_pose_csv
from lipkit.data.layout import check_declared_label_set, resolve_lip
from lipkit.data.synth import read_meta
from lipkit.labels import LIP, LIP_POSE_JOINTS, LabelSet, get_label_set

META_COLUMNS = ("view", "truncation", "occluded_fraction")  # the SynthLIP metadata statistics count
META_READ = META_COLUMNS + ("garments",)  # and what they read: garments are compared with the labels
# SynthLIP's garment names (metadata) -> the LIP classes that draw them.
GARMENT_CLASSES = {
    "upper-clothes": ("Upper-clothes",), "dress": ("Dress",), "jumpsuits": ("Jumpsuits",), "pants": ("Pants",),
    "shorts": ("Pants",), "skirt": ("Skirt",), "coat": ("Coat",), "hat": ("Hat",), "sunglasses": ("Sunglasses",),
    "scarf": ("Scarf",), "gloves": ("Glove",), "socks": ("Socks",), "shoes": ("Left-shoe", "Right-shoe"),
}

COOCCURRENCE_MODES = ("count", "conditional", "jaccard")


@dataclass
class DatasetStats:
    """Per-image histograms of one split and the tables derived from them.

    ``pixel_counts[i, k]`` is the number of pixels of class ``k`` in image ``i``; ``ignored[i]``
    counts pixels equal to the ignore index (255) and ``invalid[i]`` any other id outside the
    label set. ``sizes[i]`` is ``(width, height)``. ``pose`` is ``(N, 16, 3)`` x, y, v with NaN
    where unannotated, or None; ``meta`` is SynthLIP's per-image metadata (indexed like ``ids``), or None.
    """

    label_set: LabelSet
    split: str
    ids: list[str]
    pixel_counts: np.ndarray
    ignored: np.ndarray
    invalid: np.ndarray
    sizes: np.ndarray
    pose: np.ndarray | None = None
    meta: pd.DataFrame | None = None
    seconds: float = 0.0
    dataset: str = ""
    generator: dict | None = None

    # ----------------------------------------------------------------- basic arrays
    @property
    def num_images(self) -> int:
        return len(self.ids)

    @property
    def name(self) -> str:
        """The data's name for titles: ``dataset`` when set, else the label set's name (LIP, CIHP, ...)."""
        return self.dataset or self.label_set.name.upper()

    @property
    def presence(self) -> np.ndarray:
        """(N, K) bool: class k appears in image i."""
        return self.pixel_counts > 0

    @property
    def areas(self) -> np.ndarray:
        """(N,) pixels per image (width x height)."""
        return self.sizes[:, 0].astype(np.int64) * self.sizes[:, 1]

    @property
    def rate(self) -> float:
        """Images per second of the pass that produced these statistics."""
        return self.num_images / self.seconds if self.seconds > 0 else float("nan")

    # ----------------------------------------------------------------- tables
    def class_table(self) -> pd.DataFrame:
        """One row per class: images containing it, their share, pixels and the pixel share.

        ``pixel_share`` is over labelled pixels (ignore and invalid ids excluded);
        ``median_region`` is the median share of the image a class covers where present.
        """
        presence = self.presence
        images = presence.sum(axis=0)
        pixels = self.pixel_counts.sum(axis=0)
        total = max(int(pixels.sum()), 1)
        frac = self.pixel_counts / np.maximum(self.areas, 1)[:, None]
        masked = np.where(presence, frac, np.nan)
        with warnings.catch_warnings():  # all-NaN columns (absent classes) give NaN, quietly
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(masked, axis=0) if self.num_images else np.full(len(images), np.nan)
        return pd.DataFrame(
            {
                "class": list(self.label_set.classes),
                "images": images.astype(np.int64),
                "image_share": images / max(self.num_images, 1),
                "pixels": pixels.astype(np.int64),
                "pixel_share": pixels / total,
                "median_region": median,
            },
            index=pd.RangeIndex(self.label_set.num_classes, name="id"),
        )

    def cooccurrence(self, mode: str = "count") -> pd.DataFrame:
        """K x K class co-occurrence over images.

        ``count``: images containing both classes (diagonal = images per class).
        ``conditional``: row i, column j = P(j present | i present).
        ``jaccard``: images with both / images with either.
        """
        if mode not in COOCCURRENCE_MODES:
            raise ValueError(f"unknown co-occurrence mode {mode!r}; choose one of {', '.join(COOCCURRENCE_MODES)}")
        p = self.presence.astype(np.int64)
        both = p.T @ p
        diag = np.diag(both).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            if mode == "count":
                values: np.ndarray = both
            elif mode == "conditional":
                values = both / diag[:, None]
            else:
                values = both / (diag[:, None] + diag[None, :] - both)
        names = list(self.label_set.classes)
        return pd.DataFrame(values, index=pd.Index(names, name="class"), columns=names)

    def top_pairs(self, n: int = 10, skip_background: bool = True) -> pd.DataFrame:
        """The ``n`` class pairs found together in most images, with P(b | a) and P(a | b)."""
        both = self.cooccurrence("count").to_numpy()
        k = both.shape[0]
        a, b = np.triu_indices(k, 1)
        if skip_background:
            keep = a > 0
            a, b = a[keep], b[keep]
        order = np.argsort(-both[a, b], kind="stable")[:n]
        a, b = a[order], b[order]
        diag = np.maximum(np.diag(both), 1)
        names = np.asarray(self.label_set.classes, dtype=object)
        return pd.DataFrame({"class_a": names[a], "class_b": names[b], "images": both[a, b],
                             "p_b_given_a": both[a, b] / diag[a], "p_a_given_b": both[a, b] / diag[b]})

    def region_sizes(self) -> pd.DataFrame:
        """Long table, one row per (image, class present): pixels and share of the image area."""
        rows, cols = np.nonzero(self.presence)
        pixels = self.pixel_counts[rows, cols]
        return pd.DataFrame(
            {
                "id": np.asarray(self.ids, dtype=object)[rows],
                "class_id": cols,
                "class": np.asarray(self.label_set.classes, dtype=object)[cols],
                "pixels": pixels,
                "area_share": pixels / np.maximum(self.areas[rows], 1),
            }
        )

    def image_sizes(self) -> pd.DataFrame:
        """id, width, height, aspect (height / width) and the number of classes present."""
        return pd.DataFrame(
            {
                "id": self.ids,
                "width": self.sizes[:, 0],
                "height": self.sizes[:, 1],
                "aspect": self.sizes[:, 1] / np.maximum(self.sizes[:, 0], 1),
                "classes_present": self.presence[:, 1:].sum(axis=1) if self.num_images else [],
            }
        )

    def size_extremes(self) -> pd.DataFrame:
        """Per side: the smallest and largest value and how many images have exactly that value.

        Sizes drawn from a smooth distribution rarely repeat one value; a pile at an end of the range
        is what clamping to the range leaves (SynthLIP clamps widths, see ``synth._size``).
        """
        rows = {}
        for side in ("width", "height"):
            values = self.sizes[:, 0 if side == "width" else 1]
            lo, hi = (int(values.min()), int(values.max())) if len(values) else (0, 0)
            rows[side] = {"min": lo, "images_at_min": int((values == lo).sum()),
                          "max": hi, "images_at_max": int((values == hi).sum())}
        return pd.DataFrame.from_dict(rows, orient="index")

    def garments_shown(self) -> pd.DataFrame:
        """SynthLIP only: per garment, the images whose person wears it and those whose label shows it.

        ``worn`` is the generator's draw (metadata, set by chosen probabilities); ``shown`` counts the
        images among those whose label map holds the garment's class, a measurement: views, framing
        and occluders hide garments. Empty without metadata (real LIP).
        """
        columns = ["classes", "worn", "worn_share", "shown", "shown_share"]
        if self.meta is None or "garments" not in self.meta.columns:
            return pd.DataFrame(columns=columns, index=pd.Index([], name="garment"))
        worn_lists = [g if isinstance(g, (list, tuple)) else [] for g in self.meta["garments"]]
        rows = {}
        for garment, classes in GARMENT_CLASSES.items():
            ids = [self.label_set.classes.index(c) for c in classes if c in self.label_set.classes]
            if not ids:
                continue
            worn = np.array([garment in g for g in worn_lists], dtype=bool)
            shown = worn & self.presence[:, ids].any(axis=1)
            rows[garment] = {"classes": " / ".join(classes), "worn": int(worn.sum()),
                             "worn_share": worn.sum() / max(self.num_images, 1), "shown": int(shown.sum()),
                             "shown_share": shown.sum() / worn.sum() if worn.any() else np.nan}
        return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("garment")

    def size_summary(self) -> pd.DataFrame:
        """Min / median / mean / max of width, height and aspect."""
        sizes = self.image_sizes()[["width", "height", "aspect"]]
        return sizes.agg(["min", "median", "mean", "max"]).T

    def pose_visibility(self) -> pd.DataFrame:
        """Per joint: share of images where it is annotated and where its flag v equals 1.

        Unannotated joints (NaN, e.g. outside the image or hidden) are the occlusion and
        truncation proxy. LIP does not document v reliably (one codebase reads v == 1 as
        occluded); SynthLIP writes v = 0 for a joint on its own body segment, v = 1 for one covered
        by another segment of the same person, and NaN outside the image or behind an occluder. It
        is reported as a raw share of images. Empty when the split has no pose file.
        """
        if self.pose is None:
            return pd.DataFrame(columns=["joint", "annotated", "v_is_1"])
        annotated = ~np.isnan(self.pose[..., :2]).any(axis=-1)
        v1 = self.pose[..., 2] == 1
        n = max(len(self.pose), 1)
        return pd.DataFrame(
            {"joint": list(LIP_POSE_JOINTS), "annotated": annotated.sum(0) / n, "v_is_1": v1.sum(0) / n}
        ).set_index("joint")

    def joints_per_image(self) -> pd.Series:
        """Histogram: number of images with 0..16 annotated joints (empty without pose)."""
        if self.pose is None:
            return pd.Series(dtype=np.int64, name="images")
        annotated = (~np.isnan(self.pose[..., :2]).any(axis=-1)).sum(axis=1)
        counts = np.bincount(annotated, minlength=len(LIP_POSE_JOINTS) + 1)
        return pd.Series(counts, index=pd.RangeIndex(len(counts), name="joints_annotated"), name="images")

    def meta_counts(self, column: str) -> pd.Series:
        """Image counts per value of a SynthLIP metadata column (e.g. ``view``); empty without metadata."""
        if self.meta is None or column not in self.meta.columns:
            return pd.Series(dtype=np.int64, name="images")
        values = self.meta[column]
        if values.dtype.kind == "f":  # continuous (truncation, occlusion): bin into quarters
            values = pd.cut(values, bins=[-0.001, 0.0, 0.25, 0.5, 0.75, 1.0],
                            labels=["0", "(0, .25]", "(.25, .5]", "(.5, .75]", "(.75, 1]"])
            return values.value_counts(sort=False).rename("images")
        return values.value_counts().sort_index().rename("images")

    def view_counts(self) -> pd.Series:
        return self.meta_counts("view")

    def truncation_counts(self) -> pd.Series:
        return self.meta_counts("truncation")

    def summary(self) -> dict[str, Any]:
        """A JSON-able digest: images, classes seen, ignore share, size range, rate."""
        total = max(int(self.areas.sum()), 1)
        return {
            "dataset": self.name,
            "split": self.split,
            "label_set": self.label_set.name,
            "images": self.num_images,
            "classes_present": int(self.presence.any(axis=0).sum()),
            "ignored_share": float(self.ignored.sum() / total),
            "invalid_pixels": int(self.invalid.sum()),
            "width_range": [int(self.sizes[:, 0].min()), int(self.sizes[:, 0].max())] if self.num_images else [],
            "height_range": [int(self.sizes[:, 1].min()), int(self.sizes[:, 1].max())] if self.num_images else [],
            "with_pose": self.pose is not None,
            "with_meta": self.meta is not None,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.rate, 1) if self.seconds > 0 else None,
        }


# --------------------------------------------------------------------- computing
def label_histogram(label: np.ndarray, num_classes: int, ignore_index: int = 255) -> tuple[np.ndarray, int, int]:
    """Class pixel counts of one label map, plus the ignored and invalid pixel counts."""
    counts = np.bincount(np.asarray(label, dtype=np.uint8).ravel(), minlength=256)
    ignored = int(counts[ignore_index]) if 0 <= ignore_index < 256 else 0
    invalid = int(counts[num_classes:].sum()) - ignored
    return counts[:num_classes].astype(np.int64), ignored, invalid


def stats_from_labels(
    labels: Iterable[np.ndarray],
    label_set: LabelSet = LIP,
    ids: Sequence[str] | None = None,
    split: str = "",
    pose: np.ndarray | None = None,
    meta: pd.DataFrame | None = None,
    dataset: str = "",
) -> DatasetStats:
    """Statistics of label arrays already in memory (uint8 ids, any sizes); ``dataset`` names them."""
    start = time.perf_counter()
    counts, ignored, invalid, sizes = [], [], [], []
    for label in labels:
        label = np.asarray(label)
        if label.ndim != 2:
            raise ValueError(f"label maps must be 2-D (H, W) arrays of class ids, got shape {label.shape}")
        c, ig, inv = label_histogram(label, label_set.num_classes, label_set.ignore_index)
        counts.append(c)
        ignored.append(ig)
        invalid.append(inv)
        sizes.append((label.shape[1], label.shape[0]))
    n = len(counts)
    ids = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} label maps")
    return DatasetStats(
        label_set=label_set,
        split=split,
        ids=ids,
        pixel_counts=np.array(counts, dtype=np.int64).reshape(n, label_set.num_classes),
        ignored=np.array(ignored, dtype=np.int64),
        invalid=np.array(invalid, dtype=np.int64),
        sizes=np.array(sizes, dtype=np.int64).reshape(n, 2),
        pose=pose,
        meta=meta,
        seconds=time.perf_counter() - start,
        dataset=dataset,
    )


def share_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95% by default) of a share seen in ``k`` of ``n`` images."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def read_generator(root: str | Path | None) -> dict | None:
    """SynthLIP's settings (``synthlip.json``: seed, size range, counts, ...) of a root, None for real data."""
    path = Path(root) / "synthlip.json" if root is not None else None
    if path is None or not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def dataset_name(root: str | Path | None, label_set: LabelSet | str = LIP) -> str:
    """The data's name for titles: "SynthLIP" where the generator's ``synthlip.json`` lies in ``root``,
    else the label set's name in capitals (LIP, CIHP, ATR)."""
    if read_generator(root) is not None:
        return "SynthLIP"
    return get_label_set(label_set).name.upper()


def load_pose(pose_csv: Path | None, ids: Sequence[str]) -> np.ndarray | None:
    """(N, 16, 3) pose of ``ids`` from a LIP pose CSV (NaN rows for ids it lacks), or None."""
    if pose_csv is None or not ids:
        return None
    table = read_pose_csv(pose_csv)
    missing = np.full((len(LIP_POSE_JOINTS), 3), np.nan, dtype=np.float32)
    return np.stack([table.get(i, missing) for i in ids]).astype(np.float32)


def pose_available(root: str | Path, split: str) -> bool:
    """Whether a LIP root has a pose CSV for ``split`` (real LIP has none for test)."""
    return resolve_lip(root, split, labeled=False).pose_csv is not None


class _SplitFiles:
    """The file paths of one LIP split (what statistics need; no image decoding)."""

    def __init__(self, layout: Any, label_set: LabelSet) -> None:
        self.root, self.split, self.label_set, self._layout = layout.root, layout.split, label_set, layout
        self.ids = read_id_list(layout.id_list)

    def label_path(self, i: int) -> Path:
        return self._layout.label_dir / f"{self.ids[i]}{self._layout.label_ext}"

    def image_path(self, i: int) -> Path:
        return self._layout.image_dir / f"{self.ids[i]}{self._layout.image_ext}"


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:  # reads the header only
        return im.size


def _per_image_counts(dataset: Any, n: int, label_set: LabelSet, has_labels: bool, num_workers: int,
                      progress: bool, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Class pixel counts (n, K), ignored (n,), invalid (n,) and (w, h) sizes (n, 2) of the first ``n`` images.

    Written into arrays allocated once: per-image objects kept until the end fragment the heap, and
    at LIP's scale that cost hundreds of MB of resident memory.
    """
    counts = np.zeros((n, label_set.num_classes), np.int64)
    ignored, invalid, sizes = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros((n, 2), np.int64)

    def one(i: int) -> None:
        if not has_labels:
            sizes[i] = _image_size(Path(dataset.image_path(i)))
            return
        label = read_label(dataset.label_path(i))  # ids outside the set are counted, not fatal
        counts[i], ignored[i], invalid[i] = label_histogram(label, label_set.num_classes, label_set.ignore_index)
        sizes[i] = (label.shape[1], label.shape[0])

    with tqdm(total=n, desc=f"stats {split}", unit="img", disable=not progress) as bar:
        if num_workers > 0:
            with ThreadPoolExecutor(max_workers=num_workers) as pool:
                for _ in pool.map(one, range(n)):
                    bar.update(1)
        else:
            for i in range(n):
                one(i)
                bar.update(1)
    return counts, ignored, invalid, sizes


def compute_stats(
    source: Any,
    split: str = "train",
    label_set: LabelSet | str = LIP,
    limit: int | None = None,
    with_pose: bool = True,
    num_workers: int = 0,
    progress: bool = True,
) -> DatasetStats:
    """Statistics of a LIP-format split.

    ``source`` is a dataset root (flat or official layout) or a ``LIPDataset``-like object
    (``ids``, ``label_path(i)``, ``image_path(i)``, ``label_set``, optional ``root``).
    ``limit`` takes the first N ids (None or 0: all). ``num_workers`` > 0 decodes labels in
    that many threads (PNG decoding releases the GIL); results do not depend on it.
    """
    if isinstance(source, (str, Path)):
        dataset: Any = _SplitFiles(resolve_lip(source, split), get_label_set(label_set))
        check_declared_label_set(source, dataset.label_set.name)
    else:
        dataset = source
        split = getattr(dataset, "split", split)
    root = Path(dataset.root) if getattr(dataset, "root", None) else None
    label_set = getattr(dataset, "label_set", None) or get_label_set(label_set)
    n = len(dataset.ids) if not limit else min(int(limit), len(dataset.ids))
    ids = [str(i) for i in dataset.ids[:n]]
    has_labels = split != "test"

    start = time.perf_counter()
    counts, ignored, invalid, sizes = _per_image_counts(dataset, n, label_set, has_labels, num_workers, progress, split)
    seconds = time.perf_counter() - start

    pose_csv = resolve_lip(root, split, labeled=False).pose_csv if (with_pose and root is not None) else None
    pose = load_pose(pose_csv, ids)
    meta = read_meta(root, split, ids, columns=META_READ) if root is not None else None
    generator = read_generator(root)
    return DatasetStats(
        label_set=label_set,
        split=split,
        ids=ids,
        pixel_counts=counts,
        ignored=ignored,
        invalid=invalid,
        sizes=sizes,
        pose=pose,
        meta=meta,
        seconds=seconds,
        dataset=dataset_name(root, label_set),
        generator=generator,
    )


# --------------------------------------------------------------------- markdown and CLI
def markdown_table(frame: pd.DataFrame | pd.Series, floatfmt: str = ".4g", index: bool = True) -> str:
    """A GitHub markdown table of a DataFrame (no extra dependency)."""
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    cols = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]

    def fmt(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else format(float(v), floatfmt)
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for key, row in frame.iterrows():
        cells = ([fmt(key)] if index else []) + [fmt(v) for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(stats: DatasetStats) -> str:
    """All tables of a DatasetStats as one markdown document."""
    parts = [f"# Statistics of {stats.name} split {stats.split!r}: {stats.num_images} images", ""]
    parts += ["## Classes", "", markdown_table(stats.class_table()), ""]
    parts += ["## Image sizes", "", markdown_table(stats.size_summary()), ""]
    if stats.pose is not None:
        parts += ["## Pose joints annotated (occlusion / truncation proxy)", "", markdown_table(stats.pose_visibility()), ""]
    if stats.meta is not None:
        for column in META_COLUMNS:
            counts = stats.meta_counts(column)
            if len(counts):
                parts += [f"## SynthLIP {column}", "", markdown_table(counts), ""]
    parts += [f"{stats.num_images} images in {stats.seconds:.2f} s ({stats.rate:.0f} images/s)"]
    return "\n".join(parts)


# --------------------------------------------------------------------- part sizes against a network's stride
def thickness(mask: np.ndarray) -> int:
    """The side in pixels of the largest square inside a mask (0 if empty): a 5 x 40 px bar is 5 thick.

    k erosions by a 3 x 3 square are one by a (2k+1) square, so the mask survives k erosions iff such a
    square fits; a 2 x 2 erosion of the last survivor decides the even sizes. A part thinner than a
    network's output stride holds no grid cell of its own.
    """
    padded = np.pad(np.asarray(mask, dtype=bool), 1)  # the image's edge bounds a part like background
    current = Image.fromarray(padded.astype(np.uint8) * 255)
    k, last = 0, None
    while current.getbbox() is not None:
        k, last = k + 1, np.asarray(current) > 0
        current = current.filter(ImageFilter.MinFilter(3))
    if last is None:
        return 0
    two_wide = bool((last[:-1, :-1] & last[1:, :-1] & last[:-1, 1:] & last[1:, 1:]).any())
    return 2 * k - 1 + int(two_wide)


def part_sizes(dataset: Any, label_set: LabelSet | str = LIP, max_images: int | None = None) -> pd.DataFrame:
    """Per class, over the images where it is present: images, median area (px) and median thickness (px).

    ``dataset`` items hold a ``label`` (e.g. ``LIPDataset``); the first ``max_images`` are read.
    """
    label_set = get_label_set(label_set)
    n = len(dataset) if max_images is None else min(len(dataset), int(max_images))
    areas: list[list[int]] = [[] for _ in range(label_set.num_classes)]
    widths: list[list[int]] = [[] for _ in range(label_set.num_classes)]
    for i in range(n):
        label = np.asarray(dataset[i]["label"])
        for c in np.unique(label):
            if 0 < c < label_set.num_classes:
                mask = label == c
                areas[c].append(int(mask.sum()))
                widths[c].append(thickness(mask))
    rows = {label_set.classes[c]: {"images": len(areas[c]),
                                   "median area (px)": float(np.median(areas[c])) if areas[c] else np.nan,
                                   "median thickness (px)": float(np.median(widths[c])) if widths[c] else np.nan}
            for c in range(1, label_set.num_classes)}
    return pd.DataFrame(rows).T
