"""``PascalPersonPartDataset``: PASCAL-Person-Part (``JPEGImages/`` + ``SegmentationPart/``) as sample dicts.

Labels are palette PNGs whose *indices* are the part ids (Pillow mode ``P``, read without
converting to grayscale); mode ``L`` id PNGs are accepted too. Id lists: see
:func:`lipkit.data.layout.resolve_pascal` for the file names searched (``<root>/<split>_id.txt``,
``<root>/<split>.txt``, ``list/``, ``ImageSets/{Person,Segmentation,Main}/``); a line may be a bare
id or a ``JPEGImages/x.jpg SegmentationPart/x.png`` pair.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lipkit.data.io import PathLike
from lipkit.data.layout import resolve_pascal
from lipkit.data.lip import Sample, SegmentationDataset
from lipkit.labels import PASCAL_PERSON_PART


class PascalPersonPartDataset(SegmentationDataset):
    """A PASCAL-Person-Part split; items as :class:`~lipkit.data.LIPDataset` (no pose)."""

    def __init__(self, root: PathLike, split: str, transform: Callable[[Sample], Any] | None = None) -> None:
        super().__init__(resolve_pascal(root, split), transform, PASCAL_PERSON_PART, with_pose=False)
