"""``check-data``: scan a dataset split and report every problem at once.

``validate_split(root, split, label_set)`` returns a :class:`Report` of problems (the split will
fail to load: missing, unreadable or truncated files, size mismatches, bad label values, colour
labels, empty id lists, duplicate ids, no matching layout, ...) and notes (it loads, but you may
want to know: images stored as CMYK/RGBA/16-bit that lipkit converts, pose rows for unknown
ids, ids without pose rows). ``python -m lipkit check-data ROOT`` prints it and exits 1 when any
split has problems.

Speed: images are checked from their header (size, mode) and their last bytes (a JPEG must end
with its end-of-image marker, a PNG with its IEND chunk; a file failing that is fully decoded
to confirm), labels are fully decoded. ``decode_images=True`` decodes every image as well.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from lipkit.data.io import (
    LIPDataError,
    PathLike,
    decode,
    image_to_rgb,
    label_array,
    check_label_values,
    open_image,
    read_pose_csv,
    scan_id_list,
)
from lipkit.data.layout import (
    LIP_SPLITS,
    SplitLayout,
    available_splits,
    check_declared_label_set,
    declared_label_set,
    is_pascal_root,
    resolve_lip,
    resolve_pascal,
)
from lipkit.labels import LIP, PASCAL_PERSON_PART, LabelSet, get_label_set

# Image modes read_image converts without loss of meaning (notes, not problems).
_PLAIN_MODES = ("RGB", "L")


@dataclass
class Issue:
    """One finding: a ``kind`` tag, the file it concerns and the full message."""

    kind: str
    path: Path | None
    message: str


@dataclass
class Report:
    """What :func:`validate_split` found in one split."""

    root: Path
    split: str
    label_set: str
    layout: str | None = None
    n_items: int = 0
    problems: list[Issue] = field(default_factory=list)
    notes: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem_counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in _group(self.problems).items()}

    def note_counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in _group(self.notes).items()}

    def format(self, max_files: int = 3) -> str:
        """A readable summary: one table row per kind (count, first files) and the first message of each."""
        head = (f"check-data {self.root} split={self.split} layout={self.layout or '?'} "
                f"label set={self.label_set}: {self.n_items} images, ")
        head += "OK" if self.ok else f"{len(self.problems)} problem(s) of {len(self.problem_counts())} kind(s)"
        lines = [head]
        for title, issues in (("problems", self.problems), ("notes", self.notes)):
            if not issues:
                continue
            lines += ["", f"{title}:", "| kind | count | first files |", "|---|---|---|"]
            groups = _group(issues)
            for kind, items in groups.items():
                files = ", ".join(_short(i.path, self.root) for i in items[:max_files]) + (" ..." if len(items) > max_files else "")
                lines.append(f"| {kind} | {len(items)} | {files} |")
            for kind, items in groups.items():
                lines.append(f"- {kind}: {items[0].message}")
        return "\n".join(lines)


def _group(issues: list[Issue]) -> dict[str, list[Issue]]:
    groups: dict[str, list[Issue]] = defaultdict(list)
    for issue in issues:
        groups[issue.kind].append(issue)
    return dict(groups)


def _short(path: Path | None, root: Path) -> str:
    if path is None:
        return "-"
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _tail_intact(path: Path, fmt: str | None) -> bool:
    """Cheap truncation test: JPEGs end with FFD9, PNGs with an IEND chunk (within the last bytes)."""
    if fmt not in ("JPEG", "PNG"):
        return True
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 64))
        tail = f.read()
    return (b"\xff\xd9" in tail) if fmt == "JPEG" else (b"IEND" in tail)


def _check_image(path: Path, decode_images: bool, report: Report) -> tuple[int, int] | None:
    """Header (+ tail or full decode) check of one image; returns ``(H, W)`` or None on a problem."""
    try:
        with open_image(path, "image") as img:
            size, mode, fmt = img.size, img.mode, img.format
            if decode_images or not _tail_intact(path, fmt):
                decode(img, path, "image")
                image_to_rgb(img, path)
            elif mode == "F":
                image_to_rgb(img, path)  # raises the "unsupported mode" error without decoding
    except LIPDataError as err:
        report.problems.append(Issue(err.kind, err.path, str(err)))
        return None
    if mode not in _PLAIN_MODES:
        report.notes.append(Issue("converted-image", path, f"{path}: image mode {mode} is converted to RGB when read"))
    return size[1], size[0]


def _check_label(path: Path, label_set: LabelSet, report: Report) -> tuple[int, int] | None:
    try:
        with open_image(path, "label") as img:
            decode(img, path, "label")
            label = label_array(img, path)
        check_label_values(label, label_set, path)
    except LIPDataError as err:
        report.problems.append(Issue(err.kind, err.path, str(err)))
        return None
    return label.shape  # type: ignore[return-value]


def _check_pose(layout: SplitLayout, ids: list[str], with_pose: bool, report: Report) -> None:
    if layout.pose_csv is None:
        if with_pose:
            where = layout.pose_candidates[0] if layout.pose_candidates else layout.root
            looked = ", ".join(_short(p, layout.root) for p in layout.pose_candidates) or "(none: no pose for this dataset)"
            report.problems.append(Issue("missing-pose", where, f"{where}: pose CSV not found (looked for {looked})"))
        return
    try:
        poses = read_pose_csv(layout.pose_csv)
    except LIPDataError as err:
        report.problems.append(Issue(err.kind, err.path, str(err)))
        return
    id_set = set(ids)
    unknown = sorted(set(poses) - id_set)
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        report.notes.append(Issue("pose-unknown-ids", layout.pose_csv,
                                  f"{layout.pose_csv}: {len(unknown)} pose row(s) for ids not in the {layout.split} list ({shown}); they are ignored"))
    missing = [i for i in ids if i not in poses]
    if missing:
        report.notes.append(Issue("pose-missing-ids", layout.pose_csv,
                                  f"{layout.pose_csv}: {len(missing)} id(s) have no pose row (first: {missing[0]}); their pose is all NaN"))


def validate_split(root: PathLike, split: str, label_set: LabelSet | str | None = None, *,
                   with_pose: bool = False, decode_images: bool = False, progress: bool = True) -> Report:
    """Check every file of one split and return a :class:`Report` listing all problems found.

    ``label_set`` None: the one the root declares (``lipkit_dataset.json``), else lip (pascal-person-part
    for a PASCAL root); a label set other than the declared one is a problem.
    """
    root = Path(root)
    pascal = is_pascal_root(root)
    report = Report(root=root, split=split, label_set=str(label_set or "?"))
    try:
        declared = declared_label_set(root) if label_set is None else None
        ls = get_label_set(label_set or declared or (PASCAL_PERSON_PART if pascal else LIP))
        report.label_set = ls.name
        check_declared_label_set(root, ls.name)
        layout = resolve_pascal(root, split) if pascal else resolve_lip(root, split)
    except LIPDataError as err:
        report.problems.append(Issue(err.kind, err.path, str(err)))
        return report
    report.layout = layout.layout
    try:
        ids, dups = scan_id_list(layout.id_list)
    except LIPDataError as err:
        report.problems.append(Issue(err.kind, err.path, str(err)))
        return report
    if not ids:
        report.problems.append(Issue("id-list", layout.id_list, f"{layout.id_list}: id list is empty (expected one image id per line)"))
    for ident, lines in dups.items():
        report.problems.append(Issue("duplicate-ids", layout.id_list,
                                     f"{layout.id_list}: id {ident!r} appears on lines {', '.join(map(str, lines))}"))
    report.n_items = len(ids)
    _check_pose(layout, ids, with_pose, report)

    for ident in tqdm(ids, desc=f"check-data {split}", unit="img", disable=not progress, leave=False):
        image_path = layout.image_dir / f"{ident}{layout.image_ext}"
        hw = _check_image(image_path, decode_images, report)
        if layout.label_dir is None:
            continue
        label_path = layout.label_dir / f"{ident}{layout.label_ext}"
        lhw = _check_label(label_path, ls, report)
        if hw is not None and lhw is not None and tuple(hw) != tuple(lhw):
            report.problems.append(Issue(
                "size-mismatch", label_path,
                f"{label_path}: label is {lhw[1]}x{lhw[0]} (WxH) but its image {image_path} is {hw[1]}x{hw[0]}",
            ))
    return report
