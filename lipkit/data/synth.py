"""SynthLIP: a procedurally rendered dataset in LIP's format, with LIP's difficulties.

``make_synthlip(root, n_train, n_val)`` (or ``python -m lipkit synth ROOT --train N --val M``) writes
the flat LIP layout (JPEG images, id PNG labels, id lists), LIP pose CSVs and per-image metadata, so
every code path from loader to figures runs where real LIP cannot be downloaded. Each image holds
one articulated, dressed person (body model: :mod:`lipkit.data.synth_render`) in one of four views,
framed full-body, upper-body or cut off by the border, sometimes behind an occluder or in front of
a bystander, on a cluttered background whose colours come from the same distributions as skin and
clothes, with lighting, blur, noise, low resolution or grayscale. Left and right limbs share their
colours. ``format="pascal-person-part"`` writes the same people with PASCAL-Person-Part's 7 labels.

Every image is drawn from its own generator seeded by ``(seed, split, index)``, so the output is
byte-identical for any number of workers.

Pose CSV convention: ``nan`` for a joint outside the image or hidden behind an occluder; otherwise
v = 0 when the joint is visible and v = 1 when another part of the same person covers it.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter

from lipkit.data import synth_render as R
from lipkit.data.io import write_pose_csv
from lipkit.labels import LIP, PASCAL_PERSON_PART

VERSION = "1.0"
FORMATS = ("lip", "pascal-person-part")
LAYOUTS = ("flat", "official")  # LIP's folders: lipkit's flat layout, or exactly as the official archives unpack
_OFFICIAL_IMAGES = "TrainVal_images/TrainVal_images"  # with the extra level the zip-inside-a-zip gives
_OFFICIAL_LABELS = "TrainVal_parsing_annotations/TrainVal_parsing_annotations"
SPLITS = ("train", "val", "test")
JPEG_QUALITY = 90
VIEWS = ("front", "back", "left", "right")
VIEW_P = (0.5, 0.16, 0.17, 0.17)
FRAMINGS = ("full", "upper-body", "cut-off")
FRAMING_P = (0.45, 0.33, 0.22)


@dataclass
class SynthConfig:
    """Everything that decides the pixels (written to ``synthlip.json``)."""

    seed: int = 0
    size_range: tuple[int, int] = (100, 500)
    occluder_p: float = 0.28
    bystander_p: float = 0.12
    format: str = "lip"


@dataclass
class Sample:
    image: np.ndarray  # (H, W, 3) uint8, or (H, W) for a grayscale image
    label: np.ndarray  # (H, W) uint8 LIP ids
    parts: np.ndarray | None  # (H, W) uint8 PASCAL-Person-Part ids
    pose: np.ndarray  # (16, 3) float32
    meta: dict


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one image: independent of worker count and of the other splits."""
    return np.random.default_rng([int(seed), SPLITS.index(split), int(index)])


