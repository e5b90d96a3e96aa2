"""SynthLIP (or LIP) beside Clothing Co-Parsing's real photos, on the common ground of the ``ccp`` classes.

Notebook 01's CCP section: both datasets are read as :class:`Side` objects, a
:class:`~lipkit.stats.DatasetStats` in the ``ccp`` label set plus each image's person height. A
LIP-format split's labels are mapped with :data:`lipkit.data.ccp.LIP_TO_CCP` (Skin = Face + arms +
legs, Shoes = both shoes; left and right meet), CCP's tags with its tag table. :func:`compare` puts
the per-class numbers side by side with their ratio; :func:`sizes`, :func:`top_pairs` and
:func:`conditional` the image sizes and the co-occurrence; :func:`note` writes, from those numbers
only, which properties match within a factor (2 by default) and which do not, with the images
behind each. Without a CCP clone (``LIPKIT_CCP`` unset) :func:`how_to_get` says how to get one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lipkit.data.ccp import CLONE, UNANNOTATED_IDS, check_source, lip_to_ccp, mat_path, read_ccp_label, split_ids
from lipkit.data.io import read_id_list, read_label
from lipkit.data.layout import resolve_lip
from lipkit.labels import CCP, LIP, LabelSet
from lipkit.stats import DatasetStats, dataset_name, read_generator, stats_from_labels

FACTOR = 2.0  # a property "matches" when the ratio of the two values lies within [1 / FACTOR, FACTOR]
MIN_IMAGES = 5  # classes (or conditions) in fewer images of either dataset are not judged
GROUPS = ("image share", "pixel share", "median region")  # class_table columns compared, by their names here
_COLUMNS = {"image share": "image_share", "pixel share": "pixel_share", "median region": "median_region"}
# P(second present | first present): the pairs whose rules differ between a generator and real outfits.
CONDITIONAL_PAIRS: tuple[tuple[str, str], ...] = (
    ("Dress", "Pants"), ("Dress", "Skirt"), ("Skirt", "Pants"), ("Dress", "Upper-clothes"),
    ("Coat", "Upper-clothes"), ("Pants", "Socks"), ("Hair", "Hat"),
)


@dataclass
class Side:
    """One dataset in ccp classes: its statistics, and per image the person's height (share of the image
    height) and whether the person is cut by the top or bottom border."""

    stats: DatasetStats
    person_height: np.ndarray
    person_cut: np.ndarray

    @property
    def name(self) -> str:
        return self.stats.name

    @property
    def num_images(self) -> int:
        return self.stats.num_images


def comparable(label_set: LabelSet) -> bool:
    """Whether a label set's ids can be mapped onto ccp's: LIP's 20 classes (LIP_TO_CCP)."""
    return tuple(label_set.classes) == tuple(LIP.classes)


def person_extent(label: np.ndarray) -> tuple[float, bool]:
    """The person's height over the image height (rows from the first to the last holding a non-background
    pixel; 0 if none) and whether the person reaches the top or bottom row (cut by the border).

    Ignored pixels (255: CCP's bags, belts, jewellery, legwear) count as the person's.
    """
    label = np.asarray(label)
    rows = np.flatnonzero((label != 0).any(axis=1))
    if not rows.size:
        return 0.0, False
    return float(rows[-1] - rows[0] + 1) / label.shape[0], bool(rows[0] == 0 or rows[-1] == label.shape[0] - 1)


def side_from_labels(labels: Iterable[np.ndarray], ids: Sequence[str], dataset: str, split: str = "") -> Side:
    """A :class:`Side` of ccp label maps (uint8 ccp ids), read once: histograms and person heights."""
    extents: list[tuple[float, bool]] = []

    def tracked() -> Iterator[np.ndarray]:
        for label in labels:
            extents.append(person_extent(label))
            yield label

    st = stats_from_labels(tracked(), CCP, ids=ids, split=split, dataset=dataset)  # its seconds include the reading
    heights = np.array([h for h, _ in extents], dtype=np.float64)
    return Side(st, heights, np.array([c for _, c in extents], dtype=bool))


def lip_side(root: str | Path, split: str = "train", limit: int | None = None) -> Side:
    """A LIP-format split (SynthLIP or LIP) in ccp classes: each label read and mapped by LIP_TO_CCP."""
    layout = resolve_lip(root, split)
    ids = read_id_list(layout.id_list)[: limit or None]
    labels = (lip_to_ccp(read_label(layout.label_dir / f"{i}{layout.label_ext}")) for i in ids)
    side = side_from_labels(labels, ids, dataset_name(root, LIP), split)
    side.stats.generator = read_generator(root)
    return side


