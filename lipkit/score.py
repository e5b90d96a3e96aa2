"""Score any method's predictions (a folder of label PNGs) against a split's ground truth, under a stated protocol.

``python -m lipkit score PRED_DIR --data-root ROOT --split val`` calls :func:`score_folder`. Reported
LIP numbers disagree mostly through protocol (Gong et al. 2017 report LIP val; the issue trackers of
LIP_SSL, CE2P, HRNet and SCHP are full of 40-vs-44 and 26-vs-53 mIoU threads), so every setting
that moves the number is chosen explicitly and printed beside it:

- **images**: the whole split, the first N (``max_images``) or the ids of a file (``ids_file``);
  the report says "subset of N of M".
- **size**: a prediction must have its ground truth's size (``resize="none"``, LIP's protocol: one
  confusion matrix at each image's original size). ``"nearest"`` resizes a prediction to the ground
  truth's size, ``"gt-nearest"`` resizes the ground truth to the prediction's (what repositories that
  score at the training resolution do; not the benchmark protocol). Nearest is the floor rule of
  PyTorch's ``mode="nearest"`` and OpenCV's ``INTER_NEAREST``: target pixel i takes source pixel
  ``floor(i * src / dst)``.
- **absent classes**: ``nan`` (LIP_SSL's ``nanmean``: a 0/0 class is left out of the means) and
  ``zero`` (SCHP, CE2P, HRNet: it counts as 0), both computed, either or both reported.
- **missing predictions**: an error unless ``allow_missing`` (then scored as all background, and counted).

What the PNGs cannot tell (the flip test, test scales, the input resolution the network saw) the report
names as such: state it with the number. Files: ``<id>.png`` for each scored id, either an id PNG
(mode L, or P whose *indices* are the ids, as ``lipkit.data.write_label_png`` and the LIP tools write
them) or a colour PNG (RGB/RGBA) in the label set's palette, converted exactly. ``<id>_overlay.png`` for
an id of the split is the ``predict`` command's overlay and is skipped (and counted); names starting with
"." are ignored (and counted); every other file is an error. Every problem (missing, extra, unreadable,
colour, values, size, ground truth) is collected in one pass and raised together as :class:`ScoreError`,
each message naming its file. Nothing is written next to the predictions.

Scoring itself is ``lipkit.evaluate``'s: each pair goes through ``evaluate.add_image`` and the split
through ``evaluate.summarise``, so ``score`` on a folder written by ``predict`` gives exactly
``evaluate``'s numbers. PNGs are decoded by a thread pool; pairs are added in id order.

A subset of N images is another sample, not a protocol: ``score_folder(per_image=True)`` keeps each
image's confusion matrix, from which :mod:`lipkit.subsets` draws random subsets of the same N.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lipkit.data import open_split, read_image, write_label_png
from lipkit.data.io import LIPDataError, PathLike, colors_to_ids, decode, label_array, open_image, read_id_list, read_label
from lipkit.data.transforms import normalized_tensor
from lipkit.evaluate import add_image, joint_groups_or_none, new_state, predict_labels, summarise
from lipkit.labels import LabelSet, get_label_set
from lipkit.metrics import mean_left_right_confusion

RESIZE_RULES = ("none", "nearest", "gt-nearest")
ABSENT_RULES = ("nan", "zero")
ABSENT_NAMES = {"nan": "nan (LIP_SSL)", "zero": "zero (SCHP/CE2P/HRNet)"}
OVERLAY_SUFFIX = "_overlay.png"
METRICS = ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou")
METRIC_NAMES = {"pixel_accuracy": "pixel acc", "mean_accuracy": "mean acc", "mean_iou": "mIoU",
                "frequency_weighted_iou": "fwIoU"}
# Problem kinds in the order they are reported, with their headings.
PROBLEM_KINDS: dict[str, str] = {
    "folder": "prediction folder",
    "unknown-id": "ids not in the split",
    "missing": "missing predictions (no <id>.png)",
    "extra": "extra files (not <id>.png for an id of the split)",
    "unreadable": "unreadable prediction files",
    "colour": "colours not in the label set's palette",
    "values": "prediction values that are not class ids",
    "size": "predictions whose size differs from their ground truth",
    "ground-truth": "ground-truth problems",
}
_HINTS = {
    "missing": "write them, or pass --allow-missing to score them as all background",
    "extra": "move them out of the folder (or score a folder that holds only <id>.png predictions)",
    "size": "resize predictions back to the ground truth's size, or pass --resize nearest and report it",
    "colour": "save ids (mode L or P), or colours exactly as the palette's (no antialiasing, no JPEG)",
}


# ------------------------------------------------------------------------------------------ problems
@dataclass(frozen=True)
class Problem:
    """One thing wrong with the inputs: ``kind`` (a key of :data:`PROBLEM_KINDS`), the file, a message naming it."""

    kind: str
    path: Path
    message: str


def format_problems(problems: Sequence[Problem], max_files: int = 10) -> str:
    """The problems grouped by kind, ``max_files`` messages per kind (0: all), each with what to do."""
    lines = [f"score: {len(problems)} problem(s) found before scoring; nothing was scored"]
    for kind, heading in PROBLEM_KINDS.items():
        group = [p for p in problems if p.kind == kind]
        if not group:
            continue
        lines.append(f"{len(group)} {heading}:")
        shown = group if max_files <= 0 else group[:max_files]
        lines += [f"  {p.message}" for p in shown]
        if len(group) > len(shown):
            lines.append(f"  ... and {len(group) - len(shown)} more")
        if kind in _HINTS:
            lines.append(f"  -> {_HINTS[kind]}")
    return "\n".join(lines)


class ScoreError(ValueError):
    """The inputs have problems; ``problems`` lists all of them (the message groups them by kind)."""

    def __init__(self, problems: Sequence[Problem], max_files: int = 10) -> None:
        self.problems = list(problems)
        super().__init__(format_problems(self.problems, max_files))

    def format(self, max_files: int = 10) -> str:
        return format_problems(self.problems, max_files)


# ------------------------------------------------------------------------------------------ reading
def palette_to_ids(rgb: np.ndarray, label_set: LabelSet, path: PathLike = "<prediction>") -> np.ndarray:
    """A colour label ``(H, W, 3)`` in ``label_set``'s palette as ``(H, W)`` uint8 ids, exactly.

    A colour not in the palette raises :class:`LIPDataError` (kind ``"colour"``) naming the file, the
    first such pixel (x = column, y = row) and its colour, and how many pixels and colours are off.
    """
    rgb = np.asarray(rgb)[:, :, :3]
    ids = colors_to_ids(rgb, label_set, strict=False)  # colours off the palette become the ignore value
    off = ids == label_set.ignore_index
    if off.any():
        bad = np.flatnonzero(off)
        y, x = divmod(int(bad[0]), ids.shape[1])
        colour = tuple(int(c) for c in rgb[y, x])
        others = np.unique(rgb.reshape(-1, 3)[bad], axis=0).shape[0]
        grey = " (grey: ids saved as RGB? save them as mode L)" if len(set(colour)) == 1 else ""
        raise LIPDataError(
            f"{path}: pixel (x={x}, y={y}) has colour {colour}, which is not in the {label_set.name!r} palette{grey}; "
            f"{bad.size} pixel(s) in {others} colour(s) are off the palette",
            path=path, kind="colour")
    return ids


def read_prediction(path: PathLike, label_set: LabelSet) -> np.ndarray:
    """A prediction PNG as ``(H, W)`` uint8 class ids: id PNGs (L, P indices, 16-bit) or palette colours (RGB/RGBA).

    Raises :class:`LIPDataError` naming the file: unreadable (kind ``unreadable-prediction`` or
    ``truncated-prediction``), a colour off the palette (``colour``), ids outside ``0..K-1`` (``values``).
    """
    with open_image(path, "prediction") as img:
        decode(img, path, "prediction")
        if img.mode in ("RGB", "RGBA"):
            return palette_to_ids(np.asarray(img), label_set, path)
        ids = label_array(img, path)
    k = label_set.num_classes
    if ids.size and int(ids.max()) >= k:
        bad = np.unique(ids[ids >= k])
        shown = ", ".join(str(int(v)) for v in bad[:10]) + (" ..." if bad.size > 10 else "")
        raise LIPDataError(f"{path}: holds values {shown}, outside the {label_set.name!r} class ids 0..{k - 1} "
                           f"(a prediction names a class for every pixel; {label_set.ignore_index} = ignore is for "
                           "ground truth only)", path=path, kind="values")
    return ids


def resize_nearest(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``labels`` (h, w) resized to ``size = (H, W)``: pixel i takes source pixel floor(i * h / H) (per axis).

    The rule of PyTorch's ``F.interpolate(mode="nearest")`` and OpenCV's ``INTER_NEAREST``, in integers.
    """
    labels = np.asarray(labels)
    h, w = labels.shape
    rows = (np.arange(size[0]) * h) // size[0]
    cols = (np.arange(size[1]) * w) // size[1]
    return labels[rows[:, None], cols[None, :]]


