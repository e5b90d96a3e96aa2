"""Find a split's folders and files under a dataset root, whichever of the known layouts it uses.

LIP layouts accepted (``<s>`` is the split, checked in this order; the first match wins):

* flat: ``<root>/<s>_images``, ``<root>/<s>_segmentations``, ``<root>/<s>_id.txt``,
  pose ``<root>/lip_<s>_set.csv``; test images also as ``<root>/testing_images``;
* official: ``<root>/TrainVal_images/<s>_images``,
  ``<root>/TrainVal_parsing_annotations/<s>_segmentations``, id list in ``<root>`` or
  ``TrainVal_images``, pose ``TrainVal_pose_annotations/lip_<s>_set.csv``; test:
  ``Testing_images/testing_images`` with ``Testing_images/test_id.txt``. Each official folder may
  carry one extra level of its own name (``TrainVal_parsing_annotations/TrainVal_parsing_annotations/...``),
  which unzipping the zip-inside-a-zip archives produces.

PASCAL-Person-Part: ``<root>/JPEGImages``, ``<root>/SegmentationPart``, and the id list at the
first of ``<root>/<s>_id.txt``, ``<root>/<s>.txt``, ``<root>/list/<s>_id.txt``, ``<root>/list/<s>.txt``,
``<root>/ImageSets/{Person,Segmentation,Main}/<s>.txt``, ``<root>/ImageSets/<s>.txt``.

A root matching none of these raises :class:`LIPDataError` listing every path looked for.

A root may declare its label set in ``<root>/lipkit_dataset.json`` (``{"label_set": "ccp", ...}``;
``python -m lipkit convert`` writes one): the CLI takes it as the default ``--label-set``, and
reading the root with another label set is refused, since ids of one set read as another's classes
would load without any error and score nonsense.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lipkit.data.io import LIPDataError, PathLike

LIP_SPLITS = ("train", "val", "test")
PASCAL_SPLITS = ("train", "val", "test")
DATASET_INFO = "lipkit_dataset.json"  # a root's declared label set (and where its files came from)


@dataclass(frozen=True)
class SplitLayout:
    """Where one split's files are: ``image_dir``, ``label_dir`` (None for unlabeled test), ``id_list``, ``pose_csv``."""

    root: Path
    split: str
    layout: str  # "flat", "official" or "pascal"
    image_dir: Path
    label_dir: Path | None
    id_list: Path
    pose_csv: Path | None  # None when no pose CSV exists for this split
    pose_candidates: tuple[Path, ...] = ()
    image_ext: str = ".jpg"
    label_ext: str = ".png"


def _nested(root: Path, *parts: str) -> list[Path]:
    """``root/A/rest`` and ``root/A/A/rest`` (the extra level an official archive may add)."""
    head, *rest = parts
    return [root.joinpath(head, *rest), root.joinpath(head, head, *rest)]


def _first(candidates: list[Path], want_dir: bool) -> Path | None:
    for c in candidates:
        if (c.is_dir() if want_dir else c.is_file()):
            return c
    return None


def _check_root(root: PathLike) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        raise LIPDataError(f"{path}: dataset root does not exist", path=path, kind="layout")
    if not path.is_dir():
        raise LIPDataError(f"{path}: dataset root is not a folder", path=path, kind="layout")
    return path


def _check_split(split: str, allowed: tuple[str, ...], root: Path) -> None:
    if split not in allowed:
        raise LIPDataError(f"{root}: unknown split {split!r}; choose one of {', '.join(allowed)}", path=root, kind="split")


def _looked_for(root: Path, what: str, candidates: list[Path]) -> LIPDataError:
    shown = "\n  ".join(str(c.relative_to(root)) for c in candidates)
    return LIPDataError(
        f"{root}: no {what} found; this root matches no known layout. Looked for:\n  {shown}\n"
        "Point the root at the folder that holds the LIP data (flat or official layout; see lipkit.data.layout).",
        path=root, kind="layout",
    )


def lip_image_dirs(root: Path, split: str) -> list[Path]:
    if split == "test":
        return [root / "test_images", root / "testing_images", *_nested(root, "Testing_images", "testing_images")]
    return [root / f"{split}_images", *_nested(root, "TrainVal_images", f"{split}_images")]


def lip_label_dirs(root: Path, split: str) -> list[Path]:
    return [root / f"{split}_segmentations", *_nested(root, "TrainVal_parsing_annotations", f"{split}_segmentations")]


def lip_id_lists(root: Path, split: str, image_dir: Path | None = None) -> list[Path]:
    name = f"{split}_id.txt"
    cands = [root / name]
    if split == "test":
        cands += _nested(root, "Testing_images", name)
    else:
        cands += _nested(root, "TrainVal_images", name)
    if image_dir is not None and image_dir.parent / name not in cands:
        cands.append(image_dir.parent / name)
    return cands


def lip_pose_csvs(root: Path, split: str) -> list[Path]:
    name = f"lip_{split}_set.csv"
    return [root / name, *_nested(root, "TrainVal_pose_annotations", name)]


