"""``python -m lipkit convert ccp SRC DST [--height H]``: Clothing Co-Parsing written in LIP's flat layout.

DST gets ``{train,val}_images/<id>.jpg`` (the photos byte for byte, native size: 550 px wide,
801-873 px high), ``{train,val}_segmentations/<id>.png`` (ccp ids as palette PNGs, as
:func:`~lipkit.data.io.write_label_png` writes them), ``{train,val}_id.txt``, ``lipkit_dataset.json``
(label set ``ccp``, source, split, ``height``) and a README.md. Every command that reads LIP's layout
(check-data, stats, train, evaluate, score) then reads it, and the declared label set makes them
default to ``ccp`` and refuse to read it as LIP (lipkit.data.layout).

``height=H`` writes a small copy for training on a CPU: every photo resized to H px high (width in
proportion, rounded; Pillow's bilinear filter, which widens its support when shrinking, i.e.
antialiased; JPEG quality 95, no chroma subsampling) and its label resized with nearest neighbour
(ids stay ids, 255 stays 255). The native photos stay the ones scores are reported on
(lipkit.transfer scores full-size val photos the way ``predict`` parses them).

Nothing in DST is lost on an error: all files are written into a hidden staging folder beside DST
and moved into place only once every one converted. DST must be new, empty or an earlier
conversion (which is then replaced); any other folder is refused before anything is written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from lipkit.data.ccp import (
    CCP_SPLITS,
    CLONE,
    UNANNOTATED_IDS,
    check_size,
    check_source,
    mat_path,
    photo_path,
    read_ccp_label,
    read_photo,
    split_ids,
)
from lipkit.data.io import LIPDataError, PathLike, write_label_png
from lipkit.data.layout import DATASET_INFO
from lipkit.labels import CCP

CONVERTER = "lipkit.data.ccp_convert"


@dataclass
class Converted:
    """Where a conversion went and how many images each split got."""

    root: Path
    counts: dict[str, int] = field(default_factory=dict)


WRITTEN = (*(f"{s}_{kind}" for s in CCP_SPLITS for kind in ("images", "segmentations", "id.txt")), DATASET_INFO, "README.md")


def _is_conversion(dst: Path) -> bool:
    """True for a folder holding an earlier conversion and nothing else (so replacing it loses nothing)."""
    try:
        info = json.loads((dst / DATASET_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("converted_by") == CONVERTER and {p.name for p in dst.iterdir()} <= set(WRITTEN)


def check_dst(dst: PathLike) -> Path:
    """``dst`` as a Path when it may be written: new, an empty folder or an earlier CCP conversion."""
    dst = Path(dst).expanduser()
    if dst.exists() and not dst.is_dir():
        raise LIPDataError(f"{dst}: exists and is not a folder; choose a new folder for DST (nothing was written)",
                           path=dst, kind="dst")
    if dst.is_dir() and any(dst.iterdir()) and not _is_conversion(dst):
        raise LIPDataError(f"{dst}: folder is not empty and is not an earlier conversion alone (a {DATASET_INFO} "
                           f"from {CONVERTER} and only the files it writes); choose a new or empty folder for DST "
                           "(nothing was written)",
                           path=dst, kind="dst")
    return dst


JPEG_QUALITY = 95  # resized photos (height=H): re-encoded at this quality, 4:4:4


def resized_pair(image: np.ndarray, label: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (bilinear, antialiased) and ``label`` (nearest) resized to ``height`` px, width in proportion."""
    h, w = label.shape
    width = max(1, round(w * height / h))
    small = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
    return small, np.asarray(Image.fromarray(label).resize((width, height), Image.Resampling.NEAREST))


def _convert_one(src: Path, staging: Path, split: str, ident: str, height: int | None = None) -> None:
    photo, mat = photo_path(src, ident), mat_path(src, ident)
    image = read_photo(photo)  # a full decode: a damaged photo fails here, named
    label = read_ccp_label(mat)
    check_size(label, mat, image.shape[:2], photo)
    out = staging / f"{split}_images" / f"{ident}.jpg"
    if height is None:
        shutil.copyfile(photo, out)
    else:
        image, label = resized_pair(image, label, height)
        Image.fromarray(image).save(out, quality=JPEG_QUALITY, subsampling=0)
    write_label_png(staging / f"{split}_segmentations" / f"{ident}.png", label, CCP)


