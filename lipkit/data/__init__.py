"""lipkit's data layer: LIP-format files, datasets, joint transforms and dataset validation."""

from lipkit.data.io import (
    LIPDataError,
    colors_to_ids,
    read_id_list,
    read_image,
    read_label,
    read_pose_csv,
    write_pose_csv,
)
from lipkit.data.layout import SplitLayout, resolve_lip, resolve_pascal
from lipkit.data.lip import LIPDataset
from lipkit.data.pascal import PascalPersonPartDataset

__all__ = [
    "LIPDataError",
    "LIPDataset",
    "PascalPersonPartDataset",
    "SplitLayout",
    "colors_to_ids",
    "read_id_list",
    "read_image",
    "read_label",
    "read_pose_csv",
    "resolve_lip",
    "resolve_pascal",
    "write_pose_csv",
]
