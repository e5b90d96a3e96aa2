"""Benchmark scores for human parsing: a confusion matrix, the LIP scores, left/right confusion.

Protocol (the paper's Table 2 metrics, as LIP_SSL's evaluation script computes them): one K x K confusion matrix ``C`` over a whole
split (rows = ground truth, columns = prediction), ground-truth ``ignore_index`` (255) excluded.

- pixel accuracy ``sum_i C_ii / sum_ij C_ij``
- class accuracy ``a_i = C_ii / sum_j C_ij``; mean accuracy = mean of ``a_i``
- ``IoU_i = C_ii / (sum_j C_ij + sum_j C_ji - C_ii)``; mean IoU = mean of ``IoU_i``
- frequency-weighted IoU ``sum_i f_i IoU_i`` with ``f_i = sum_j C_ij / sum_ij C_ij``

A class whose ratio is 0/0 is *absent*. Two rules exist in public code and differ on subsets:

- ``absent="nan"`` (LIP_SSL's evaluation script): the ratio is NaN and left out of the means (nanmean).
- ``absent="zero"`` (SCHP / CE2P / HRNet): the denominator is ``max(1, d)``, so the ratio is 0 and counts.

Both give the same numbers on full LIP val, where every class is present.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from lipkit.labels import IGNORE_INDEX, LabelSet

AbsentRule = Literal["nan", "zero"]
_ABSENT_RULES = ("nan", "zero")


def _as_numpy(x: Any, name: str) -> np.ndarray:
    """A numpy view of a torch tensor or array-like (no copy for CPU tensors)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must hold integer class ids, got dtype {arr.dtype}; "
            "take the argmax over the class axis of logits first"
        )
    return arr


def _unsigned_max(a: np.ndarray) -> int:
    """max of ``a`` read as unsigned integers: >= n exactly when some value lies outside [0, n)."""
    if a.dtype.kind == "i":
        a = a.view(a.dtype.str.replace("i", "u"))  # same item size: a view even when strided
    return int(a.max())


