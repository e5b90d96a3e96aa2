"""Reading and writing the files of a LIP-format dataset: images, label maps, id lists, pose CSVs.

Every failure raises :class:`LIPDataError`, whose message starts with the file and says what is
wrong and, where there is one, what to do. ``err.path`` and ``err.kind`` (a short tag such as
``"truncated-image"`` or ``"label-values"``) let ``check-data`` group problems without parsing text.

Images come back as ``(H, W, 3)`` uint8 RGB whatever their mode (grayscale, palette, RGBA: alpha
dropped, CMYK, 16-bit: scaled to 8 bits). EXIF orientation is ignored on purpose: LIP labels are
aligned with the stored pixels. Labels are ``(H, W)`` uint8 class ids from mode ``L`` or ``P``
PNGs (a palette PNG is read as its indices, never as colours).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from lipkit.labels import IGNORE_INDEX, LIP_POSE_JOINTS, LabelSet

PathLike = str | os.PathLike
NUM_JOINTS = len(LIP_POSE_JOINTS)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class LIPDataError(Exception):
    """A dataset file is missing, unreadable or inconsistent; the message names the file and why.

    ``path`` is the offending file (or folder) and ``kind`` a short tag for grouping problems.
    """

    def __init__(self, message: str, path: PathLike | None = None, kind: str = "error") -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)
        self.kind = kind


def _fail(path: PathLike, kind: str, reason: str) -> LIPDataError:
    return LIPDataError(f"{path}: {reason}", path=path, kind=kind)


def open_image(path: PathLike, what: str = "image") -> Image.Image:
    """Open ``path`` with Pillow reading the header only (size and mode; no pixel decoding)."""
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise _fail(path, f"missing-{what}", f"{what} file not found") from None
    except IsADirectoryError:
        raise _fail(path, f"missing-{what}", f"expected a {what} file, found a folder") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        if _looks_truncated(path):
            raise _fail(path, f"truncated-{what}", f"cannot read {what}: file is truncated (it stops inside its header); "
                        "re-extract or re-download it") from None
        raise _fail(path, f"unreadable-{what}", f"cannot read {what}: not a valid image file ({exc})") from None


def _looks_truncated(path: PathLike) -> bool:
    """A JPEG/PNG signature at the start but no end marker (JPEG EOI, PNG IEND) near the end."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64))
            tail = f.read()
    except OSError:
        return False
    if head.startswith(b"\xff\xd8\xff"):
        return b"\xff\xd9" not in tail
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return b"IEND" not in tail
    return False


def decode(img: Image.Image, path: PathLike, what: str) -> None:
    """Force a full decode so truncated or corrupt pixel data fails here, not later."""
    try:
        img.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        text = str(exc)
        truncated = "truncated" in text.lower() or isinstance(exc, EOFError)
        kind = f"truncated-{what}" if truncated else f"unreadable-{what}"
        reason = "file is truncated" if truncated else "pixel data is corrupt"
        raise _fail(path, kind, f"cannot decode {what}: {reason} ({text}); re-extract or re-download it") from None


