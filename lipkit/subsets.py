"""A subset of val images is another sample, not a smaller copy: random subsets of the same size.

Scoring "the first 2,000 of LIP's 10,000 val images" changes the number for two reasons at once:
which images are scored, and how many. :func:`spread_of_subsets` separates the first from a protocol
effect: it draws random subsets of the same N from per-image confusion matrices
(``lipkit.score.score_folder(per_image=True)``) and says where a given subset, such as the first N,
falls among them. A subset inside that spread differs from the full split by sampling alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lipkit.data.io import PathLike
from lipkit.labels import LabelSet
from lipkit.metrics import scores_from_matrix
from lipkit.score import ABSENT_RULES, score_folder


@dataclass(frozen=True, eq=False)
class SubsetSpread:
    """The mIoU of random subsets of ``n`` of ``images`` scored images, and where one given subset falls.

    Fractions in [0, 1], as the scores. ``draws[r]`` is the mIoU of random subset ``r``, whose image
    indices (into the scored images, in scoring order) are ``subsets[r]``; ``full`` is all images'.
    """

    n: int
    images: int
    seed: int
    absent: str
    full: float
    subset: float  # mIoU of the given subset
    subset_name: str  # e.g. "first 100"
    draws: np.ndarray  # (repeats,)
    subsets: np.ndarray  # (repeats, n) image indices

    @property
    def repeats(self) -> int:
        return len(self.draws)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The central ``level`` share of the random subsets' mIoU (percentiles, linear interpolation)."""
        if not 0 < level < 1:
            raise ValueError(f"level={level}: a share between 0 and 1")
        lo, hi = np.percentile(self.draws, [50 * (1 - level), 50 * (1 + level)])
        return float(lo), float(hi)

    def inside(self, level: float = 0.95) -> bool:
        """Whether the given subset's mIoU lies in the central ``level`` share of the random subsets'."""
        lo, hi = self.interval(level)
        return lo <= self.subset <= hi

    @property
    def below(self) -> float:
        """Share of random subsets scoring lower than the given subset (its percentile / 100)."""
        return float(np.mean(self.draws < self.subset))

    @property
    def as_far(self) -> float:
        """Two-sided: share of random subsets at least as far from ``full`` as the given subset is."""
        return float(np.mean(np.abs(self.draws - self.full) >= abs(self.subset - self.full)))


def _check_counts(n: int, repeats: int, images: int | None = None) -> tuple[int, int]:
    """``(n, repeats)`` as ints, after checking them (ValueError naming the parameter)."""
    if int(n) != n or n < 1 or (images is not None and n > images):
        raise ValueError(f"n={n}: a subset holds 1 to {images if images is not None else 'all the'} images "
                         "(the images scored)")
    if int(repeats) != repeats or repeats < 1:
        raise ValueError(f"repeats={repeats}: draw at least one random subset")
    return int(n), int(repeats)


def spread_of_subsets(confusions: np.ndarray, n: int, repeats: int = 200, seed: int = 0,
                      subset: Sequence[int] | None = None, absent: str = "nan",
                      subset_name: str | None = None) -> SubsetSpread:
    """The mIoU of ``repeats`` random subsets of ``n`` images, and where ``subset`` (default: the first ``n``) falls.

    Why: any ``n`` images score differently from the whole split because they are another sample,
    whatever the protocol; only a subset outside the spread of random subsets of the same size says
    something about *which* images were chosen. ``confusions``: per-image ``(images, K, K)`` matrices
    (``score_folder(per_image=True)``). Each random subset is ``n`` distinct images drawn by
    ``numpy.random.default_rng(seed)``; its mIoU is that of the sum of its images' matrices under
    ``absent`` (``lipkit.metrics.scores_from_matrix``, the split's own rule), as the reference scores a split.
    """
    matrices = np.asarray(confusions, dtype=np.int64)
    if matrices.ndim != 3 or matrices.shape[1] != matrices.shape[2]:
        raise ValueError(f"confusions: (images, K, K) per-image confusion matrices expected, "
                         f"got shape {matrices.shape}")
    images = len(matrices)
    n, repeats = _check_counts(n, repeats, images)
    if absent not in ABSENT_RULES:
        raise ValueError(f"absent={absent!r}: one of {', '.join(ABSENT_RULES)}")
    chosen = np.arange(n) if subset is None else np.asarray(subset, dtype=np.int64)
    if chosen.shape != (n,) or len(np.unique(chosen)) != n or chosen.min() < 0 or chosen.max() >= images:
        raise ValueError(f"subset: {n} distinct image indices in 0..{images - 1} expected, "
                         f"got {chosen.ravel().tolist()[:10]}")

    def miou(idx: np.ndarray) -> float:
        return scores_from_matrix(matrices[idx].sum(axis=0), absent).mean_iou

    rng = np.random.default_rng(seed)
    subsets = np.stack([rng.choice(images, size=n, replace=False) for _ in range(repeats)])
    name = subset_name or (f"first {n}" if subset is None else f"{n} given images")
    return SubsetSpread(n, images, seed, absent, miou(np.arange(images)), miou(chosen), name,
                        np.array([miou(idx) for idx in subsets]), subsets)