def _size_text(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]} (WxH)"


def align(pred: np.ndarray, gt: np.ndarray, resize: str, pred_path: PathLike, gt_path: PathLike) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(pred, gt, resized)`` of the same size under the ``resize`` rule; :class:`LIPDataError` (``size``) for "none"."""
    if pred.shape == gt.shape:
        return pred, gt, False
    if resize == "nearest":
        return resize_nearest(pred, gt.shape), gt, True
    if resize == "gt-nearest":
        return pred, resize_nearest(gt, pred.shape), True
    swapped = " (width and height swapped?)" if pred.shape == gt.shape[::-1] else ""
    raise LIPDataError(f"{pred_path}: prediction is {_size_text(pred.shape)} but its ground truth {gt_path} is "
                       f"{_size_text(gt.shape)}{swapped}", path=pred_path, kind="size")


# ------------------------------------------------------------------------------------------ the folder
@dataclass
class Inventory:
    """What a prediction folder holds, read once from its listing (no file opened)."""

    found: dict[str, Path] = field(default_factory=dict)  # scored id -> its <id>.png
    missing: list[str] = field(default_factory=list)  # scored ids without a <id>.png
    extra: list[Path] = field(default_factory=list)  # files that are no prediction of the split
    overlays: int = 0  # <id>_overlay.png of split ids (the predict command's), skipped
    outside_subset: int = 0  # <id>.png of split ids that are not scored (a subset)
    hidden: int = 0  # names starting with "."


def scan_predictions(pred_dir: PathLike, split_ids: Iterable[str], selected: Sequence[str]) -> Inventory:
    """Sort the folder's entries into predictions, missing ids, overlays, predictions outside the subset and extras."""
    pred_dir = Path(pred_dir)
    split, wanted = set(split_ids), set(selected)
    inv = Inventory()
    with os.scandir(pred_dir) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            name, is_png = entry.name, entry.name.endswith(".png") and entry.is_file()
            stem = name[:-4]
            if name.startswith("."):
                inv.hidden += 1
            elif is_png and stem in wanted:
                inv.found[stem] = Path(entry.path)
            elif is_png and stem in split:
                inv.outside_subset += 1
            elif is_png and name.endswith(OVERLAY_SUFFIX) and name[: -len(OVERLAY_SUFFIX)] in split:
                inv.overlays += 1
            else:
                inv.extra.append(Path(entry.path))
    inv.missing = [i for i in selected if i not in inv.found]
    return inv


