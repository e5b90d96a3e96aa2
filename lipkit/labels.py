"""Label sets of the human-parsing datasets lipkit reads, and the LIP pose joints.

Ids, names, palettes and mirror pairs follow the LIP authors' releases (LIP_SSL, JPPNet, CIHP_PGN)
and mmsegmentation; ``ccp`` is lipkit's own reading of Clothing Co-Parsing in LIP's terms. Left and right are the
*person's own* sides, so a horizontal flip of an image must swap each mirror pair in its label.

This module imports nothing else from lipkit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

IGNORE_INDEX = 255


@dataclass(frozen=True)
class LabelSet:
    """A dataset's classes: names, RGB palette and the pairs a horizontal flip swaps."""

    name: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...] = ()
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        if len(self.classes) != len(self.palette):
            raise ValueError(f"label set {self.name!r}: {len(self.classes)} classes but {len(self.palette)} colours")
        if len(set(self.palette)) != len(self.palette):
            raise ValueError(f"label set {self.name!r}: palette colours must be distinct")
        seen: set[int] = set()
        for a, b in self.flip_pairs:
            for i in (a, b):
                if not 0 <= i < len(self.classes) or i in seen:
                    raise ValueError(f"label set {self.name!r}: bad flip pair ({a}, {b})")
                seen.add(i)
        if 0 <= self.ignore_index < len(self.classes):
            raise ValueError(f"label set {self.name!r}: ignore_index {self.ignore_index} collides with a class id")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @cached_property
    def flip_permutation(self) -> tuple[int, ...]:
        """``perm[i]`` is the id class ``i`` becomes in a mirrored image (identity for unpaired ids)."""
        perm = list(range(self.num_classes))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return tuple(perm)

    @cached_property
    def flip_lut(self) -> np.ndarray:
        """A 256-entry uint8 lookup table mapping every label byte to its mirror (255 stays 255)."""
        lut = np.arange(256, dtype=np.uint8)
        lut[: self.num_classes] = self.flip_permutation
        return lut

    @cached_property
    def palette_array(self) -> np.ndarray:
        """The palette as a ``(K, 3)`` uint8 array (row = class id)."""
        arr = np.asarray(self.palette, dtype=np.uint8)
        arr.setflags(write=False)
        return arr

    def index(self, class_name: str) -> int:
        """The id of ``class_name`` (case-insensitive)."""
        lowered = [c.lower() for c in self.classes]
        try:
            return lowered.index(class_name.lower())
        except ValueError:
            raise KeyError(f"label set {self.name!r} has no class {class_name!r}; classes: {', '.join(self.classes)}") from None


LIP = LabelSet(
    name="lip",
    classes=(
        "Background", "Hat", "Hair", "Glove", "Sunglasses", "Upper-clothes", "Dress", "Coat",
        "Socks", "Pants", "Jumpsuits", "Scarf", "Skirt", "Face", "Left-arm", "Right-arm",
        "Left-leg", "Right-leg", "Left-shoe", "Right-shoe",
    ),
    palette=(
        (0, 0, 0), (128, 0, 0), (255, 0, 0), (0, 85, 0), (170, 0, 51), (255, 85, 0), (0, 0, 85),
        (0, 119, 221), (85, 85, 0), (0, 85, 85), (85, 51, 0), (52, 86, 128), (0, 128, 0),
        (0, 0, 255), (51, 170, 221), (0, 255, 255), (85, 255, 170), (170, 255, 85),
        (255, 255, 0), (255, 170, 0),
    ),
    flip_pairs=((14, 15), (16, 17), (18, 19)),
)

# CIHP: LIP's ids and colours, except id 10 which is torso skin instead of jumpsuits.
CIHP = LabelSet(
    name="cihp",
    classes=LIP.classes[:10] + ("Torso-skin",) + LIP.classes[11:],
    palette=LIP.palette,
    flip_pairs=LIP.flip_pairs,
)