def image_to_rgb(img: Image.Image, path: PathLike = "<image>") -> np.ndarray:
    """Convert a decoded Pillow image of any common mode to an ``(H, W, 3)`` uint8 RGB array."""
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode in _SIXTEEN_BIT_MODES:
        # 16-bit (or 32-bit int) grayscale: map the 0..65535 range linearly onto 0..255.
        arr = np.asarray(img).astype(np.float64)
        grey = np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        raise _fail(path, "image-mode", "floating-point images (mode F) are not supported; save it as 8-bit RGB or grayscale")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    try:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as exc:
        raise _fail(path, "image-mode", f"cannot convert image mode {mode!r} to RGB ({exc}); save it as 8-bit RGB") from None


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB (grayscale, palette, RGBA, CMYK, 16-bit converted)."""
    with open_image(path, "image") as img:
        decode(img, path, "image")
        return image_to_rgb(img, path)


def label_array(img: Image.Image, path: PathLike = "<label>") -> np.ndarray:
    """The ``(H, W)`` uint8 id array of a decoded label image (mode L, P as indices, or grey RGB).

    A colourised RGB label (colours, not ids) is refused: convert it with :func:`colors_to_ids`.
    """
    mode = img.mode
    if mode in ("L", "P"):
        return np.asarray(img, dtype=np.uint8)
    if mode in _SIXTEEN_BIT_MODES:
        arr = np.asarray(img)
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise _fail(path, "label-values", f"16-bit label holds values up to {int(arr.max())}; ids must fit in 0..255")
        return arr.astype(np.uint8)
    if mode in ("RGB", "RGBA"):
        arr = np.asarray(img)[:, :, :3]
        if np.array_equal(arr[:, :, 0], arr[:, :, 1]) and np.array_equal(arr[:, :, 0], arr[:, :, 2]):
            return np.ascontiguousarray(arr[:, :, 0])  # ids saved as grey RGB
        raise _fail(
            path, "colour-label",
            f"label is a colourised {mode} image, not a map of class ids; convert it with "
            "lipkit.data.colors_to_ids(rgb, label_set) and save the result as a mode 'L' PNG",
        )
    raise _fail(path, "label-mode", f"label image mode {mode!r} is not supported; save labels as 8-bit (mode L or P) PNGs of class ids")


def check_label_values(label: np.ndarray, label_set: LabelSet, path: PathLike = "<label>") -> None:
    """Raise if ``label`` holds ids outside ``0..K-1`` other than the ignore value."""
    counts = np.bincount(label.ravel(), minlength=256)
    counts[: label_set.num_classes] = 0
    counts[label_set.ignore_index] = 0
    bad = np.flatnonzero(counts)
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:10]) + (" ..." if bad.size > 10 else "")
        raise _fail(
            path, "label-values",
            f"label values {shown} are outside label set {label_set.name!r} "
            f"(ids 0..{label_set.num_classes - 1}, and {label_set.ignore_index} = ignore); "
            "is this the right --label-set?",
        )


def read_label(path: PathLike, label_set: LabelSet | None = None) -> np.ndarray:
    """Read a label PNG as ``(H, W)`` uint8 ids; with ``label_set``, also check every value is valid."""
    with open_image(path, "label") as img:
        decode(img, path, "label")
        label = label_array(img, path)
    if label_set is not None:
        check_label_values(label, label_set, path)
    return label


def colors_to_ids(rgb: np.ndarray, label_set: LabelSet, strict: bool = True) -> np.ndarray:
    """Convert a colourised ``(H, W, 3)`` label (the label set's palette) to ``(H, W)`` uint8 ids.

    Colours not in the palette raise ``ValueError`` (listing them) when ``strict``; otherwise they
    become the ignore value.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"colors_to_ids expects an (H, W, 3) RGB array, got shape {rgb.shape}")
    rgb = rgb[:, :, :3].astype(np.int64)
    codes = (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]
    pal = label_set.palette_array.astype(np.int64)
    pal_codes = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
    order = np.argsort(pal_codes)
    sorted_codes = pal_codes[order]
    pos = np.clip(np.searchsorted(sorted_codes, codes), 0, len(sorted_codes) - 1)
    found = sorted_codes[pos] == codes
    ids = np.where(found, order[pos], label_set.ignore_index).astype(np.uint8)
    if strict and not found.all():
        unknown = np.unique(codes[~found])
        shown = ", ".join(str(((int(c) >> 16) & 255, (int(c) >> 8) & 255, int(c) & 255)) for c in unknown[:8])
        raise ValueError(
            f"{unknown.size} colour(s) are not in the {label_set.name!r} palette: {shown}"
            f"{' ...' if unknown.size > 8 else ''}; pass strict=False to map them to {label_set.ignore_index}"
        )
    return ids


def _strip_id(token: str) -> str:
    """``'dir/123_456.jpg'`` -> ``'123_456'``: ids are file stems without folder or extension."""
    name = token.replace("\\", "/").rsplit("/", 1)[-1]
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in IMAGE_EXTENSIONS else name


def scan_id_list(path: PathLike) -> tuple[list[str], dict[str, list[int]]]:
    """Parse an id list leniently: ``(unique ids in order, {duplicate id: its line numbers})``.

    One id per line; CRLF, a UTF-8 BOM, blank lines and surrounding spaces are accepted. A line
    with several fields (``JPEGImages/x.jpg SegmentationPart/x.png``) gives the stem of the first.
    """
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise _fail(path, "id-list", "id list not found") from None
    except IsADirectoryError:
        raise _fail(path, "id-list", "expected an id list file, found a folder") from None
    except UnicodeDecodeError as exc:
        raise _fail(path, "id-list", f"id list is not UTF-8 text ({exc})") from None
    first_line: dict[str, int] = {}
    dups: dict[str, list[int]] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        ident = _strip_id(fields[0])
        if ident in first_line:
            dups.setdefault(ident, [first_line[ident]]).append(lineno)
        else:
            first_line[ident] = lineno
    return list(first_line), dups


