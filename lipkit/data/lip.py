"""``LIPDataset``: one split of a LIP-format folder (real LIP, SynthLIP, CIHP-style) as sample dicts.

An item is ``{"image": (H, W, 3) uint8 RGB, "label": (H, W) uint8 ids, "id": str}`` (no ``label``
for the test split) plus ``"pose": (16, 3) float32`` (x, y, v; NaN where not annotated) when
``with_pose=True``; then ``transform(sample)`` if given. Files are read lazily in ``__getitem__``;
every failure raises :class:`LIPDataError` naming the file (``check-data`` finds them all up front).

Pose rows whose id is not in the split are ignored (they are listed in ``unknown_pose_ids``);
ids with no pose row get an all-NaN pose (listed in ``missing_pose_ids``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lipkit.data.io import LIPDataError, PathLike, empty_pose, read_id_list, read_image, read_label, read_pose_csv
from lipkit.data.layout import SplitLayout, check_declared_label_set, resolve_lip
from lipkit.labels import LIP, LabelSet, get_label_set

Sample = dict[str, Any]


class SegmentationDataset:
    """Shared item logic for a resolved split: ids, file paths, reading, size check, pose, transform."""

    def __init__(self, layout: SplitLayout, transform: Callable[[Sample], Any] | None,
                 label_set: LabelSet | str, with_pose: bool = False) -> None:
        self.layout = layout
        self.root = layout.root
        self.split = layout.split
        self.transform = transform
        self.label_set = get_label_set(label_set)
        check_declared_label_set(layout.root, self.label_set.name)
        self.ids: list[str] = read_id_list(layout.id_list)
        self.with_pose = with_pose
        self.poses: dict[str, np.ndarray] = {}
        self.unknown_pose_ids: tuple[str, ...] = ()
        self.missing_pose_ids: tuple[str, ...] = ()
        if with_pose:
            self._load_poses()

    def _load_poses(self) -> None:
        csv = self.layout.pose_csv
        if csv is None:
            looked = ", ".join(str(p) for p in self.layout.pose_candidates) or "(this dataset has no pose annotations)"
            raise LIPDataError(
                f"{self.root}: with_pose=True but no pose CSV for split {self.split!r}; looked for {looked}",
                path=self.layout.pose_candidates[0] if self.layout.pose_candidates else self.root, kind="missing-pose",
            )
        self.poses = read_pose_csv(csv)
        id_set = set(self.ids)
        self.unknown_pose_ids = tuple(sorted(set(self.poses) - id_set))
        self.missing_pose_ids = tuple(i for i in self.ids if i not in self.poses)

    @property
    def has_labels(self) -> bool:
        return self.layout.label_dir is not None

    def __len__(self) -> int:
        return len(self.ids)

    def _index(self, i: int) -> int:
        n = len(self.ids)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a split of {n} images")
        return i % n

    def image_path(self, i: int) -> Path:
        return self.layout.image_dir / f"{self.ids[self._index(i)]}{self.layout.image_ext}"

    def label_path(self, i: int) -> Path:
        if self.layout.label_dir is None:
            raise LIPDataError(f"{self.root}: split {self.split!r} has no labels", path=self.root, kind="missing-label")
        return self.layout.label_dir / f"{self.ids[self._index(i)]}{self.layout.label_ext}"

    def load(self, i: int) -> Sample:
        """The untransformed sample ``i``."""
        i = self._index(i)
        ident = self.ids[i]
        image_path = self.image_path(i)
        sample: Sample = {"image": read_image(image_path), "id": ident}
        if self.has_labels:
            label_path = self.label_path(i)
            label = read_label(label_path, self.label_set)
            if label.shape != sample["image"].shape[:2]:
                h, w = sample["image"].shape[:2]
                lh, lw = label.shape
                raise LIPDataError(
                    f"{label_path}: label is {lw}x{lh} (WxH) but its image {image_path} is {w}x{h}; "
                    "labels must match their image pixel for pixel",
                    path=label_path, kind="size-mismatch",
                )
            sample["label"] = label
        if self.with_pose:
            pose = self.poses.get(ident)
            sample["pose"] = empty_pose() if pose is None else pose.copy()
        return sample

    def __getitem__(self, i: int) -> Any:
        sample = self.load(i)
        return self.transform(sample) if self.transform is not None else sample

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, n={len(self)}, "
                f"layout={self.layout.layout!r}, label_set={self.label_set.name!r})")


class LIPDataset(SegmentationDataset):
    """A LIP split (``"train"``, ``"val"`` or ``"test"``) in the flat or the official nested layout."""

    def __init__(self, root: PathLike, split: str, transform: Callable[[Sample], Any] | None = None,
                 with_pose: bool = False, label_set: LabelSet | str = LIP) -> None:
        super().__init__(resolve_lip(root, split), transform, label_set, with_pose)