ATR = LabelSet(
    name="atr",
    classes=(
        "Background", "Hat", "Hair", "Sunglasses", "Upper-clothes", "Skirt", "Pants", "Dress",
        "Belt", "Left-shoe", "Right-shoe", "Face", "Left-leg", "Right-leg", "Left-arm",
        "Right-arm", "Bag", "Scarf",
    ),
    # The LIP colour of the same garment where LIP has one; Belt and Bag get colours of their own.
    palette=(
        (0, 0, 0), (128, 0, 0), (255, 0, 0), (170, 0, 51), (255, 85, 0), (0, 128, 0),
        (0, 85, 85), (0, 0, 85), (85, 51, 0), (255, 255, 0), (255, 170, 0), (0, 0, 255),
        (85, 255, 170), (170, 255, 85), (51, 170, 221), (0, 255, 255), (85, 85, 0), (52, 86, 128),
    ),
    flip_pairs=((9, 10), (12, 13), (14, 15)),
)

# PASCAL-Person-Part: no left/right classes, so a flip swaps nothing. Colours: PASCAL VOC's palette.
PASCAL_PERSON_PART = LabelSet(
    name="pascal-person-part",
    classes=("Background", "Head", "Torso", "Upper-arms", "Lower-arms", "Upper-legs", "Lower-legs"),
    palette=((0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128), (0, 128, 128)),
)

# Clothing Co-Parsing (CCP) read as LIP-style classes: LIP's ids, names and colours for the 13
# classes whose meaning CCP shares (0-12), then Skin (CCP's one "skin" tag: face, neck, arms and legs
# at once) and Shoes (ten shoe tags, no side). CCP has no left/right, so a flip swaps nothing. Which of
# CCP's 59 tags becomes which class, and why: lipkit.data.ccp.TAG_TABLE and docs/ccp.md.
CCP = LabelSet(
    name="ccp",
    classes=LIP.classes[:13] + ("Skin", "Shoes"),
    palette=LIP.palette[:13] + ((255, 204, 153), (153, 0, 255)),
)

LABEL_SETS: dict[str, LabelSet] = {ls.name: ls for ls in (LIP, CIHP, ATR, PASCAL_PERSON_PART, CCP)}


def get_label_set(name: str | LabelSet) -> LabelSet:
    """Look a label set up by name (``lip``, ``cihp``, ``atr``, ``pascal-person-part``, ``ccp``)."""
    if isinstance(name, LabelSet):
        return name
    key = name.lower().replace("_", "-")
    if key in ("pascal", "ppp"):
        key = "pascal-person-part"
    try:
        return LABEL_SETS[key]
    except KeyError:
        raise ValueError(f"unknown label set {name!r}; choose one of {', '.join(LABEL_SETS)}") from None


# LIP pose annotations: 16 joints in the order of the CSV columns (x = column, y = row).
LIP_POSE_JOINTS: tuple[str, ...] = (
    "R_Ankle", "R_Knee", "R_Hip", "L_Hip", "L_Knee", "L_Ankle", "B_Pelvis", "B_Spine",
    "B_Neck", "B_Head", "R_Wrist", "R_Elbow", "R_Shoulder", "L_Shoulder", "L_Elbow", "L_Wrist",
)
LIP_POSE_FLIP_PAIRS: tuple[tuple[int, int], ...] = ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))


def _pose_flip_permutation() -> tuple[int, ...]:
    perm = list(range(len(LIP_POSE_JOINTS)))
    for a, b in LIP_POSE_FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return tuple(perm)


LIP_POSE_FLIP_PERMUTATION: tuple[int, ...] = _pose_flip_permutation()
# Limbs drawn between joints (for plots and for SynthLIP's skeleton).
LIP_POSE_LIMBS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 6), (3, 6), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
    (10, 11), (11, 12), (12, 8), (13, 8), (13, 14), (14, 15),
)