def read_id_list(path: PathLike) -> list[str]:
    """Read an id list (one id per line); empty lists and duplicate ids raise :class:`LIPDataError`."""
    ids, dups = scan_id_list(path)
    if not ids:
        raise _fail(path, "id-list", "id list is empty (expected one image id per line)")
    if dups:
        shown = "; ".join(f"{i!r} on lines {', '.join(map(str, lines))}" for i, lines in list(dups.items())[:5])
        raise _fail(path, "duplicate-ids", f"{len(dups)} duplicate id(s): {shown}{' ...' if len(dups) > 5 else ''}; remove the repeats")
    return ids


def _parse_pose_value(token: str) -> float:
    token = token.strip()
    if token == "" or token.lower() == "nan":
        return math.nan
    return float(token)


def read_pose_csv(path: PathLike) -> dict[str, np.ndarray]:
    """Read a LIP pose CSV (``<id>.jpg,x1,y1,v1,...,x16,y16,v16``) as ``{id: (16, 3) float32}``.

    ``nan`` or an empty field marks a joint that is not annotated. A malformed row or an id that
    appears twice raises :class:`LIPDataError` with the line number.
    """
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise _fail(path, "missing-pose", "pose CSV not found") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise _fail(path, "pose-csv", f"cannot read pose CSV ({exc})") from None
    poses: dict[str, np.ndarray] = {}
    lines: dict[str, int] = {}
    width = 1 + 3 * NUM_JOINTS
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != width:
            raise _fail(path, "pose-csv", f"line {lineno}: expected {width} comma-separated fields (<id>.jpg and 16 x,y,v triples), found {len(fields)}")
        ident = _strip_id(fields[0].strip())
        try:
            values = [_parse_pose_value(t) for t in fields[1:]]
        except ValueError as exc:
            raise _fail(path, "pose-csv", f"line {lineno}: not a number ({exc})") from None
        if ident in poses:
            raise _fail(path, "pose-csv", f"line {lineno}: id {ident!r} already given on line {lines[ident]}")
        poses[ident] = np.asarray(values, dtype=np.float32).reshape(NUM_JOINTS, 3)
        lines[ident] = lineno
    return poses


def _format_pose_value(v: float) -> str:
    if math.isnan(v):
        return "nan"
    return np.format_float_positional(np.float32(v), unique=True, trim="-")


def write_pose_csv(path: PathLike, poses: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]]) -> Path:
    """Write ``{id: (16, 3)}`` poses in LIP's CSV format (``nan`` for unannotated); returns the path."""
    items = poses.items() if isinstance(poses, Mapping) else poses
    rows = []
    for ident, pose in items:
        arr = np.asarray(pose, dtype=np.float32)
        if arr.shape != (NUM_JOINTS, 3):
            raise ValueError(f"pose of {ident!r} has shape {arr.shape}; expected ({NUM_JOINTS}, 3)")
        rows.append(f"{ident}.jpg," + ",".join(_format_pose_value(float(v)) for v in arr.ravel()))
    path = Path(path)
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def write_label_png(path: PathLike, labels: np.ndarray, label_set: LabelSet) -> Path:
    """Write a label map as an indexed PNG whose palette is the label set's (the ids stay the pixel values).

    Viewers show the colours; ``read_label`` (and LIP's tools, which read the indices) get the ids back.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{path}: a label map is (H, W), got shape {labels.shape}")
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[255] = 255
    palette[: label_set.num_classes] = label_set.palette_array
    img.putpalette(palette.reshape(-1).tolist())
    img.save(path)
    return Path(path)


def empty_pose() -> np.ndarray:
    """A ``(16, 3)`` float32 all-NaN pose (no joint annotated)."""
    return np.full((NUM_JOINTS, 3), np.nan, dtype=np.float32)


__all__ = [
    "IGNORE_INDEX", "LIPDataError", "check_label_values", "colors_to_ids", "empty_pose", "image_to_rgb",
    "label_array", "open_image", "read_id_list", "read_image", "read_label", "read_pose_csv",
    "scan_id_list", "write_pose_csv",
]