class ConfusionMatrix:
    """Accumulates a ``(K, K)`` int64 confusion matrix (rows = ground truth, columns = prediction).

    ``update`` takes predictions and targets of any matching shape (one image, a batch, a whole
    split) as numpy arrays or torch tensors and counts them with one ``np.bincount``.
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        if 0 <= self.ignore_index < self.num_classes:
            raise ValueError(f"ignore_index {ignore_index} collides with a class id (num_classes={num_classes})")
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        k = self.num_classes
        # Target lookup: class id -> row, ignore -> row K (dropped), anything else -> row K+1 (an error).
        size = max(256, self.ignore_index + 1, k)
        self._small = (k + 2) * k <= np.iinfo(np.uint16).max  # index arithmetic fits in uint16
        lut = np.full(size, k + 1, dtype=np.uint16 if self._small else np.int64)
        lut[:k] = np.arange(k)
        if self.ignore_index >= 0:
            lut[self.ignore_index] = k
        self._lut = lut

    def reset(self) -> None:
        """Zero the counts."""
        self.matrix[:] = 0

    def update(self, pred: Any, target: Any) -> "ConfusionMatrix":
        """Count ``pred`` (predicted ids) against ``target`` (ground-truth ids, ``ignore_index`` skipped).

        Raises ValueError for mismatched shapes, predictions outside ``[0, K)`` and targets outside
        ``[0, K)`` that are not ``ignore_index``.
        """
        p = _as_numpy(pred, "pred")
        t = _as_numpy(target, "target")
        if p.shape != t.shape:
            raise ValueError(f"pred and target must have the same shape, got pred {p.shape} and target {t.shape}")
        if p.size == 0:
            return self
        k = self.num_classes
        if _unsigned_max(p) >= k:  # one pass catches negatives too (they read as huge unsigned)
            raise ValueError(
                f"pred holds ids outside [0, {k}) (min {int(p.min())}, max {int(p.max())}); "
                f"num_classes={k} must match the model's outputs"
            )
        lut = self._lut
        if _unsigned_max(t) < lut.size:
            rows = np.take(lut, t)  # uint16 (or int64 for large K), a fresh array
        else:  # ids beyond the table (e.g. a negative ignore_index): same mapping with comparisons
            rows = np.where((t >= 0) & (t < k), t, k + 1).astype(lut.dtype)
            rows[t == self.ignore_index] = k
        rows *= k
        np.add(rows, p, out=rows, casting="unsafe")  # safe: p was checked to lie in [0, K)
        counts = np.bincount(rows.ravel(), minlength=(k + 2) * k)
        bad = counts[(k + 1) * k :].sum()
        if bad:
            t_flat = t.ravel()
            invalid = np.unique(t_flat[((t_flat < 0) | (t_flat >= k)) & (t_flat != self.ignore_index)])
            raise ValueError(
                f"target holds {bad} pixels with ids outside [0, {k}) that are not ignore_index="
                f"{self.ignore_index}: {invalid[:10].tolist()}; check the label set or the ignore value"
            )
        self.matrix += counts[: k * k].reshape(k, k)
        return self

    def _check_compatible(self, other: "ConfusionMatrix") -> None:
        if not isinstance(other, ConfusionMatrix):
            raise TypeError(f"can only merge a ConfusionMatrix, got {type(other).__name__}")
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge confusion matrices of {self.num_classes} and {other.num_classes} classes")

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add ``other``'s counts into this matrix (in place; returns self)."""
        self._check_compatible(other)
        self.matrix += other.matrix
        return self

    def __add__(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        self._check_compatible(other)
        out = ConfusionMatrix(self.num_classes, self.ignore_index)
        out.matrix = self.matrix + other.matrix
        return out

    def copy(self) -> "ConfusionMatrix":
        out = ConfusionMatrix(self.num_classes, self.ignore_index)
        out.matrix = self.matrix.copy()
        return out

    def all_reduce(self) -> "ConfusionMatrix":
        """Sum the matrix over all ranks of an initialised ``torch.distributed`` group (in place).

        A no-op when torch.distributed is unavailable or not initialised. With the NCCL backend the
        counts travel on the current CUDA device.
        """
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        buf = torch.from_numpy(self.matrix.copy()).to(device)
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        self.matrix = buf.cpu().numpy().astype(np.int64)
        return self

    def compute(self, absent: AbsentRule = "nan", label_set: LabelSet | None = None) -> "Scores":
        """The benchmark scores under the given absent-class rule (see the module docstring)."""
        return scores_from_matrix(self.matrix, absent=absent, label_set=label_set)

    def __repr__(self) -> str:
        return f"ConfusionMatrix(num_classes={self.num_classes}, pixels={int(self.matrix.sum())})"


def _ratio(num: np.ndarray, den: np.ndarray, absent: AbsentRule) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    if absent == "zero":
        return num / np.maximum(den, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _mean(values: np.ndarray, absent: AbsentRule) -> float:
    if absent == "zero":
        return float(values.mean()) if values.size else 0.0
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


@dataclass
class Scores:
    """Scores from one confusion matrix. Fractions in [0, 1]; NaN marks an absent class under "nan"."""

    pixel_accuracy: float
    mean_accuracy: float
    mean_iou: float
    frequency_weighted_iou: float
    iou: np.ndarray
    accuracy: np.ndarray
    absent_rule: str
    num_pixels: int = 0
    class_names: tuple[str, ...] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (NaN becomes None); per-class values keyed by class name when known."""

        def num(v: float) -> float | None:
            return None if v is None or math.isnan(v) else float(v)

        def per_class(arr: np.ndarray) -> Any:
            if self.class_names is not None:
                return {name: num(v) for name, v in zip(self.class_names, arr.tolist())}
            return [num(v) for v in arr.tolist()]

        return {
            "pixel_accuracy": num(self.pixel_accuracy),
            "mean_accuracy": num(self.mean_accuracy),
            "mean_iou": num(self.mean_iou),
            "frequency_weighted_iou": num(self.frequency_weighted_iou),
            "iou": per_class(self.iou),
            "accuracy": per_class(self.accuracy),
            "absent_rule": self.absent_rule,
            "num_pixels": int(self.num_pixels),
        }

    def table(self, label_set: LabelSet | None = None):
        """Per-class IoU and accuracy as a pandas DataFrame (one row per class)."""
        import pandas as pd

        names = label_set.classes if label_set is not None else self.class_names
        if names is None:
            names = tuple(str(i) for i in range(len(self.iou)))
        if len(names) != len(self.iou):
            raise ValueError(f"label_set has {len(names)} classes but the scores have {len(self.iou)}")
        return pd.DataFrame({"class": list(names), "iou": self.iou, "accuracy": self.accuracy})


def scores_from_matrix(matrix: np.ndarray, absent: AbsentRule = "nan", label_set: LabelSet | None = None) -> Scores:
    """Scores of a ``(K, K)`` confusion matrix (rows = ground truth) under the absent rule."""
    if absent not in _ABSENT_RULES:
        raise ValueError(f"absent must be one of {_ABSENT_RULES}, got {absent!r}")
    c = np.asarray(matrix, dtype=np.int64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"matrix must be square (K, K), got shape {c.shape}")
    if label_set is not None and label_set.num_classes != c.shape[0]:
        raise ValueError(f"label_set {label_set.name!r} has {label_set.num_classes} classes, matrix has {c.shape[0]}")
    diag = np.diag(c)
    gt = c.sum(axis=1)
    predicted = c.sum(axis=0)
    total = int(c.sum())
    accuracy = _ratio(diag, gt, absent)
    iou = _ratio(diag, gt + predicted - diag, absent)
    pixel_accuracy = float(_ratio(diag.sum(), total, absent))
    # Frequency-weighted IoU: classes without ground-truth pixels have weight 0 under both rules.
    freq = gt / total if total else np.zeros(len(gt))
    fw = float((freq[gt > 0] * iou[gt > 0]).sum()) if total else (0.0 if absent == "zero" else math.nan)
    return Scores(
        pixel_accuracy=pixel_accuracy,
        mean_accuracy=_mean(accuracy, absent),
        mean_iou=_mean(iou, absent),
        frequency_weighted_iou=fw,
        iou=iou,
        accuracy=accuracy,
        absent_rule=absent,
        num_pixels=total,
        class_names=label_set.classes if label_set is not None else None,
    )


def left_right_confusion(matrix: "np.ndarray | ConfusionMatrix", label_set: LabelSet) -> dict[str, float]:
    """For each mirror pair (a, b): the share of a's ground-truth pixels predicted as b, and of b's as a.

    Keys read ``"Left-arm->Right-arm"``; the value is NaN where that side has no ground-truth pixels.
    This is the left/right mix-up the paper's structure-sensitive loss is meant to reduce.
    """
    c = matrix.matrix if isinstance(matrix, ConfusionMatrix) else np.asarray(matrix)
    k = label_set.num_classes
    if c.shape != (k, k):
        raise ValueError(f"matrix has shape {c.shape} but label_set {label_set.name!r} has {k} classes")
    gt = c.sum(axis=1)
    out: dict[str, float] = {}
    for a, b in label_set.flip_pairs:
        for src, dst in ((a, b), (b, a)):
            key = f"{label_set.classes[src]}->{label_set.classes[dst]}"
            out[key] = float(c[src, dst] / gt[src]) if gt[src] > 0 else math.nan
    return out


def mean_left_right_confusion(per_pair: Mapping[str, float | None]) -> float:
    """The one L/R confusion number: the mean of :func:`left_right_confusion`'s finite entries (NaN if none)."""
    values = [v for v in per_pair.values() if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else math.nan


def left_right_coverage(confusion: np.ndarray, label_set: LabelSet) -> float:
    """Share of ground-truth left/right pixels (arms, legs, shoes) predicted as *any* left/right class.

    L/R confusion only means something when this is not near 0: a model that labels no arm at all
    has zero left/right confusion too. NaN when the ground truth has no left/right pixel.
    """
    m = np.asarray(confusion, dtype=np.int64)
    ids = [i for pair in label_set.flip_pairs for i in pair]
    gt = m[ids].sum()
    return float(m[np.ix_(ids, ids)].sum() / gt) if gt else math.nan


__all__ = ["ConfusionMatrix", "Scores", "scores_from_matrix", "left_right_confusion", "left_right_coverage",
           "mean_left_right_confusion", "AbsentRule"]
