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

__all__ = [
    "LIPDataError",
    "colors_to_ids",
    "read_id_list",
    "read_image",
    "read_label",
    "read_pose_csv",
    "write_pose_csv",
]