def select_ids(split_ids: Sequence[str], ids_file: PathLike | None = None,
               max_images: int | None = None) -> tuple[list[str], str, list[Problem]]:
    """The ids to score, how they were chosen (``"all"``, ``"first N"``, ``"ids in FILE"``) and unknown-id problems."""
    ids, how, problems = list(split_ids), "all", []
    if ids_file is not None:
        known = set(split_ids)
        listed = read_id_list(ids_file)
        problems = [Problem("unknown-id", Path(ids_file), f"{ids_file}: id {i!r} is not in the split") for i in listed
                    if i not in known]
        ids, how = [i for i in listed if i in known], f"ids in {ids_file}"
    if max_images is not None:
        if int(max_images) < 1:
            raise ValueError(f"max_images={max_images}: score at least one image")
        how = f"first {min(int(max_images), len(ids))}" + ("" if ids_file is None else f" of the {how}")
        ids = ids[: int(max_images)]
    return ids, how, problems


def _inventory_problems(inv: Inventory, pred_dir: Path, gt_path: Callable[[str], Path], allow_missing: bool) -> list[Problem]:
    problems = [Problem("extra", p, f"{p}: {'a folder' if p.is_dir() else 'not <id>.png for an id of the split'}")
                for p in inv.extra]
    if not allow_missing:
        problems += [Problem("missing", pred_dir / f"{i}.png", f"{pred_dir / f'{i}.png'}: missing (ground truth "
                             f"{gt_path(i)})") for i in inv.missing]
    return problems