def subset_spread(pred_dir: PathLike, data_root: PathLike, split: str = "val", label_set: LabelSet | str = "lip", *,
                  n: int, repeats: int = 200, seed: int = 0, subset_ids: Sequence[str] | None = None,
                  absent: str = "nan", **options: Any) -> SubsetSpread:
    """:func:`spread_of_subsets` of a prediction folder: its images are scored once (:func:`score_folder`
    with ``per_image=True`` and ``options``: resize, max_images, ids_file, ...), then subsets are drawn.

    ``subset_ids``: the ids of the subset to place, default the first ``n`` scored ids ("first N").
    """
    _check_counts(n, repeats)
    options.setdefault("progress", False)
    report = score_folder(pred_dir, data_root, split, label_set, per_image=True, **options)
    subset, name = None, None
    if subset_ids is not None:
        position = {ident: k for k, ident in enumerate(report.image_ids)}
        unknown = [i for i in subset_ids if i not in position]
        if unknown:
            raise ValueError(f"subset_ids: {len(unknown)} id(s) not among the scored images, e.g. {unknown[:3]}")
        subset, name = [position[i] for i in subset_ids], f"{len(subset_ids)} given ids"
    return spread_of_subsets(report.image_confusions, n, repeats, seed, subset, absent, name)


def subset_figure(spreads: SubsetSpread | Sequence[SubsetSpread], level: float = 0.95, title: str | None = None):
    """One panel per spread: a histogram of the random subsets' mIoU (%), their central ``level`` share
    shaded, the full split's mIoU (grey, dashed) and the given subset's (red)."""
    from matplotlib.figure import Figure  # optional: figures for notebooks only

    spreads = [spreads] if isinstance(spreads, SubsetSpread) else list(spreads)
    fig = Figure(figsize=(4.4 * len(spreads) + 0.4, 3.4), layout="constrained")
    axes = fig.subplots(1, len(spreads), squeeze=False)[0]
    for ax, s in zip(axes, spreads):
        lo, hi = s.interval(level)
        ax.axvspan(100 * lo, 100 * hi, color="tab:blue", alpha=0.12,
                   label=f"central {level:.0%}: {100 * lo:.2f}-{100 * hi:.2f}")
        ax.hist(100 * s.draws, bins=min(30, max(5, s.repeats // 8)), color="tab:blue", edgecolor="white", linewidth=0.5,
                label=f"{s.repeats} random subsets of {s.n}")
        ax.axvline(100 * s.full, color="0.35", linestyle="--", label=f"all {s.images} images: {100 * s.full:.2f}")
        ax.axvline(100 * s.subset, color="tab:red", linewidth=2, label=f"{s.subset_name}: {100 * s.subset:.2f}")
        ax.set_xlabel(f"mIoU (%), absent rule {s.absent}")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("random subsets")
    fig.suptitle(title or f"mIoU of random subsets of {spreads[0].n} of {spreads[0].images} images", fontsize=10)
    return fig


__all__ = ["SubsetSpread", "spread_of_subsets", "subset_figure", "subset_spread"]