def ccp_side(src: str | Path, splits: Sequence[str] = ("train", "val"), ids: Sequence[str] | None = None) -> Side:
    """CCP's labels in ccp ids: every id of ``splits`` (default 903 train + 100 val; 0536, an empty label, is in
    neither), or just ``ids``. About 8 s for all 1,003 on one core."""
    root = check_source(src)
    ids = [i for split in splits for i in split_ids(split)] if ids is None else list(ids)
    labels = (read_ccp_label(mat_path(root, i)) for i in ids)
    return side_from_labels(labels, ids, "CCP", "+".join(splits))


def how_to_get(label_set: LabelSet = LIP) -> str:
    """What the CCP section needs when it computes nothing: the clone and ``LIPKIT_CCP`` (or LIP's classes)."""
    if not comparable(label_set):
        return (f"The comparison maps LIP's 20 classes onto CCP's; label set {label_set.name!r} has other classes, "
                "so nothing is computed here.")
    return ("No Clothing Co-Parsing clone: `LIPKIT_CCP` is not set, so nothing is computed here. To compare with "
            f"CCP's real photos: `{CLONE}`, then `export LIPKIT_CCP=/path/to/clothing-co-parsing` and run the "
            "notebook again (docs/ccp.md).")


def read_both(root: str | Path, split: str, ccp_src: str | Path | None, label_set: LabelSet = LIP,
              limit: int | None = None) -> tuple[Side, Side] | None:
    """The data at ``root`` and CCP as two :class:`Side` objects; None without a CCP clone or with non-LIP classes."""
    if ccp_src is None or not comparable(label_set):
        return None
    return lip_side(root, split, limit), ccp_side(ccp_src)


def basis(a: Side, b: Side) -> str:
    """One line: what was read on each side and how long it took."""
    return (f"{a.name} {a.stats.split}: {a.num_images:,} label maps read in {a.stats.seconds:.1f} s; {b.name}: "
            f"{b.num_images:,} labels ({b.stats.split}; {', '.join(UNANNOTATED_IDS)}, an empty label, left out) "
            f"read in {b.stats.seconds:.1f} s")


def _ratio(a: pd.Series, b: pd.Series) -> pd.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.Series(np.asarray(a, dtype=float) / np.asarray(b, dtype=float), index=a.index)


def compare(a: Side, b: Side) -> pd.DataFrame:
    """Per ccp class, side by side: images containing it, their share, the pixel share and the median
    region (share of the image it covers where present), each with the ratio ``a / b``.

    Columns are (property, dataset name or ``ratio``); pixel shares exclude ignored pixels (255).
    """
    if a.name == b.name:
        raise ValueError(f"both datasets are called {a.name!r}: name them apart (DatasetStats.dataset)")
    ta, tb = a.stats.class_table(), b.stats.class_table()
    columns: dict[tuple[str, str], pd.Series] = {("images", a.name): ta["images"], ("images", b.name): tb["images"]}
    for group in GROUPS:
        col = _COLUMNS[group]
        columns[(group, a.name)], columns[(group, b.name)] = ta[col], tb[col]
        columns[(group, "ratio")] = _ratio(ta[col], tb[col])
    frame = pd.DataFrame(columns)
    frame.index = pd.Index(CCP.classes, name="class")
    return frame


def _quantiles(values: np.ndarray) -> tuple[float, float, float]:
    if not len(values):
        return (np.nan, np.nan, np.nan)
    return tuple(float(v) for v in np.quantile(values, [0.1, 0.5, 0.9]))  # type: ignore[return-value]


def sizes(a: Side, b: Side) -> pd.DataFrame:
    """One row per dataset: width and height ranges, the median aspect (height / width), the person's height
    over the image height (10th percentile, median, 90th) and the share of images whose person the top or
    bottom border cuts."""
    rows = {}
    for side in (a, b):
        w, h = side.stats.sizes[:, 0], side.stats.sizes[:, 1]
        p10, p50, p90 = _quantiles(side.person_height)
        rows[side.name] = {"images": side.num_images, "width min": int(w.min()), "width max": int(w.max()),
                           "height min": int(h.min()), "height max": int(h.max()),
                           "median aspect (h/w)": float(np.median(h / w)), "person height p10": p10,
                           "person height median": p50, "person height p90": p90,
                           "person cut by top/bottom": float(side.person_cut.mean()) if side.num_images else np.nan}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("dataset")


