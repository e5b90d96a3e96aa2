"""Clothing Co-Parsing (CCP; Yang, Luo and Lin, CVPR 2014) read as lipkit samples in the ``ccp`` label set.

CCP (a clone of https://github.com/bearpaw/clothing-co-parsing, Apache-2.0) holds 1,004 street
photos ``photos/0001.jpg``... with pixel labels ``annotations/pixel-level/0001.mat`` (``groundtruth``:
uint8 tag ids 0-58) and ``label_list.mat`` (the 59 tag names). :data:`TAG_TABLE` says which
:data:`lipkit.labels.CCP` class each tag becomes and why (docs/ccp.md prints it); :func:`lip_to_ccp`
maps a LIP model's prediction onto the same ids, for scoring a LIP-trained model on CCP zero-shot.

Split (fixed, by id): 0001-0904 train, 0905-1004 val (100 images); 0536 is left out of both, as
every one of its pixels is tagged null although the photo shows a person (a parser that finds her
would be scored wrong everywhere). :class:`CCPDataset` reads a split straight from the clone;
``python -m lipkit convert ccp SRC DST`` writes it in LIP's layout (lipkit.data.ccp_convert).
Every bad file raises :class:`~lipkit.data.io.LIPDataError` naming it and what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from lipkit.data.io import LIPDataError, PathLike, read_image
from lipkit.data.lip import Sample
from lipkit.labels import CCP, LIP

NUM_TAGS = 59
TRAIN_FIRST, TRAIN_LAST = 1, 904  # ids 0001-0904: train
VAL_FIRST, VAL_LAST = 905, 1004  # ids 0905-1004: val (100 images)
UNANNOTATED_IDS: tuple[str, ...] = ("0536",)  # all pixels null: in neither split
CCP_SPLITS = ("train", "val")
PHOTO_DIR = "photos"
LABEL_DIR = "annotations/pixel-level"
LABEL_LIST = "label_list.mat"
GROUNDTRUTH_KEY = "groundtruth"
IGNORE = "ignore"  # TAG_TABLE target for pixels no score counts (the label set's ignore_index, 255)
CLONE = "git clone https://github.com/bearpaw/clothing-co-parsing"


@dataclass(frozen=True)
class TagRule:
    """One CCP tag: its name and id, the ccp class it becomes (or :data:`IGNORE`) and why."""

    tag: str
    tag_id: int
    target: str
    reason: str


_SHOE = "a shoe; CCP has no left/right, so LIP's Left-shoe and Right-shoe meet in Shoes"
_TOP = "a top worn on the torso: LIP's Upper-clothes"
_OUTER = "an outer layer worn open or over a top: LIP's Coat"
_PANTS = "trousers (LIP's Pants covers shorts and jeans too)"
_CARRIED = ("carried, not worn: LIP has no bag class and does not say whether its annotators drew bags as "
            "background or as the garment behind, so neither answer is scored")
_JEWEL = "jewellery: no LIP class; a few pixels on skin or clothes, so not scored rather than guessed"
_UNDER = "underwear or swimwear: no LIP class, and one tag may cover top and bottom; rare in CCP"
_LEGWEAR = ("legwear over the legs: no LIP class; a LIP annotator draws it as leg or as pants depending on "
            "how opaque it is, so neither answer is scored")

_RULES: tuple[tuple[str, str, str], ...] = (
    ("null", "Background", "CCP's unlabelled pixels: the scene around the person"),
    ("accessories", IGNORE, "a catch-all tag for small worn or carried items: no LIP class, no fixed place on the body"),
    ("bag", IGNORE, _CARRIED),
    ("belt", IGNORE, "no LIP class; a thin strip between top and bottom that LIP's classes would split between them"),
    ("blazer", "Coat", _OUTER),
    ("blouse", "Upper-clothes", _TOP),
    ("bodysuit", IGNORE, "a one-piece worn as a top with separate trousers or skirt in some photos and alone "
                         "to mid-thigh in others (evidence table): Upper-clothes, Jumpsuits or Dress by photo"),
    ("boots", "Shoes", _SHOE),
    ("bra", IGNORE, _UNDER),
    ("bracelet", IGNORE, _JEWEL),
    ("cape", "Coat", _OUTER),
    ("cardigan", "Coat", _OUTER),
    ("clogs", "Shoes", _SHOE),
    ("coat", "Coat", "same meaning"),
    ("dress", "Dress", "same meaning"),
    ("earrings", IGNORE, _JEWEL),
    ("flats", "Shoes", _SHOE),
    ("glasses", "Sunglasses", "eyewear: LIP's Sunglasses is its only eyewear class"),
    ("gloves", "Glove", "same meaning"),
    ("hair", "Hair", "same meaning"),
    ("hat", "Hat", "same meaning"),
    ("heels", "Shoes", _SHOE),
    ("hoodie", "Upper-clothes", _TOP),
    ("intimate", IGNORE, _UNDER),
    ("jacket", "Coat", _OUTER),
    ("jeans", "Pants", _PANTS),
    ("jumper", "Upper-clothes", "a sweater (British sense): it ends where shirts end, not where dresses do (evidence table)"),
    ("leggings", IGNORE, _LEGWEAR + "; often worn under a skirt or dress (evidence table)"),
    ("loafers", "Shoes", _SHOE),
    ("necklace", IGNORE, _JEWEL),
    ("panties", IGNORE, _UNDER),
    ("pants", "Pants", _PANTS),
    ("pumps", "Shoes", _SHOE),
    ("purse", IGNORE, _CARRIED),
    ("ring", IGNORE, _JEWEL),
    ("romper", "Jumpsuits", "a one-piece of top and shorts: LIP's Jumpsuits"),
    ("sandals", "Shoes", _SHOE),
    ("scarf", "Scarf", "same meaning"),
    ("shirt", "Upper-clothes", _TOP),
    ("shoes", "Shoes", _SHOE),
    ("shorts", "Pants", _PANTS),
    ("skin", "Skin", "face, neck, arms and legs in one tag: LIP's Face, arms and legs cannot be told apart in it"),
    ("skirt", "Skirt", "same meaning"),
    ("sneakers", "Shoes", _SHOE),
    ("socks", "Socks", "same meaning"),
    ("stockings", IGNORE, _LEGWEAR),
    ("suit", "Coat", "the suit jacket: the tag ends where jackets end, and most of its images tag the trousers "
                     "separately (evidence table)"),
    ("sunglasses", "Sunglasses", "same meaning"),
    ("sweater", "Upper-clothes", _TOP),
    ("sweatshirt", "Upper-clothes", _TOP),
    ("swimwear", IGNORE, _UNDER),
    ("t-shirt", "Upper-clothes", _TOP),
    ("tie", IGNORE, "no LIP class; lies on the shirt, but whether LIP annotators drew it into Upper-clothes is unknown"),
    ("tights", IGNORE, "used inconsistently: opaque trousers in some photos, patches on a top in others (it sits "
                       "high on the body on average: evidence table)"),
    ("top", "Upper-clothes", _TOP),
    ("vest", "Upper-clothes", "a sleeveless top or waistcoat (no sleeves, unlike LIP's Coat): Upper-clothes"),
    ("wallet", IGNORE, _CARRIED),
    ("watch", IGNORE, _JEWEL),
    ("wedges", "Shoes", _SHOE),
)

TAG_TABLE: tuple[TagRule, ...] = tuple(TagRule(tag, i, target, reason) for i, (tag, target, reason) in enumerate(_RULES))
TAG_NAMES: tuple[str, ...] = tuple(rule.tag for rule in TAG_TABLE)


def _target_id(target: str) -> int:
    return CCP.ignore_index if target == IGNORE else CCP.index(target)


TAG_TO_CCP: np.ndarray = np.array([_target_id(rule.target) for rule in TAG_TABLE], dtype=np.uint8)
TAG_TO_CCP.setflags(write=False)

# LIP's 20 classes -> ccp classes. CCP lacks only LIP's sides and its split of skin into face, arms
# and legs; every LIP class has a ccp class of the same meaning, so none maps to ignore.
LIP_TO_CCP: dict[str, str] = {
    "Background": "Background", "Hat": "Hat", "Hair": "Hair", "Glove": "Glove", "Sunglasses": "Sunglasses",
    "Upper-clothes": "Upper-clothes", "Dress": "Dress", "Coat": "Coat", "Socks": "Socks", "Pants": "Pants",
    "Jumpsuits": "Jumpsuits", "Scarf": "Scarf", "Skirt": "Skirt",  # the 13 shared classes keep name and id
    "Face": "Skin", "Left-arm": "Skin", "Right-arm": "Skin", "Left-leg": "Skin", "Right-leg": "Skin",
    "Left-shoe": "Shoes", "Right-shoe": "Shoes",
}


def _lip_lut() -> np.ndarray:
    lut = np.full(256, CCP.ignore_index, dtype=np.uint8)
    for lip_id, name in enumerate(LIP.classes):
        lut[lip_id] = CCP.index(LIP_TO_CCP[name])
    lut.setflags(write=False)
    return lut


LIP_TO_CCP_LUT: np.ndarray = _lip_lut()


def lip_to_ccp(pred: np.ndarray) -> np.ndarray:
    """A LIP id map (prediction or label) as ccp ids: face, arms, legs -> Skin, shoes -> Shoes; 255 stays 255."""
    pred = np.asarray(pred)
    if not np.issubdtype(pred.dtype, np.integer):
        raise ValueError(f"lip_to_ccp expects integer LIP ids 0..{LIP.num_classes - 1} (or 255), got dtype {pred.dtype}")
    bad = np.setdiff1d(np.unique(pred), [*range(LIP.num_classes), LIP.ignore_index])
    if bad.size:
        raise ValueError(f"lip_to_ccp: values {bad[:10].tolist()} are not LIP ids (0..{LIP.num_classes - 1} or 255)")
    return LIP_TO_CCP_LUT[pred.astype(np.uint8)]


def split_ids(split: str) -> list[str]:
    """The ids of a CCP split (``train``: 0001-0904 less 0536, ``val``: 0905-1004), as 4-digit strings."""
    if split not in CCP_SPLITS:
        raise ValueError(f"unknown CCP split {split!r}; choose one of {', '.join(CCP_SPLITS)}")
    first, last = (TRAIN_FIRST, TRAIN_LAST) if split == "train" else (VAL_FIRST, VAL_LAST)
    return [f"{i:04d}" for i in range(first, last + 1) if f"{i:04d}" not in UNANNOTATED_IDS]


def photo_path(src: PathLike, ident: str) -> Path:
    return Path(src) / PHOTO_DIR / f"{ident}.jpg"


def mat_path(src: PathLike, ident: str) -> Path:
    return Path(src) / LABEL_DIR / f"{ident}.mat"


def _loadmat(path: Path, what: str) -> dict[str, Any]:
    """``scipy.io.loadmat`` with every failure turned into a LIPDataError naming the file."""
    kind = what.replace(" ", "-")
    if not path.is_file():
        state = "is a folder" if path.is_dir() else "not found"
        raise LIPDataError(f"{path}: CCP {what} {state}; restore it from a fresh `{CLONE}`",
                           path=path, kind=f"missing-{kind}")
    try:
        return scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError, zlib.error, MatReadError...
        raise LIPDataError(f"{path}: cannot read CCP {what} as a MATLAB file ({type(exc).__name__}: {exc}); "
                           f"restore it from a fresh `{CLONE}`", path=path, kind=f"unreadable-{kind}") from None


def read_label_list(path: PathLike) -> tuple[str, ...]:
    """The 59 tag names of ``label_list.mat``; raises unless they are the ones :data:`TAG_TABLE` maps."""
    path = Path(path)
    data = _loadmat(path, "label list")
    try:
        names = tuple(str(np.asarray(x).ravel()[0]).strip() for x in np.asarray(data["label_list"]).ravel())
    except (KeyError, IndexError, TypeError, ValueError):
        raise LIPDataError(f"{path}: no 'label_list' cell array of tag names in it; restore it from a fresh `{CLONE}`",
                           path=path, kind="label-list") from None
    if names != TAG_NAMES:
        diff = next((i for i, (a, b) in enumerate(zip(names, TAG_NAMES)) if a != b), min(len(names), NUM_TAGS))
        got = names[diff] if diff < len(names) else "(missing)"
        raise LIPDataError(
            f"{path}: {len(names)} tag names, not CCP's {NUM_TAGS} (first difference: id {diff} is {got!r}, "
            f"expected {TAG_NAMES[diff] if diff < NUM_TAGS else '(none)'!r}); lipkit's mapping fits "
            f"bearpaw/clothing-co-parsing's label_list.mat only", path=path, kind="label-list")
    return names


def read_tags(path: PathLike) -> np.ndarray:
    """The ``(H, W)`` uint8 tag ids (0-58) of a CCP pixel-level ``.mat``, checked."""
    path = Path(path)
    data = _loadmat(path, "label")
    if GROUNDTRUTH_KEY not in data:
        keys = ", ".join(k for k in data if not k.startswith("__")) or "none"
        raise LIPDataError(f"{path}: no '{GROUNDTRUTH_KEY}' array in this .mat (variables: {keys}); a CCP "
                           f"pixel-level label holds one; restore it from a fresh `{CLONE}`", path=path, kind="label-mat")
    tags = np.asarray(data[GROUNDTRUTH_KEY])
    if tags.ndim != 2 or not np.issubdtype(tags.dtype, np.integer):
        raise LIPDataError(f"{path}: '{GROUNDTRUTH_KEY}' is a {tags.dtype} array of shape {tags.shape}, "
                           "not an (H, W) integer map of tag ids", path=path, kind="label-mat")
    bad = np.unique(tags[(tags < 0) | (tags >= NUM_TAGS)])
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:10]) + (" ..." if bad.size > 10 else "")
        raise LIPDataError(f"{path}: tag ids {shown} are outside CCP's 0-{NUM_TAGS - 1} (label_list.mat); "
                           f"the file is damaged or not from CCP: restore it from a fresh `{CLONE}`",
                           path=path, kind="label-values")
    return tags.astype(np.uint8)


def tags_to_ccp(tags: np.ndarray) -> np.ndarray:
    """CCP tag ids (0-58) as ccp class ids (0-14, 255 = ignore), by :data:`TAG_TABLE`."""
    tags = np.asarray(tags)
    if tags.size and (tags.min() < 0 or tags.max() >= NUM_TAGS):
        raise ValueError(f"tags_to_ccp: tag ids must lie in 0..{NUM_TAGS - 1}, got {int(tags.min())}..{int(tags.max())}")
    return TAG_TO_CCP[tags.astype(np.intp)]


def read_ccp_label(path: PathLike) -> np.ndarray:
    """A CCP ``.mat`` label as ``(H, W)`` uint8 ccp ids."""
    return tags_to_ccp(read_tags(path))


def read_photo(path: PathLike) -> np.ndarray:
    """A CCP photo as ``(H, W, 3)`` uint8 RGB; a missing one is named with what to do."""
    path = Path(path)
    if not path.is_file():
        raise LIPDataError(f"{path}: CCP photo not found (every label needs its photo); restore it from a fresh "
                           f"`{CLONE}`", path=path, kind="missing-image")
    return read_image(path)


def check_size(label: np.ndarray, label_path: Path, image_hw: tuple[int, int], image_path: Path) -> None:
    """Raise unless ``label`` has the photo's height and width."""
    if tuple(label.shape[:2]) != tuple(image_hw):
        (lh, lw), (h, w) = label.shape[:2], image_hw
        raise LIPDataError(f"{label_path}: label is {lw}x{lh} (WxH) but its photo {image_path} is {w}x{h}; "
                           f"CCP labels match their photo pixel for pixel: restore both from a fresh `{CLONE}`",
                           path=label_path, kind="size-mismatch")