def resolve_lip(root: PathLike, split: str, labeled: bool | None = None) -> SplitLayout:
    """Locate a LIP split's folders under ``root`` (flat or official layout).

    ``labeled`` defaults to ``split != "test"``; when True a label folder is required.
    """
    root = _check_root(root)
    _check_split(split, LIP_SPLITS, root)
    labeled = split != "test" if labeled is None else labeled
    img_cands = lip_image_dirs(root, split)
    image_dir = _first(img_cands, want_dir=True)
    if image_dir is None:
        also = (lip_label_dirs(root, split) if labeled else []) + lip_id_lists(root, split)
        raise _looked_for(root, f"{split} image folder", img_cands + also)
    label_dir = None
    if labeled:
        lab_cands = lip_label_dirs(root, split)
        label_dir = _first(lab_cands, want_dir=True)
        if label_dir is None:
            raise _looked_for(root, f"{split} label folder", lab_cands)
    id_cands = lip_id_lists(root, split, image_dir)
    id_list = _first(id_cands, want_dir=False)
    if id_list is None:
        shown = ", ".join(str(c.relative_to(root)) for c in id_cands)
        raise LIPDataError(f"{root}: {split} id list not found (looked for {shown}); it lists one image id per line",
                           path=id_cands[0], kind="id-list")
    layout = "flat" if image_dir.parent == root else "official"
    pose_cands = lip_pose_csvs(root, split)
    return SplitLayout(root=root, split=split, layout=layout, image_dir=image_dir, label_dir=label_dir,
                       id_list=id_list, pose_csv=_first(pose_cands, want_dir=False), pose_candidates=tuple(pose_cands))


def pascal_id_lists(root: Path, split: str) -> list[Path]:
    return [
        root / f"{split}_id.txt", root / f"{split}.txt", root / "list" / f"{split}_id.txt", root / "list" / f"{split}.txt",
        root / "ImageSets" / "Person" / f"{split}.txt", root / "ImageSets" / "Segmentation" / f"{split}.txt",
        root / "ImageSets" / "Main" / f"{split}.txt", root / "ImageSets" / f"{split}.txt",
    ]


def is_pascal_root(root: PathLike) -> bool:
    """True when ``root`` has PASCAL-Person-Part's ``JPEGImages/`` and ``SegmentationPart/``."""
    root = Path(root)
    return (root / "JPEGImages").is_dir() and (root / "SegmentationPart").is_dir()


def resolve_pascal(root: PathLike, split: str) -> SplitLayout:
    """Locate a PASCAL-Person-Part split: ``JPEGImages/``, ``SegmentationPart/`` and an id list."""
    root = _check_root(root)
    _check_split(split, PASCAL_SPLITS, root)
    image_dir, label_dir = root / "JPEGImages", root / "SegmentationPart"
    if not image_dir.is_dir() or not label_dir.is_dir():
        raise _looked_for(root, "PASCAL-Person-Part folders", [image_dir, label_dir])
    id_cands = pascal_id_lists(root, split)
    id_list = _first(id_cands, want_dir=False)
    if id_list is None:
        shown = ", ".join(str(c.relative_to(root)) for c in id_cands)
        raise LIPDataError(f"{root}: {split} id list not found (looked for {shown})", path=id_cands[0], kind="id-list")
    return SplitLayout(root=root, split=split, layout="pascal", image_dir=image_dir, label_dir=label_dir,
                       id_list=id_list, pose_csv=None)


def declared_label_set(root: PathLike) -> str | None:
    """The label set ``<root>/lipkit_dataset.json`` names, or None when the root has no such file."""
    path = Path(root).expanduser() / DATASET_INFO
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LIPDataError(f"{path}: cannot read the dataset description ({exc}); fix or delete it",
                           path=path, kind="dataset-info") from None
    name = info.get("label_set") if isinstance(info, dict) else None
    if not isinstance(name, str) or not name:
        raise LIPDataError(f"{path}: no \"label_set\" name in the dataset description; fix or delete it",
                           path=path, kind="dataset-info")
    return name


def check_declared_label_set(root: PathLike, label_set_name: str) -> None:
    """Raise :class:`LIPDataError` when ``root`` declares a label set other than ``label_set_name``."""
    declared = declared_label_set(root)
    if declared is not None and declared.lower().replace("_", "-") != label_set_name:
        path = Path(root).expanduser() / DATASET_INFO
        hint = "; to score a LIP model on it, map its predictions first (lipkit.data.ccp.lip_to_ccp)" \
            if (declared, label_set_name) == ("ccp", "lip") else ""
        raise LIPDataError(
            f"{path}: this dataset's ids are label set {declared!r}, but it is being read as {label_set_name!r}; "
            f"use --label-set {declared} (training: data.label_set={declared}){hint}", path=path, kind="label-set")


def available_splits(root: PathLike) -> list[str]:
    """The LIP (or PASCAL) splits whose image folder and id list exist under ``root``."""
    found = []
    pascal = is_pascal_root(root)
    for split in (PASCAL_SPLITS if pascal else LIP_SPLITS):
        try:
            (resolve_pascal if pascal else resolve_lip)(root, split)
        except LIPDataError:
            continue
        found.append(split)
    return found