# ------------------------------------------------------------------------------------------ scoring
@dataclass
class _Pair:
    ident: str
    pred: np.ndarray | None = None
    gt: np.ndarray | None = None
    resized: bool = False
    problems: list[Problem] = field(default_factory=list)


def _problem(exc: LIPDataError, what: str) -> Problem:
    if what == "ground-truth":
        return Problem("ground-truth", exc.path or Path("?"), str(exc))
    kind = exc.kind if exc.kind in ("colour", "values", "size") else "unreadable"
    return Problem(kind, exc.path or Path("?"), str(exc))


def load_pair(ident: str, pred_path: Path | None, gt_path: Path, label_set: LabelSet, resize: str = "none") -> _Pair:
    """Read one prediction (None: missing, scored as all background) and its ground truth, aligned by ``resize``."""
    pair = _Pair(ident)
    try:
        pair.gt = read_label(gt_path, label_set)
    except LIPDataError as exc:
        pair.problems.append(_problem(exc, "ground-truth"))
    try:
        pair.pred = read_prediction(pred_path, label_set) if pred_path is not None else None
    except LIPDataError as exc:
        pair.problems.append(_problem(exc, "prediction"))
    if pair.problems or pair.gt is None:
        return pair
    if pair.pred is None:
        pair.pred = np.zeros_like(pair.gt)
    try:
        pair.pred, pair.gt, pair.resized = align(pair.pred, pair.gt, resize, pred_path, gt_path)
    except LIPDataError as exc:
        pair.problems.append(_problem(exc, "prediction"))
    return pair