def check_source(src: PathLike) -> Path:
    """``src`` as a Path when it is a CCP clone (photos/, annotations/pixel-level/, a valid label_list.mat)."""
    root = Path(src).expanduser()
    if not root.is_dir():
        state = "does not exist" if not root.exists() else "is not a folder"
        raise LIPDataError(f"{root}: {state}; point SRC at a Clothing Co-Parsing folder (`{CLONE}`)",
                           path=root, kind="not-ccp")
    missing = [p for p in (PHOTO_DIR, LABEL_DIR) if not (root / p).is_dir()]
    if missing or not (root / LABEL_LIST).exists():
        missing += [] if (root / LABEL_LIST).exists() else [LABEL_LIST]
        raise LIPDataError(f"{root}: not a Clothing Co-Parsing folder (no {', '.join(missing)}); point SRC at a "
                           f"clone of the authors' repository (`{CLONE}`)", path=root, kind="not-ccp")
    read_label_list(root / LABEL_LIST)
    return root


class CCPDataset:
    """A CCP split read straight from a clone; items as :class:`~lipkit.data.LIPDataset` (``image``, ``label``, ``id``)."""

    def __init__(self, root: PathLike, split: str, transform: Callable[[Sample], Any] | None = None) -> None:
        self.root = check_source(root)
        self.split = split
        self.ids: list[str] = split_ids(split)
        self.transform = transform
        self.label_set = CCP
        self.has_labels = True

    def __len__(self) -> int:
        return len(self.ids)

    def image_path(self, i: int) -> Path:
        return photo_path(self.root, self.ids[i])

    def label_path(self, i: int) -> Path:
        return mat_path(self.root, self.ids[i])

    def load(self, i: int) -> Sample:
        """The untransformed sample ``i``: the photo and its ccp ids (checked to match in size)."""
        image = read_photo(self.image_path(i))
        label = read_ccp_label(self.label_path(i))
        check_size(label, self.label_path(i), image.shape[:2], self.image_path(i))
        return {"image": image, "label": label, "id": self.ids[i]}

    def __getitem__(self, i: int) -> Any:
        sample = self.load(i)
        return self.transform(sample) if self.transform is not None else sample

    def __repr__(self) -> str:
        return f"CCPDataset(root={str(self.root)!r}, split={self.split!r}, n={len(self)}, label_set='ccp')"


__all__ = ["CCPDataset", "LIP_TO_CCP", "TAG_TABLE", "TAG_TO_CCP", "TagRule", "check_size", "check_source",
           "lip_to_ccp", "read_ccp_label", "read_label_list", "read_photo", "read_tags", "split_ids", "tags_to_ccp"]
