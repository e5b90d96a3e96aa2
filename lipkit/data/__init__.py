"""lipkit's data layer: LIP-format files, datasets, joint transforms and dataset validation."""

from pathlib import Path

from lipkit.data.io import (
    LIPDataError,
    PathLike,
    colors_to_ids,
    read_id_list,
    read_image,
    read_label,
    read_pose_csv,
    write_label_png,
    write_pose_csv,
)
from lipkit.data.layout import SplitLayout, is_pascal_root, resolve_lip, resolve_pascal
from lipkit.data.lip import LIPDataset, SegmentationDataset
from lipkit.data.pascal import PascalPersonPartDataset
from lipkit.labels import PASCAL_PERSON_PART, LabelSet, get_label_set


def open_split(root: PathLike, split: str, label_set: LabelSet | str) -> SegmentationDataset:
    """One split of the dataset under ``root``, read the way its label set's files are laid out.

    ``pascal-person-part`` reads a PASCAL-Person-Part root (``JPEGImages/`` + ``SegmentationPart/``)
    with :class:`PascalPersonPartDataset`; every other label set (lip, cihp, atr) reads a LIP-layout
    root with :class:`LIPDataset`. Training (``build_data``) calls this so that a config's
    ``data.label_set`` alone decides how the files are found. A root of the wrong layout raises
    :class:`LIPDataError` naming the root, the label set and the layout expected.
    """
    label_set = get_label_set(label_set)
    path = Path(root).expanduser()
    if label_set.name == PASCAL_PERSON_PART.name:
        if not is_pascal_root(path):
            state = "does not exist" if not path.exists() else "has no JPEGImages/ and SegmentationPart/ folders"
            raise LIPDataError(
                f"{path}: label set {label_set.name!r} expects a PASCAL-Person-Part root "
                f"(JPEGImages/, SegmentationPart/ and a {split} id list such as {split}_id.txt), but {path} {state}"
                + ("; it looks like a LIP-layout root: use label set lip, cihp or atr for it" if _has_lip_split(path, split) else ""),
                path=path, kind="layout")
        return PascalPersonPartDataset(path, split)
    try:
        return LIPDataset(root, split, label_set=label_set)
    except LIPDataError as exc:
        if exc.kind == "layout" and is_pascal_root(path):
            raise LIPDataError(f"{exc}\n{path} is a PASCAL-Person-Part root (JPEGImages/, SegmentationPart/): "
                               f"label set {label_set.name!r} expects the LIP layout; use label set "
                               f"{PASCAL_PERSON_PART.name!r} for this root", path=exc.path, kind=exc.kind) from exc
        raise


def _has_lip_split(root: Path, split: str) -> bool:
    try:
        resolve_lip(root, split)
    except LIPDataError:
        return False
    return True


__all__ = [
    "LIPDataError",
    "LIPDataset",
    "PascalPersonPartDataset",
    "SegmentationDataset",
    "SplitLayout",
    "colors_to_ids",
    "open_split",
    "read_id_list",
    "read_image",
    "read_label",
    "read_pose_csv",
    "resolve_lip",
    "resolve_pascal",
    "write_label_png",
    "write_pose_csv",
]