def top_pairs(a: Side, b: Side, n: int = 8) -> pd.DataFrame:
    """The ``n`` class pairs (background left out) found together in most images of each, with the share of
    images holding both; rank by rank, side by side."""
    parts = {}
    for side in (a, b):
        pairs = side.stats.top_pairs(n).reset_index(drop=True)
        parts[(side.name, "pair")] = pairs["class_a"] + " + " + pairs["class_b"]
        parts[(side.name, "image share")] = pairs["images"] / max(side.num_images, 1)
    frame = pd.DataFrame(parts)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="rank")
    return frame


def conditional(a: Side, b: Side, pairs: Sequence[tuple[str, str]] = CONDITIONAL_PAIRS) -> pd.DataFrame:
    """P(second class present | first present) in each, with the images holding the first class and the ratio."""
    columns: dict[tuple[str, str], list[float]] = {}
    for side in (a, b):
        both = side.stats.cooccurrence("count")
        columns[("share", side.name)] = [both.loc[x, y] / both.loc[x, x] if both.loc[x, x] else np.nan for x, y in pairs]
        columns[("images with the first", side.name)] = [int(both.loc[x, x]) for x, _ in pairs]
    frame = pd.DataFrame(columns, index=pd.Index([f"P({y} | {x})" for x, y in pairs], name="condition"))
    frame[("share", "ratio")] = _ratio(frame[("share", a.name)], frame[("share", b.name)])
    return frame[[("share", a.name), ("share", b.name), ("share", "ratio"),
                  ("images with the first", a.name), ("images with the first", b.name)]]


# ----------------------------------------------------------------------------- the computed note
@dataclass(frozen=True)
class Verdict:
    """One property compared: its kind, its text with the numbers, whether the values match and whether
    enough images lie behind it to judge."""

    kind: str
    text: str
    match: bool
    judged: bool


KINDS = ("pixel share", "images containing it", "region where present", "image and person size", "co-occurrence")
_KIND_OF_GROUP = {"image share": "images containing it", "pixel share": "pixel share", "median region": "region where present"}


def within(a: float, b: float, factor: float = FACTOR) -> bool:
    """Whether ``a`` lies within ``factor`` times ``b`` either way (``b / factor <= a <= b * factor``); 0 matches only 0."""
    if not (np.isfinite(a) and np.isfinite(b)):
        return False
    if a == 0 or b == 0:
        return a == b
    return 1 / factor <= a / b <= factor


def _times(a: float, b: float) -> str:
    if a == b == 0:
        return "both 0"
    if b == 0:
        return "none in the other"
    r = a / b
    return f"{r:.0f}x" if r >= 10 else f"{r:#.2g}x"