def _info(src: Path, counts: dict[str, int], limit: int | None, height: int | None = None) -> dict:
    return {
        "label_set": CCP.name, "converted_by": CONVERTER, "dataset": "Clothing Co-Parsing (CCP)",
        "origin": "https://github.com/bearpaw/clothing-co-parsing (Apache-2.0)",
        "citation": "Yang, Luo and Lin, Clothing Co-Parsing by Joint Image Segmentation and Labeling, CVPR 2014",
        "source": str(src.resolve()), "counts": counts, "limit": limit, "left_out": list(UNANNOTATED_IDS),
        "split": "train 0001-0904, val 0905-1004 (lipkit.data.ccp)", "classes": list(CCP.classes),
        "ignore_index": CCP.ignore_index,
        "height": height,  # None: native photos, byte for byte; H: resized to H px high (labels: nearest)
    }


README = """# Clothing Co-Parsing in LIP's layout (label set `ccp`)

Written by `python -m lipkit convert ccp` from {source}: {counts}.
{photos}; labels are palette PNGs of the `ccp` label set's ids
({classes}; 255 = not scored). Read it with `--label-set ccp` (the default here, from
`{info}`), in training with `data.label_set=ccp`. The tag -> class mapping and the split:
lipkit's docs/ccp.md. Data: https://github.com/bearpaw/clothing-co-parsing (Apache-2.0); cite
Yang, Luo and Lin, "Clothing Co-Parsing by Joint Image Segmentation and Labeling", CVPR 2014.
Do not commit these files to a repository: get them with `{clone}`.
"""


def _write_info(staging: Path, src: Path, counts: dict[str, int], limit: int | None, height: int | None = None) -> None:
    info = _info(src, counts, limit, height)
    (staging / DATASET_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    shown = ", ".join(f"{split} {n}" for split, n in counts.items())
    photos = ("Photos are the originals, byte for byte" if height is None else
              f"Photos are resized to {height} px high (bilinear, antialiased; labels with nearest neighbour)")
    text = README.format(source=src.resolve(), counts=shown, classes=", ".join(f"{i} {c}" for i, c in enumerate(CCP.classes)),
                         info=DATASET_INFO, clone=CLONE, photos=photos)
    (staging / "README.md").write_text(text, encoding="utf-8")


def _swap_in(staging: Path, dst: Path) -> None:
    """Put the finished ``staging`` at ``dst``; an earlier ``dst`` is removed only after the move."""
    old = None
    if dst.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old-", dir=dst.parent))
        dst.rename(old / dst.name)
    staging.rename(dst)
    if old is not None:
        shutil.rmtree(old)


def convert_ccp(src: PathLike, dst: PathLike, limit: int | None = None, progress: bool = True,
                height: int | None = None) -> Converted:
    """Convert a CCP clone at ``src`` into LIP's flat layout at ``dst`` (the first ``limit`` ids of each split).

    ``height``: resize every photo (and label) to that many pixels high (a small copy to train on);
    None keeps the native photos byte for byte.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit={limit}: must be >= 1 (or None for every image)")
    if height is not None and height < 8:
        raise ValueError(f"height={height}: must be >= 8 px (or None for the native size)")
    source = check_source(src)
    dst = check_dst(dst)
    plan = {split: split_ids(split)[:limit] for split in CCP_SPLITS}
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.partial-{os.getpid()}-", dir=dst.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 would make DST private
    try:
        with tqdm(total=sum(map(len, plan.values())), desc="convert ccp", unit="img", disable=not progress) as bar:
            for split, ids in plan.items():
                (staging / f"{split}_images").mkdir()
                (staging / f"{split}_segmentations").mkdir()
                for ident in ids:
                    _convert_one(source, staging, split, ident, height)
                    bar.update()
                (staging / f"{split}_id.txt").write_text("".join(i + "\n" for i in ids), encoding="utf-8")
        counts = {split: len(ids) for split, ids in plan.items()}
        _write_info(staging, source, counts, limit, height)
        _swap_in(staging, dst)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Converted(dst, counts)


def conversion_info(root: PathLike) -> dict | None:
    """The ``lipkit_dataset.json`` of a CCP conversion at ``root``; None when ``root`` holds none."""
    try:
        info = json.loads((Path(root) / DATASET_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("converted_by") == CONVERTER else None


def converted_height(root: PathLike) -> int | None:
    """The ``height`` a conversion at ``root`` was resized to (None: native size, or not a CCP conversion)."""
    value = (conversion_info(root) or {}).get("height")
    return int(value) if value else None


__all__ = ["Converted", "JPEG_QUALITY", "check_dst", "conversion_info", "convert_ccp", "converted_height", "resized_pair"]