# ------------------------------------------------------------------------------- scene parts
def _lowfreq(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth noise in about [-1, 1] (bicubic upsampling of a coarse random grid)."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    coarse = Image.fromarray(rng.standard_normal((gh, gw)).astype(np.float32), mode="F")
    return np.asarray(coarse.resize((w, h), Image.BICUBIC), dtype=np.float32) * 0.6


def _background(rng: np.random.Generator, h: int, w: int) -> Image.Image:
    """Walls, floors, gradients and clutter in skin, hair and clothing colours."""
    c1, c2 = R.scene_color(rng), R.scene_color(rng)
    vertical = rng.random() < 0.7
    t = np.linspace(0, 1, h if vertical else w, dtype=np.float32)[:, None]
    base = c1 * (1 - t) + c2 * t  # (h or w, 3)
    if vertical and rng.random() < 0.5:  # floor below a horizon
        y0 = int(h * rng.uniform(0.45, 0.9))
        base[y0:] = R.scene_color(rng) * np.linspace(0.85, 1.1, h - y0, dtype=np.float32)[:, None]
    shade = 1 + rng.uniform(0.05, 0.3) * _lowfreq(rng, h, w, rng.uniform(8, 60))
    if rng.random() < 0.2:  # tiles, shelves, stripes
        yy, xx = np.ogrid[0:h, 0:w]
        period = rng.uniform(8, 40)
        stripes = ((xx * math.cos(rng.uniform(0, math.pi)) + yy * math.sin(rng.uniform(0, math.pi))) // period) % 2
        shade *= 1 - rng.uniform(0.05, 0.25) * stripes.astype(np.float32)
    bg = (base[:, None, :] if vertical else base[None, :, :]) * shade[..., None]
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    s = min(h, w)
    for _ in range(int(rng.integers(2, 16))):
        col = tuple(int(v) for v in R.scene_color(rng))
        x, y = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
        a, b = rng.uniform(0.03, 0.4) * s, rng.uniform(0.03, 0.4) * s
        kind = rng.random()
        if kind < 0.35:
            draw.rectangle([x, y, x + a, y + b], fill=col)
        elif kind < 0.55:
            draw.ellipse([x, y, x + a, y + b], fill=col)
        elif kind < 0.8:
            pts = [(x + rng.uniform(-a, a), y + rng.uniform(-b, b)) for _ in range(int(rng.integers(3, 7)))]
            draw.polygon(pts, fill=col)
        else:  # limb-like capsule (bystanders' arms, poles) in skin or cloth colour
            col = tuple(int(v) for v in (R.skin_color(rng) if rng.random() < 0.5 else R.cloth_color(rng)))
            ang = rng.uniform(0, math.pi)
            poly = R.capsule(np.array([x, y]), np.array([x + a * math.cos(ang), y + a * math.sin(ang)]),
                             rng.uniform(0.01, 0.05) * s, rng.uniform(0.01, 0.05) * s)
            draw.polygon(poly.ravel().tolist(), fill=col)
    return img


def _frame(rng: np.random.Generator, bbox: np.ndarray, cut_levels: tuple[float, float], h: int, w: int) -> tuple[str, float, float, float]:
    """Choose the framing and the unit->pixel transform ``(kind, scale, tx, ty)``."""
    x0, y0, x1, y1 = bbox
    bw, bh = x1 - x0, y1 - y0
    kind = str(rng.choice(FRAMINGS, p=FRAMING_P))
    if kind == "full":
        s = rng.uniform(0.55, 0.95) * h / bh
        s = min(s, 0.95 * w / bw)
        tx = rng.uniform(-x0 * s, w - x1 * s) if w - bw * s > 0 else (w - (x0 + x1) * s) / 2
        ty = rng.uniform(-y0 * s, h - y1 * s) if h - bh * s > 0 else (h - (y0 + y1) * s) / 2
    elif kind == "upper-body":
        yc = cut_levels[0] + rng.random() * (cut_levels[1] - cut_levels[0])
        s = rng.uniform(0.85, 1.05) * h / (yc - y0)
        s = min(s, 1.1 * w / bw)
        ty = rng.uniform(0.0, 0.1) * h - y0 * s
        cx = rng.uniform(0.35, 0.65) * w
        tx = cx - 0.5 * (x0 + x1) * s
    else:
        s = rng.uniform(0.7, 1.15) * h / bh
        side = rng.choice(["left", "right", "bottom", "top"], p=[0.3, 0.3, 0.3, 0.1])
        frac = rng.uniform(0.12, 0.4)
        tx = (w - (x0 + x1) * s) / 2
        ty = (h - (y0 + y1) * s) / 2
        if side == "left":
            tx = -x0 * s - frac * bw * s
        elif side == "right":
            tx = w - x1 * s + frac * bw * s
        elif side == "bottom":
            ty = h - y1 * s + frac * bh * s
        else:  # the head cut by the top border
            ty = -y0 * s - 0.5 * frac * bh * s
    return kind, float(s), float(tx), float(ty)


def _size(rng: np.random.Generator, size_range: tuple[int, int]) -> tuple[int, int]:
    lo, hi = size_range
    h = int(round(lo + (hi - lo) * rng.beta(2.0, 2.2)))
    aspect = rng.uniform(0.5, 1.05) if rng.random() < 0.75 else rng.uniform(1.0, 1.5)
    w = int(np.clip(round(h * aspect), lo, hi))
    return h, w


class _Canvas:
    """The label, part, material and visibility-group maps drawn together, shape by shape."""

    def __init__(self, h: int, w: int, parts: bool):
        self.maps = {k: Image.new("L", (w, h), 0) for k in (("lip", "mat", "group") + (("ppp",) if parts else ()))}
        self.draw = {k: ImageDraw.Draw(v) for k, v in self.maps.items()}

    def fill(self, poly: np.ndarray, lip: int, ppp: int, mat: int, group: int) -> None:
        pts = poly.ravel().tolist()
        for k, v in (("lip", lip), ("mat", mat), ("group", group), ("ppp", ppp)):
            if k in self.draw:
                self.draw[k].polygon(pts, fill=v)


def material_ids(colors: dict[str, R.Material], materials: list[R.Material]) -> dict[str, int]:
    """Append a person's materials to ``materials``; name -> id, one id per material object.

    A garment drawn by two names (a dress's or jumpsuit's top and bottom) keeps one id, so no
    contour is shaded where its two halves meet.
    """
    ids: dict[int, int] = {}
    mat_of = {}
    for name, m in colors.items():
        if id(m) not in ids:
            materials.append(m)
            ids[id(m)] = len(materials) - 1
        mat_of[name] = ids[id(m)]
    return mat_of


def _person_layer(rng, materials, yaw, roll):
    person = R.sample_person(rng)
    mat_of = material_ids(person["colors"], materials)
    cam = R.Camera(yaw, roll)
    prims, joints = R.build_person(person, cam, mat_of)
    allpts = np.concatenate([p.poly for p in prims])
    bbox = np.array([*allpts.min(0), *allpts.max(0)])
    # upper-body cuts: between the waist and the knees (unit coordinates)
    waist = joints[6, 1] - 0.1
    knees = np.nanmax(joints[[1, 4], 1])
    return person, prims, joints, bbox, (waist, knees)


def render_sample(rng: np.random.Generator, config: SynthConfig, parts: bool = False) -> Sample:
    """Render one image, its LIP label (and PASCAL parts), its pose and its metadata."""
    h, w = _size(rng, config.size_range)
    view = str(rng.choice(VIEWS, p=VIEW_P))
    yaw = R.VIEW_YAW[view] + rng.uniform(-25, 25)
    roll = rng.normal(0, 4)
    materials: list[R.Material] = [R.Material(np.zeros(3, np.float32))]
    canvas = _Canvas(h, w, parts)
    bystander = rng.random() < config.bystander_p
    if bystander:  # another person behind, labelled background
        _, bprims, _, bb, _ = _person_layer(rng, materials, rng.uniform(-180, 180), rng.normal(0, 4))
        s = rng.uniform(0.5, 1.2) * h / (bb[3] - bb[1])
        tx, ty = rng.uniform(-0.3, 1.0) * w - bb[0] * s, rng.uniform(-0.2, 0.5) * h - bb[1] * s
        for p in sorted(bprims, key=lambda p: p.key):
            canvas.fill(p.poly * s + (tx, ty), 0, 0, p.mat, R.G_BG)
    person, prims, joints, bbox, cuts = _person_layer(rng, materials, yaw, roll)
    framing, s, tx, ty = _frame(rng, bbox, cuts, h, w)
    for p in sorted(prims, key=lambda p: p.key):  # stable: equal keys keep their build order
        canvas.fill(p.poly * s + (tx, ty), p.lip, p.ppp, p.mat, p.group)
    joints_px = joints * s + (tx, ty)
    person_px = int(np.count_nonzero(np.asarray(canvas.maps["lip"])))
    occluders = []
    if rng.random() < config.occluder_p and person_px > 0:
        occluders = _occlude(rng, canvas, materials, bbox * s + np.array([tx, ty, tx, ty]), h, w)
    label = np.asarray(canvas.maps["lip"], dtype=np.uint8)
    visible_px = int(np.count_nonzero(label))
    group = np.asarray(canvas.maps["group"])
    pose = np.full((16, 3), np.nan, np.float32)
    inside = (joints_px[:, 0] >= 0) & (joints_px[:, 0] <= w - 1) & (joints_px[:, 1] >= 0) & (joints_px[:, 1] <= h - 1)
    for j in np.flatnonzero(inside):
        g = int(group[int(round(joints_px[j, 1])), int(round(joints_px[j, 0]))])
        if g == R.G_OCC:
            continue
        pose[j] = (joints_px[j, 0], joints_px[j, 1], 0.0 if g == R.G_BG or g in R.JOINT_GROUPS[j] else 1.0)
    image = _colourise(rng, np.asarray(canvas.maps["mat"]), materials, h, w, s)
    meta = dict(
        view=view, yaw=round(float(yaw), 2), truncation=framing,
        joints_outside=int((~inside).sum()), occluders=occluders,
        occluded_fraction=round(1.0 - visible_px / person_px, 4) if person_px else 0.0,
        garments=R.garment_names(person["outfit"]), arm_pose=list(person["pose"]["arm_kind"]),
        leg_pose=person["pose"]["leg_kind"], bystander=bystander, width=w, height=h,
        grayscale=bool(image.ndim == 2),
    )
    parts_map = np.asarray(canvas.maps["ppp"], dtype=np.uint8) if parts else None
    return Sample(image, label, parts_map, pose, meta)


def _occlude(rng, canvas, materials, pbox, h, w) -> list[str]:
    """Foreground objects over the person; their pixels are background in every map."""
    x0, y0, x1, y1 = pbox
    bw, bh = max(x1 - x0, 4.0), max(y1 - y0, 4.0)
    kinds = []
    for _ in range(1 if rng.random() < 0.8 else 2):
        kind = str(rng.choice(["pole", "bar", "blob", "limb"], p=[0.25, 0.25, 0.3, 0.2]))
        m = R.Material(R.scene_color(rng), fold=rng.uniform(0.03, 0.2))
        materials.append(m)
        mid = len(materials) - 1
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        if kind == "pole":
            half = rng.uniform(0.04, 0.15) * bw
            poly = np.array([[cx - half, -1], [cx + half, -1], [cx + half, h + 1], [cx - half, h + 1]])
        elif kind == "bar":
            top = y1 - rng.uniform(0.1, 0.35) * bh
            poly = np.array([[-1, top], [w + 1, top], [w + 1, h + 1], [-1, h + 1]])
        elif kind == "blob":
            t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
            r = rng.uniform(0.08, 0.22) * bh * (1 + 0.2 * np.sin(int(rng.integers(2, 5)) * t + rng.uniform(0, 6.3)))
            poly = np.stack([cx + r * np.cos(t), cy + r * np.sin(t) * rng.uniform(0.6, 1.2)], 1)
        else:
            ang = rng.uniform(0, np.pi)
            ln = rng.uniform(0.3, 0.7) * bh
            poly = R.capsule(np.array([cx, cy]), np.array([cx + ln * math.cos(ang), cy + ln * math.sin(ang)]),
                             0.04 * bh, 0.035 * bh)
            m.color = R.skin_color(rng) if rng.random() < 0.6 else R.cloth_color(rng)
        canvas.fill(poly, 0, 0, mid, R.G_OCC)
        kinds.append(kind)
    return kinds


_NOISE_TILE: np.ndarray | None = None


def _noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Gaussian pixel noise: a window of a fixed 512x512 tile at a random offset (drawing fresh
    normals costs more than the rest of the colouring); deterministic for a given ``rng``."""
    global _NOISE_TILE
    if _NOISE_TILE is None:
        _NOISE_TILE = np.random.default_rng(20170721).standard_normal((512, 512, 3), dtype=np.float32)
    if h <= 512 and w <= 512:
        oy, ox = int(rng.integers(513 - h)), int(rng.integers(513 - w))
        tile = _NOISE_TILE[oy:oy + h, ox:ox + w]
    else:
        tile = _NOISE_TILE[(rng.integers(512) + np.arange(h)) % 512][:, (rng.integers(512) + np.arange(w)) % 512]
    return tile[..., :1] if rng.random() < 0.3 else tile


def _colourise(rng, mat: np.ndarray, materials: list[R.Material], h: int, w: int, scale: float) -> np.ndarray:
    """Materials -> RGB: base colours, patterns, background, folds, contour shading, light, blur, noise."""
    colors = np.stack([m.color for m in materials])
    pal = np.zeros((256, 3), np.uint8)
    pal[: len(colors)] = np.clip(colors, 0, 255).astype(np.uint8)
    pimg = Image.fromarray(mat, mode="L")
    pimg = pimg.convert("P") if pimg.mode != "P" else pimg
    pimg.putpalette(pal.ravel().tolist())
    person = np.array(pimg.convert("RGB"))
    for i, m in enumerate(materials):
        if m.pattern and m.color2 is not None:
            ys, xs = np.nonzero(mat == i)
            if len(ys) == 0:
                continue
            a, per = math.radians(m.angle), max(m.period * scale, 2.0)
            on = np.floor((xs * math.cos(a) + ys * math.sin(a)) / per)
            if m.pattern == 2:
                on += np.floor((-xs * math.sin(a) + ys * math.cos(a)) / per)
            sel = (on % 2) > 0
            person[ys[sel], xs[sel]] = np.clip(m.color2, 0, 255).astype(np.uint8)
    bgmask = Image.fromarray(((mat == 0) * 255).astype(np.uint8))
    img = Image.composite(_background(rng, h, w), Image.fromarray(person), bgmask)
    # one multiplicative shading map: folds, contours where materials meet, light gradient
    folds = np.array([m.fold for m in materials], np.float32)
    shade = 1 + folds[mat] * _lowfreq(rng, h, w, max(4.0, 0.06 * scale))
    edges = np.zeros((h, w), np.uint8)
    edges[:, 1:] |= (mat[:, 1:] != mat[:, :-1])
    edges[1:] |= (mat[1:] != mat[:-1])
    soft = np.asarray(Image.fromarray(edges * 255).filter(ImageFilter.BoxBlur(1)), np.float32)
    shade *= 1 - (rng.uniform(0.05, 0.3) / 255.0) * soft
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.ogrid[0:h, 0:w]
    ramp = ((xx - w / 2) * math.cos(ang) + (yy - h / 2) * math.sin(ang)) / max(h, w)
    shade *= (rng.uniform(0.65, 1.2) * (1 + rng.uniform(0, 0.5) * ramp)).astype(np.float32)
    cast = rng.uniform(0.92, 1.08, 3).astype(np.float32)  # colour cast
    arr = np.asarray(img, np.float32) * (shade[..., None] * cast)
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    r = rng.random()
    if r < 0.15:  # low resolution, as many LIP crops
        f = rng.uniform(0.35, 0.7)
        out = out.resize((max(8, int(w * f)), max(8, int(h * f))), Image.BILINEAR).resize((w, h), Image.BILINEAR)
    elif r < 0.6:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    arr = np.asarray(out, np.float32)
    arr += _noise(rng, h, w) * rng.uniform(1, 7)
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    if rng.random() < 0.04:  # LIP has grayscale images
        arr = np.asarray(Image.fromarray(arr).convert("L"))
    return arr


# ----------------------------------------------------------------------------------- writing
def _dirs(fmt: str, split: str, layout: str = "flat") -> tuple[str, str | None]:
    """Image and label folders of a split, relative to the root (see ``lipkit.data.layout``)."""
    if fmt != "lip":
        return "JPEGImages", "SegmentationPart"
    if layout == "official":
        if split == "test":
            return "Testing_images/testing_images", None
        return f"{_OFFICIAL_IMAGES}/{split}_images", f"{_OFFICIAL_LABELS}/{split}_segmentations"
    return f"{split}_images", (f"{split}_segmentations" if split != "test" else None)


def _list_paths(fmt: str, split: str, layout: str) -> tuple[str, str | None]:
    """The id list and the pose CSV of a split (None: no pose file), relative to the root."""
    pose = f"lip_{split}_set.csv" if fmt == "lip" and split != "test" else None
    if fmt != "lip" or layout == "flat":
        return f"{split}_id.txt", pose
    if split == "test":
        return "Testing_images/test_id.txt", None
    return f"{_OFFICIAL_IMAGES}/{split}_id.txt", f"TrainVal_pose_annotations/{pose}"


def sample_id(split: str, index: int) -> str:
    """Ids look like LIP's and are unique across splits (PASCAL's layout keeps all images in one folder)."""
    return f"synth_{split}_{index:06d}"


_PASCAL_PALETTE = np.zeros(768, np.uint8)
_PASCAL_PALETTE[: 3 * PASCAL_PERSON_PART.num_classes] = PASCAL_PERSON_PART.palette_array.ravel()


def _work(task: tuple) -> tuple[str, np.ndarray, dict]:
    root, split, index, cfg, layout = task
    config = SynthConfig(**cfg)
    sample = render_sample(image_rng(config.seed, split, index), config, parts=config.format != "lip")
    ident = sample_id(split, index)
    img_dir, lab_dir = _dirs(config.format, split, layout)
    Image.fromarray(sample.image).save(Path(root) / img_dir / f"{ident}.jpg", quality=JPEG_QUALITY)
    if config.format == "lip":
        if lab_dir is not None:
            Image.fromarray(sample.label, mode="L").save(Path(root) / lab_dir / f"{ident}.png")
    else:
        part = Image.fromarray(sample.parts, mode="L").convert("P")
        part.putpalette(_PASCAL_PALETTE.tolist())
        part.save(Path(root) / lab_dir / f"{ident}.png")
    meta = {"id": ident, **sample.meta}
    return ident, sample.pose, meta


def _prepare_root(root: Path, fmt: str, counts: dict[str, int], layout: str = "flat") -> None:
    """Create the folders; a previous SynthLIP under ``root`` is replaced, anything else is refused."""
    root.mkdir(parents=True, exist_ok=True)
    previous = (root / "synthlip.json").is_file()
    for split, n in counts.items():
        for d in _dirs(fmt, split, layout):
            if d is None:
                continue
            folder = root / d
            if folder.is_dir() and any(folder.iterdir()):
                if not previous:
                    raise FileExistsError(f"{folder} already holds files and {root} is not a SynthLIP folder "
                                          "(no synthlip.json): choose an empty or new root")
                for f in folder.iterdir():
                    if f.suffix in (".jpg", ".png") and f.name.startswith("synth_"):
                        f.unlink()
            folder.mkdir(parents=True, exist_ok=True)


def _write_lists(root: Path, fmt: str, layout: str, results: dict[str, list]) -> None:
    """Each split's id list, pose CSV (LIP) and ``meta_<split>.jsonl``, in index order."""
    for split, rows in results.items():
        id_list, pose_csv = _list_paths(fmt, split, layout)
        (root / id_list).write_text("".join(r[0] + "\n" for r in rows), encoding="utf-8")
        with open(root / f"meta_{split}.jsonl", "w", encoding="utf-8") as fh:
            for _, _, meta in rows:
                fh.write(json.dumps(meta, sort_keys=True) + "\n")
        if pose_csv is not None:
            (root / pose_csv).parent.mkdir(parents=True, exist_ok=True)
            write_pose_csv(root / pose_csv, [(i, p) for i, p, _ in rows])


def make_synthlip(root: str | os.PathLike, n_train: int, n_val: int, n_test: int = 0, seed: int = 0,
                  size_range: tuple[int, int] = (100, 500), workers: int | None = None, format: str = "lip",
                  occluder_p: float = 0.28, bystander_p: float = 0.12, progress: bool = True,
                  layout: str = "flat") -> Path:
    """Write a SynthLIP dataset under ``root`` and return ``root``.

    ``format="lip"``: ``{split}_images/<id>.jpg``, ``{train,val}_segmentations/<id>.png`` (id PNGs),
    ``{split}_id.txt``, ``lip_{train,val}_set.csv`` (pose) and ``meta_{split}.jsonl``.
    ``format="pascal-person-part"``: ``JPEGImages/``, ``SegmentationPart/`` (palette PNGs, 7 parts)
    and ``{split}_id.txt``, with the same people. Both write ``synthlip.json`` (version, arguments).
    ``layout="official"`` (LIP only) writes the same files where LIP's official archives put them
    (``TrainVal_images/TrainVal_images/{train,val}_images`` and ``*_id.txt``,
    ``TrainVal_parsing_annotations/TrainVal_parsing_annotations/*_segmentations``,
    ``TrainVal_pose_annotations/lip_*_set.csv``, ``Testing_images/testing_images`` + ``test_id.txt``).
    ``workers`` processes render in parallel (default: all CPUs); the files do not depend on it.
    """
    if format not in FORMATS:
        raise ValueError(f"format={format!r}: choose one of {', '.join(FORMATS)}")
    if layout not in LAYOUTS or (layout == "official" and format != "lip"):
        raise ValueError(f"layout={layout!r}: choose one of {', '.join(LAYOUTS)} (official: LIP's format only)")
    counts = {"train": int(n_train), "val": int(n_val), "test": int(n_test)}
    for split, n in counts.items():
        if n < 0:
            raise ValueError(f"n_{split}={n}: the number of images must be >= 0")
    lo, hi = (int(v) for v in size_range)
    if not 32 <= lo <= hi:
        raise ValueError(f"size_range={size_range}: need 32 <= min <= max (pixels per image side)")
    config = SynthConfig(seed=int(seed), size_range=(lo, hi), occluder_p=float(occluder_p),
                         bystander_p=float(bystander_p), format=format)
    root = Path(root)
    counts = {k: v for k, v in counts.items() if v > 0}
    _prepare_root(root, format, counts, layout)
    cfg = asdict(config)
    tasks = [(str(root), split, i, cfg, layout) for split, n in counts.items() for i in range(n)]
    workers = max(1, min(int(workers or os.cpu_count() or 1), len(tasks)))
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc="SynthLIP", unit="img", disable=not progress)
    results: dict[str, list] = {split: [] for split in counts}
    if workers == 1:
        for t in tasks:
            results[t[1]].append(_work(t))
            bar.update()
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            for t, res in zip(tasks, pool.imap(_work, tasks, chunksize=max(1, min(16, len(tasks) // (4 * workers))))):
                results[t[1]].append(res)
                bar.update()
    bar.close()
    _write_lists(root, format, layout, results)
    info = {"generator": "lipkit.data.synth", "version": VERSION, "format": format, "layout": layout,
            "label_set": LIP.name if format == "lip" else PASCAL_PERSON_PART.name,
            "counts": counts, "jpeg_quality": JPEG_QUALITY, **{k: v for k, v in cfg.items() if k != "format"},
            "pose_visibility": "nan: outside the image or behind an occluder; v=0 visible; v=1 covered by the person's own body",
            "views": "front: facing the camera; back: facing away; left/right: that side of the person toward the camera"}
    info["size_range"] = list(info["size_range"])
    (root / "synthlip.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return root


def read_meta(root: str | Path, split: str, ids: list[str] | None = None,
              columns: tuple[str, ...] | None = None) -> pd.DataFrame | None:
    """SynthLIP's per-image metadata (``meta_<split>.jsonl``, or a ``.csv``), or None without one.

    Rows in the file's order with an ``id`` column; given ``ids``, indexed by them instead (NaN rows
    for ids the file lacks), as dataset statistics line it up with the label files. ``columns`` keeps
    only those (at LIP's scale the full table, with its lists of garments, is a few hundred bytes an image).
    """
    root = Path(root)
    jsonl, csv = root / f"meta_{split}.jsonl", root / f"meta_{split}.csv"
    keep = None if columns is None else ("id", *columns)
    if jsonl.is_file():
        with open(jsonl, encoding="utf-8") as fh:  # line by line: pandas' read_json holds ~10x the file
            rows = [json.loads(line) for line in fh if line.strip()]
        if keep is not None:
            rows = [{k: r[k] for k in keep if k in r} for r in rows]
        frame = pd.DataFrame.from_records(rows)
    elif csv.is_file():
        frame = pd.read_csv(csv, dtype={"id": str}, usecols=lambda c: keep is None or c in keep)
    else:
        return None
    if "id" not in frame.columns:
        raise ValueError(f"{jsonl if jsonl.is_file() else csv}: metadata has no 'id' column")
    frame["id"] = frame["id"].astype(str)
    return frame if ids is None else frame.set_index("id").reindex(list(ids))