def _pct(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{100 * x:.0f}%" if x >= 0.1 or x == 0 else f"{100 * x:.2g}%"


def class_verdicts(frame: pd.DataFrame, a: Side, b: Side, factor: float = FACTOR,
                   min_images: int = MIN_IMAGES) -> list[Verdict]:
    """Per class, pixel share, images containing it and median region, judged from :func:`compare`'s frame.

    Shares are judged when each dataset holds the class in ``min_images`` images or would at the other's
    image share (so a class common in one and missing from the other counts); region sizes, measured where
    the class is present, need ``min_images`` images holding it in each.
    """
    out = []
    for group in GROUPS:
        kind = _KIND_OF_GROUP[group]
        for cls in frame.index[1:] if group == "image share" else frame.index:  # background is in every image
            ka, kb = int(frame.loc[cls, ("images", a.name)]), int(frame.loc[cls, ("images", b.name)])
            va, vb = float(frame.loc[cls, (group, a.name)]), float(frame.loc[cls, (group, b.name)])
            if group == "median region":
                judged = ka >= min_images and kb >= min_images
            else:
                judged = ((ka >= min_images or a.num_images * kb / max(b.num_images, 1) >= min_images)
                          and (kb >= min_images or b.num_images * ka / max(a.num_images, 1) >= min_images))
            text = f"{cls} {_times(va, vb)} ({ka:,} | {kb:,} images)"
            out.append(Verdict(kind, text, within(va, vb, factor), judged))
    return out


def size_verdicts(a: Side, b: Side, factor: float = FACTOR, min_images: int = MIN_IMAGES) -> list[Verdict]:
    """Median image height and aspect, median person height and the share of people cut by the border."""
    t = sizes(a, b)
    ha, hb = (float(np.median(s.stats.sizes[:, 1])) for s in (a, b))
    (sa, sb), (pa, pb), (ca, cb) = ((float(t.loc[a.name, col]), float(t.loc[b.name, col])) for col in
                                    ("median aspect (h/w)", "person height median", "person cut by top/bottom"))
    rows = [("median image height", ha, hb, f"{ha:.0f} vs {hb:.0f} px"),
            ("median aspect (h/w)", sa, sb, f"{sa:.2f} vs {sb:.2f}"),
            ("median person height", pa, pb, f"{_pct(pa)} vs {_pct(pb)} of the image height"),
            ("person cut by the top or bottom border", ca, cb, f"in {_pct(ca)} vs {_pct(cb)} of images")]
    judged = min(a.num_images, b.num_images) >= min_images
    return [Verdict("image and person size", f"{what} {shown} ({_times(va, vb)}; {a.num_images:,} | "
                    f"{b.num_images:,} images)", within(va, vb, factor), judged) for what, va, vb, shown in rows]


def pair_verdicts(a: Side, b: Side, factor: float = FACTOR, min_images: int = MIN_IMAGES,
                  pairs: Sequence[tuple[str, str]] = CONDITIONAL_PAIRS) -> list[Verdict]:
    """The conditional shares of :func:`conditional`, judged where each dataset has ``min_images`` images of the condition."""
    t = conditional(a, b, pairs)
    out = []
    for cond, row in t.iterrows():
        pa, pb = float(row[("share", a.name)]), float(row[("share", b.name)])
        na, nb = int(row[("images with the first", a.name)]), int(row[("images with the first", b.name)])
        text = f"{cond} {_pct(pa)} of {na:,} vs {_pct(pb)} of {nb:,} images"
        out.append(Verdict("co-occurrence", text, within(pa, pb, factor), na >= min_images and nb >= min_images))
    return out


def _listing(verdicts: list[Verdict]) -> str:
    """Nested markdown bullets, one per kind of property, or "none"."""
    parts = [f"\n  * {kind}: " + ", ".join(v.text for v in verdicts if v.kind == kind) + "."
             for kind in KINDS if any(v.kind == kind for v in verdicts)]
    return "".join(parts) if parts else "none."


def note(a: Side, b: Side, factor: float = FACTOR, min_images: int = MIN_IMAGES) -> str:
    """Markdown bullets, every number computed: which properties of ``a`` lie within ``factor`` of CCP's
    (``b``), which do not, and which rest on too few images to say; ratios are ``a / b``, and
    ``(k | m images)`` the images holding the class in each."""
    verdicts = (class_verdicts(compare(a, b), a, b, factor, min_images) + size_verdicts(a, b, factor, min_images)
                + pair_verdicts(a, b, factor, min_images))
    gen = a.stats.generator
    lines = [f"* **Basis.** {a.num_images:,} label maps of {a.name} split '{a.stats.split}'"
             + (f" (SynthLIP {gen.get('version', '')} seed {gen.get('seed')})" if gen else "")
             + f" against {b.num_images:,} labelled real photos of {b.name} ({b.stats.split}), both in ccp classes. "
             f"A property is reproduced when {a.name}'s value lies within {factor:g}x of {b.name}'s (ratio "
             f"{a.name} / {b.name} from {1 / factor:.2g} to {factor:g}); shares need {min_images} images holding "
             f"the class in each dataset (or expected there at the other's share), region sizes and conditional "
             f"shares {min_images} images of the class in each. Each item gives the ratio, then the images behind it "
             f"({a.name} | {b.name})."]
    for head, keep in ((f"Reproduced (within {factor:g}x)", lambda v: v.judged and v.match),
                       (f"Not reproduced (more than {factor:g}x apart)", lambda v: v.judged and not v.match),
                       ("Not judged (too few images)", lambda v: not v.judged)):
        lines.append(f"* **{head}.** " + _listing([v for v in verdicts if keep(v)]))
    if gen:
        lines.append(f"* The image shares and co-occurrences of {a.name} follow its generator's chosen probabilities "
                     "and rules (section *Set by the generator, or measured*): a mismatch there is a setting to "
                     "revisit; pixel shares, region sizes and person sizes are measured on its rendered labels.")
    return "\n".join(lines)


def title(a: Side, b: Side) -> str:
    """A comparison figure's title: both datasets, their images, and the common classes."""
    return (f"{a.name} {a.stats.split} ({a.num_images:,} images) vs {b.name} ({b.num_images:,} real photos), "
            "in ccp classes (Skin = face + arms + legs, Shoes = both shoes)")


__all__ = ["CONDITIONAL_PAIRS", "FACTOR", "MIN_IMAGES", "Side", "Verdict", "basis", "ccp_side", "class_verdicts",
           "comparable", "compare", "conditional", "how_to_get", "lip_side", "note", "pair_verdicts", "person_extent",
           "read_both", "side_from_labels", "size_verdicts", "sizes", "title", "top_pairs", "within"]