def _ordered_map(pool: ThreadPoolExecutor, fn: Callable[..., Any], jobs: Sequence[tuple], window: int) -> Iterator[Any]:
    """``fn(*job)`` for each job, results in order, at most ``window`` decoded ahead (bounded memory)."""
    pending: deque[Future] = deque()
    for job in jobs:
        pending.append(pool.submit(fn, *job))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def default_workers() -> int:
    """Decoding threads: one per usable core but the one the scoring thread needs, 1 to 8.

    PNG decoding releases the GIL; adding each pair (confusion matrix, joint error) runs in the calling
    thread, in id order. On 2 cores a second decoding thread only competes with it (bench_score.py).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores - 1))


def _score_jobs(jobs: Sequence[tuple[str, Path | None, Path]], label_set: LabelSet, resize: str, workers: int,
                progress: bool, joint_grid: int, joint_sigma: float, count: bool = True,
                per_image: bool = False) -> tuple[Any, int, list[Problem]]:
    """Decode every pair on ``workers`` threads and add the clean ones, in order; (state, resized, problems).

    ``count=False`` (problems found already) only checks the files. ``per_image``: the state keeps each
    pair's own confusion matrix (``evaluate.new_state(keep_images=True)``).
    """
    groups = joint_groups_or_none(label_set)
    state, resized, problems = new_state(label_set, keep_images=per_image), 0, []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pairs = _ordered_map(pool, load_pair, [(*job, label_set, resize) for job in jobs], window=16 * workers)
        for pair in tqdm(pairs, total=len(jobs), desc="score", disable=not progress, leave=False):
            if pair.problems:
                problems += pair.problems
            elif count and not problems:  # after the first problem: keep checking, stop counting
                add_image(state, pair.pred, pair.gt, groups, joint_grid, joint_sigma, name=pair.ident)
                resized += pair.resized
    return state, resized, problems


def score_folder(pred_dir: PathLike, data_root: PathLike, split: str = "val", label_set: LabelSet | str = "lip", *,
                 resize: str = "none", ids_file: PathLike | None = None, max_images: int | None = None,
                 allow_missing: bool = False, absent: Sequence[str] = ABSENT_RULES, workers: int | None = None,
                 progress: bool = True, joint_grid: int = 41, joint_sigma: float = 1.0,
                 per_image: bool = False) -> "ScoreReport":
    """Score the ``<id>.png`` predictions in ``pred_dir`` against ``split`` of ``data_root`` (see the module docstring).

    ``per_image=True`` also keeps each scored image's confusion matrix (``report.image_confusions``,
    ``(images, K, K)`` in the order of ``report.image_ids``; they sum to the split's). Raises
    :class:`ScoreError` listing every problem found (nothing scored), ``LIPDataError`` for a
    dataset root that cannot be read, ``ValueError`` for bad options.
    """
    label_set = get_label_set(label_set)
    if resize not in RESIZE_RULES:
        raise ValueError(f"resize={resize!r}: choose one of {', '.join(RESIZE_RULES)}")
    absent = tuple(absent)
    if not absent or any(a not in ABSENT_RULES for a in absent):
        raise ValueError(f"absent={absent!r}: one or both of {', '.join(ABSENT_RULES)}")
    dataset = open_split(data_root, split, label_set)
    if not dataset.has_labels:
        raise LIPDataError(f"{dataset.root}: split {split!r} has no ground truth to score against", path=dataset.root,
                           kind="missing-label")
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise ScoreError([Problem("folder", pred_dir, f"{pred_dir}: {'not a folder' if pred_dir.exists() else 'does not exist'}")])
    selected, how, problems = select_ids(dataset.ids, ids_file, max_images)
    gt_path = {i: dataset.label_path(k) for k, i in enumerate(dataset.ids)}.__getitem__
    inv = scan_predictions(pred_dir, dataset.ids, selected)
    problems += _inventory_problems(inv, pred_dir, gt_path, allow_missing)
    jobs = [(i, inv.found.get(i), gt_path(i)) for i in selected]
    state, resized, pair_problems = _score_jobs(jobs, label_set, resize, workers or default_workers(), progress,
                                                joint_grid, joint_sigma, count=not problems, per_image=per_image)
    if problems or pair_problems:
        raise ScoreError(problems + pair_problems)
    protocol = Protocol(
        predictions=str(pred_dir), ground_truth=str(dataset.layout.label_dir), split=split, label_set=label_set.name,
        images=len(selected), split_images=len(dataset), subset=how, resize=resize, resized=resized, absent=absent,
        missing_as_background=len(inv.missing), skipped_overlays=inv.overlays, outside_subset=inv.outside_subset,
        hidden=inv.hidden, joint_grid=joint_grid, joint_sigma=joint_sigma)
    report = ScoreReport(protocol, summarise(state, label_set), label_set, tuple(selected))
    if per_image:
        k = label_set.num_classes
        report.image_confusions = (np.stack(state.image_confusions) if state.image_confusions
                                   else np.zeros((0, k, k), np.int64))
    return report


# ------------------------------------------------------------------------------------------ the report
@dataclass(frozen=True)
class Protocol:
    """Every setting behind a score (printed in the report, stored in its JSON and CSV)."""

    predictions: str
    ground_truth: str
    split: str
    label_set: str
    images: int
    split_images: int
    subset: str  # "all", "first N", "ids in FILE"
    resize: str
    resized: int
    absent: tuple[str, ...]
    missing_as_background: int
    skipped_overlays: int = 0
    outside_subset: int = 0
    hidden: int = 0
    joint_grid: int = 41
    joint_sigma: float = 1.0

    def images_text(self) -> str:
        if self.subset == "all":
            return f"all {self.split_images:,} images of split {self.split!r}"
        return f"subset of {self.images:,} of {self.split_images:,} images of split {self.split!r} ({self.subset})"

    def size_text(self) -> str:
        if self.resize == "none":
            return "each prediction at its ground truth's size (resize none: a mismatch is an error)"
        what = ("prediction resized to the ground truth's size" if self.resize == "nearest"
                else "ground truth resized to the prediction's size (not the benchmark protocol)")
        return f"{what} where they differ, nearest (floor rule): {self.resized:,} of {self.images:,} pairs resized"

    def rows(self) -> list[tuple[str, str]]:
        """(setting, value) rows of the report's protocol table."""
        absent = "; ".join({"nan": "nan: a class absent from ground truth and prediction is left out of the means "
                                   "(LIP_SSL)", "zero": "zero: it counts as 0 (SCHP, CE2P, HRNet)"}[a] for a in self.absent)
        skipped = [f"{self.skipped_overlays:,} <id>_overlay.png (the predict command's)"] * bool(self.skipped_overlays) + \
            [f"{self.outside_subset:,} predictions of ids outside the subset"] * bool(self.outside_subset) + \
            [f"{self.hidden:,} hidden entries"] * bool(self.hidden)
        missing = (f"{self.missing_as_background:,} scored as all background (--allow-missing)"
                   if self.missing_as_background else "none")
        return [("predictions", self.predictions), ("ground truth", f"{self.ground_truth} (label set {self.label_set})"),
                ("images", self.images_text()), ("size", self.size_text()), ("absent classes", absent),
                ("missing predictions", missing), ("ignored", "ground-truth pixels of value 255"),
                ("joint error", f"{self.joint_grid}x{self.joint_grid} grid (align-corners sampling), sigma "
                                f"{self.joint_sigma:g}, lipkit.ssl's joints of the label set"),
                ("not in the files", "flip test, test scales, the network's input size: state them with the number"),
                ("skipped", "; ".join(skipped) or "nothing")]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["absent"] = list(self.absent)
        return d


def _pct(v: float | None) -> str:
    return "absent" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


@dataclass
class ScoreReport:
    """Scores (``lipkit.evaluate.summarise``'s dict, exactly as ``evaluate`` gives them) with their protocol."""

    protocol: Protocol
    scores: dict
    label_set: LabelSet
    image_ids: tuple[str, ...] = ()  # the scored ids, in scoring order
    image_confusions: np.ndarray | None = None  # (images, K, K) per image, with score_folder(per_image=True)

    def metrics(self, absent: str = "nan") -> dict[str, float]:
        """pixel acc, mean acc, mIoU, fwIoU (fractions) under one absent rule."""
        source = self.scores if absent == "nan" else self.scores["absent_zero"]
        return {m: source[m] for m in METRICS}

    def iou(self, absent: str = "nan") -> dict[str, float | None]:
        """Per-class IoU in the label set's (the paper's) order; None: absent under "nan", 0 under "zero"."""
        return {c: (v if v is not None or absent == "nan" else 0.0) for c, v in self.scores["iou"].items()}

    def lr_confusion(self) -> float:
        return mean_left_right_confusion(self.scores["left_right_confusion"])

    def row(self, absent: str = "nan") -> dict[str, Any]:
        """One table row: images, the four scores and mean L/R confusion in %, joint error."""
        out: dict[str, Any] = {"images": self.protocol.images}
        out.update({METRIC_NAMES[m]: 100 * v for m, v in self.metrics(absent).items()})
        out["L/R confusion"] = 100 * self.lr_confusion()
        out["joint error"] = self.scores["joint_error"]
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON: ``evaluate --out``'s keys (top level: rule nan; ``absent_zero``: rule zero) plus ``protocol``."""
        return {"protocol": self.protocol.to_dict(), **self.scores}

    def csv_rows(self) -> list[tuple[str, str, str, Any]]:
        """Long-format rows ``(section, name, absent_rule, value)``: protocol, scores, per class, L/R pairs, joints."""
        rows: list[tuple[str, str, str, Any]] = [("protocol", k, "", v if not isinstance(v, list) else "+".join(v))
                                                 for k, v in self.protocol.to_dict().items()]
        for rule in ABSENT_RULES:
            rows += [("score", m, rule, v) for m, v in self.metrics(rule).items()]
            rows += [("iou", c, rule, v) for c, v in self.iou(rule).items()]
        rows += [("accuracy", c, "nan", v) for c, v in self.scores["accuracy"].items()]
        rows += [("left_right_confusion", k, "", v) for k, v in self.scores["left_right_confusion"].items()]
        rows += [("structure", "joint_error", "", self.scores["joint_error"]), ("count", "num_images", "", self.scores["num_images"])]
        return rows

    def write_json(self, path: PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    def write_csv(self, path: PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(("section", "name", "absent_rule", "value"))
            writer.writerows((s, n, r, "" if v is None else v) for s, n, r, v in self.csv_rows())
        return path

    def format(self) -> str:
        """The report: protocol, the paper's table, per-class IoU, left/right confusion, structure consistency."""
        return "\n".join(_protocol_section(self) + _scores_section(self) + _class_section(self) + _lr_section(self)
                         + _structure_section(self))


def _protocol_section(report: ScoreReport) -> list[str]:
    lines = ["## Protocol", "", "| setting | value |", "|---|---|"]
    return lines + [f"| {k} | {v} |" for k, v in report.protocol.rows()] + [""]


def _scores_section(report: ScoreReport) -> list[str]:
    lines = ["## Scores (%), the paper's table", "", "| absent rule | pixel acc | mean acc | mIoU | fwIoU |",
             "|---|---:|---:|---:|---:|"]
    for rule in report.protocol.absent:
        lines.append(f"| {ABSENT_NAMES[rule]} | " + " | ".join(_pct(v) for v in report.metrics(rule).values()) + " |")
    matrix = np.asarray(report.scores["confusion_matrix"])
    no_gt = [c for c, n in zip(report.label_set.classes, matrix.sum(axis=1)) if n == 0]
    if no_gt:
        gap = 100 * (report.metrics("nan")["mean_iou"] - report.metrics("zero")["mean_iou"])
        lines += ["", f"{len(no_gt)} class(es) have no ground-truth pixel in these images ({', '.join(no_gt)}): the two "
                      f"absent rules differ here (mIoU nan - zero = {gap:+.2f} points); say which one a number uses."]
    else:
        lines += ["", "Every class has ground-truth pixels in these images: both absent rules give the same numbers."]
    return lines + [""]


def _class_section(report: ScoreReport) -> list[str]:
    rules = report.protocol.absent
    head = " | ".join(f"IoU, {r}" for r in rules)
    lines = ["## Per-class IoU (%), the paper's class order", "", f"| id | class | {head} | accuracy |",
             "|---:|---|" + "---:|" * (len(rules) + 1)]
    per_rule = [report.iou(r) for r in rules]
    for k, c in enumerate(report.label_set.classes):
        cells = " | ".join(_pct(iou[c]) for iou in per_rule)
        lines.append(f"| {k} | {c} | {cells} | {_pct(report.scores['accuracy'][c])} |")
    return lines + ["", "absent: no ground-truth and no predicted pixel (accuracy: no ground-truth pixel).", ""]


def _lr_section(report: ScoreReport) -> list[str]:
    ls, conf = report.label_set, report.scores["left_right_confusion"]
    if not ls.flip_pairs:
        return ["## Left/right confusion", "", f"Label set {ls.name!r} has no mirror pairs.", ""]
    lines = ["## Left/right confusion (% of each side's ground-truth pixels predicted as its mirror)", "",
             "| pair | left -> right | right -> left |", "|---|---:|---:|"]
    for a, b in ls.flip_pairs:
        la, lb = ls.classes[a], ls.classes[b]
        lines.append(f"| {la} / {lb} | {_pct(conf[f'{la}->{lb}'])} | {_pct(conf[f'{lb}->{la}'])} |")
    mean = report.lr_confusion()
    return lines + ["", f"mean left/right confusion: {_pct(None if math.isnan(mean) else mean)} %", ""]


def _structure_section(report: ScoreReport) -> list[str]:
    err = report.scores["joint_error"]
    if err is None:
        return ["## Structure consistency", "", f"Label set {report.label_set.name!r} has no joints: not computed."]
    return ["## Structure consistency", "",
            f"mean joint error of the predictions against the ground truth's joints: {err:.4f} over "
            f"{report.scores['num_images']:,} images (0: every part centre in place; SSL's L_joint, Gong et al. 2017)"]


# ------------------------------------------------------------------------------------------ predictions
@torch.no_grad()
def predict_folder(model: torch.nn.Module, dataset: Any, out_dir: PathLike, indices: Iterable[int] | None = None, *,
                   flip: bool = False, scales: Sequence[float] = (1.0,), input_size: int | None = None,
                   label_set: LabelSet | str | None = None, progress: bool = True) -> Path:
    """Write ``model``'s prediction for each image of ``dataset`` as ``out_dir/<id>.png`` (the predict command's file).

    ``input_size``: the image is first resized (bilinear) to ``input_size`` x ``input_size``, e.g. the
    training crop, so the prediction has that size, not the image's (to show what scoring it then takes).
    Otherwise predictions are at the image's own size (``lipkit.evaluate.predict_labels``).
    """
    label_set = get_label_set(label_set or dataset.label_set)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    indices = range(len(dataset)) if indices is None else list(indices)
    for i in tqdm(indices, desc="predict", disable=not progress, leave=False):
        x = normalized_tensor(read_image(dataset.image_path(i)))
        if input_size:
            x = F.interpolate(x[None], size=(int(input_size), int(input_size)), mode="bilinear", align_corners=False)[0]
        labels = predict_labels(model, x, scales=scales, flip=flip, label_set=label_set)
        write_label_png(out_dir / f"{dataset.ids[i]}.png", labels, label_set)
    return out_dir


# ------------------------------------------------------------------------------------------ comparing protocols
def compare_protocols(data_root: PathLike, split: str, conventions: Mapping[str, Mapping[str, Any]],
                      label_set: LabelSet | str = "lip"):
    """One row per convention: ``{name: {"folder": DIR, "absent": "nan", **score_folder options}}`` -> DataFrame.

    Columns: images, pixel acc, mean acc, mIoU, fwIoU (%), the mIoU difference to the first row
    (points), mean L/R confusion (%), joint error, and ``note``: for a convention whose inputs raise
    :class:`ScoreError`, NaN scores and what was wrong.
    """
    import pandas as pd  # optional: tables for notebooks only; the command line needs no pandas

    rows = {}
    for name, conv in conventions.items():
        options = {k: v for k, v in conv.items() if k not in ("folder", "absent")}
        try:
            report = score_folder(conv["folder"], data_root, split, label_set, progress=False, **options)
            rows[name] = {**report.row(conv.get("absent", "nan")), "note": ""}
        except ScoreError as err:
            kind = err.problems[0].kind
            count = sum(p.kind == kind for p in err.problems)
            rows[name] = {"note": f"not scored: {count} {PROBLEM_KINDS[kind]}"}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["images"] = table["images"].astype("Int64")
    table.insert(table.columns.get_loc("fwIoU") + 1, "mIoU diff", table["mIoU"] - table["mIoU"].iloc[0])
    return table


def protocol_figure(table, title: str = "One set of predictions, scored under each convention",
                    samples: Iterable[str] = ()):
    """Horizontal bars of mIoU per convention (``compare_protocols``'s table), each labelled with its difference
    to the first row, which is drawn grey and as a dashed reference line. Rows named in ``samples`` score
    other images (a subset), not the same images another way: drawn hatched and labelled "another sample"."""
    from matplotlib.figure import Figure  # optional: figures for notebooks only

    values = table["mIoU"].to_numpy(dtype=float)
    named = {str(name) for name in samples}
    sample = [str(name) in named for name in table.index]
    fig = Figure(figsize=(8, 0.45 * len(table) + 1.4), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(table))[::-1]
    colours = ["0.35"] + ["white" if s else "tab:blue" for s in sample[1:]]
    bars = ax.barh(y, np.nan_to_num(values), color=colours, edgecolor="0.2", linewidth=0.5,
                   hatch=["//" if s else "" for s in sample])
    labels = ["not scored" if np.isnan(v) else f"{v:.2f}" + (f" ({v - values[0]:+.2f})" if k else "")
              + (", another sample" if s else "") for k, (v, s) in enumerate(zip(values, sample))]
    ax.bar_label(bars, labels=labels, fontsize=8, padding=2)
    ax.axvline(values[0], color="0.35", linestyle="--", linewidth=1)
    ax.set_yticks(y, [str(i) for i in table.index], fontsize=8)
    ax.set_xlabel("mIoU (%)")
    ax.set_xlim(0, max(np.nanmax(values) * 1.25, 1.0))
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig


__all__ = ["ABSENT_RULES", "Inventory", "Problem", "Protocol", "RESIZE_RULES", "ScoreError", "ScoreReport",
           "align", "compare_protocols", "format_problems", "load_pair", "palette_to_ids",
           "predict_folder", "protocol_figure", "read_prediction", "resize_nearest", "scan_predictions", "score_folder",
           "select_ids"]
