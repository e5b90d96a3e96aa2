"""Notebook 01's closing note: what the dataset statistics show, and what they do not.

Every number in the note is computed from a :class:`lipkit.stats.DatasetStats`: the images behind
each statistic, which ones SynthLIP's generator fixes by construction (chosen probabilities and
rules) and which are measured, and what none of them says about real LIP.
"""

from __future__ import annotations


import numpy as np

from lipkit.stats import DatasetStats, share_interval
from lipkit.data.synth import VIEW_P, VIEWS


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.1 or x == 0 else f"{100 * x:.1f}%" if x >= 0.001 else f"{100 * x:.2f}%"


def _count(stats: DatasetStats, a: str, b: str) -> int:
    return int(stats.cooccurrence("count").loc[a, b]) if {a, b} <= set(stats.label_set.classes) else 0


def _basis(stats: DatasetStats) -> list[str]:
    n, gen = stats.num_images, stats.generator
    extra = []
    if stats.pose is not None:
        extra.append(f"their pose file ({int(np.isfinite(stats.pose[..., 0]).any(axis=1).sum())} images with a joint)")
    if stats.meta is not None:
        extra.append(f"their metadata ({int(stats.meta.notna().any(axis=1).sum())} rows)")
    line = (f"* **Basis.** Every table and figure above comes from the same {n} label maps of {stats.name} split "
            f"'{stats.split}'" + (f", with {' and '.join(extra)}" if extra else "")
            + ". Nothing was trained here: no network, no training step.")
    if gen is not None:
        lo, hi = gen.get("size_range", ["?", "?"])
        line += (f" The images were rendered by SynthLIP {gen.get('version', '')} from one seed ({gen.get('seed')}), "
                 f"sides {lo}-{hi} px: another seed or size range gives other counts.")
    return [line]


def _by_construction(stats: DatasetStats) -> list[str]:
    """The SynthLIP statistics its generator fixes, each with the count observed here."""
    n, g = stats.num_images, stats.garments_shown()
    worn = ", ".join(f"{int(g.loc[k, 'worn'])} {k}" for k in g.index)
    views = stats.view_counts()
    drawn = ", ".join(f"{v} {100 * p:.0f}%" for v, p in zip(VIEWS, VIEW_P))
    seen = ", ".join(f"{v} {int(views.get(v, 0))}" for v in VIEWS)
    ext = stats.size_extremes()
    lo, hi = stats.generator.get("size_range", [ext.loc["width", "min"], ext.loc["width", "max"]])
    at = {(side, edge): int(ext.loc[side, f"images_at_{key}"]) if int(ext.loc[side, key]) == edge else 0
          for side in ("width", "height") for key, edge in (("min", lo), ("max", hi))}
    return [
        f"* **Fixed by the generator, not found in the data.** What each person wears is drawn with chosen "
        f"probabilities (`synth_render._sample_outfit`); the people of these {n} images wear: {worn}. The long "
        f"tail of images per class starts from these choices.",
        f"* A dress or a jumpsuit is drawn without pants or a skirt. The labels agree: Dress with Pants in "
        f"{_count(stats, 'Dress', 'Pants')} images, with Skirt in {_count(stats, 'Dress', 'Skirt')}, Jumpsuits with "
        f"Pants in {_count(stats, 'Jumpsuits', 'Pants')}. These zeros are the generator's rule, not a regularity "
        f"learned from people.",
        f"* Views are drawn with fixed probabilities ({drawn}); counted here: {seen}.",
        f"* Image heights are drawn inside [{lo}, {hi}] px and widths are clamped to it (`synth._size`): "
        f"{at['width', lo]} of {n} images have a width of exactly {lo} px and {at['width', hi]} exactly {hi} px, "
        f"against {at['height', lo]} and {at['height', hi]} for heights. Widths piled at an end of the range are "
        f"this clamping: a setting, not a measurement.",
    ]


def _measured(stats: DatasetStats) -> list[str]:
    """What the labels and the pose file show after views, framing and occluders."""
    table = stats.class_table()
    person = table.iloc[1:]
    present = person[person["images"] > 0]
    how = ("come out of the drawn geometry, views, framing and occluders" if stats.generator is not None
           else "are measured on the label maps and the pose file")
    line = ("* **Measured on the labels.** Pixel shares, region sizes, which classes are visible, their "
            f"co-occurrence and joint visibility {how}: "
            f"background covers {_pct(table['pixel_share'].iloc[0])} of the labelled pixels")
    if len(present):
        small = present["median_region"].idxmin()
        line += (f", and the smallest class by median region is {table.loc[small, 'class']} "
                 f"({_pct(table.loc[small, 'median_region'])} of its image)")
    line += "."
    g = stats.garments_shown()
    if len(g) and g["worn"].sum():
        hidden = g[g["shown"] < g["worn"]]
        line += (f" Of {int(g['worn'].sum())} garments worn, {int(g['shown'].sum())} are visible in the label"
                 + (": " + ", ".join(f"{k} in {int(r.shown)} of {int(r.worn)}" for k, r in hidden.iterrows())
                    if len(hidden) else "") + ".")
    lines = [line]
    vis = stats.pose_visibility()
    if len(vis):
        rare = vis.index[vis["annotated"] < 0.5].tolist()
        annotated = ~np.isnan(stats.pose[..., :2]).any(axis=-1)
        v1 = float((stats.pose[..., 2] == 1)[annotated].mean()) if annotated.any() else 0.0
        lines.append(f"* Joints with coordinates in fewer than half of the images: {', '.join(rare) or 'none'}; "
                     f"v = 1 on {_pct(v1)} of the joints that have coordinates.")
    return lines


def _does_not(stats: DatasetStats) -> list[str]:
    """What these numbers cannot say: another dataset, and the uncertainty of a small sample."""
    n, table = stats.num_images, stats.class_table().iloc[1:]
    present = table[table["images"] > 0]
    few = present[present["images"] < 5]
    absent = table[table["images"] == 0]
    line = "* **What it does not show.** "
    if stats.generator is not None:
        line += ("These are SynthLIP's statistics: they say nothing about real LIP's class frequencies, image "
                 "sizes or joint visibility (run this notebook with `DATA_ROOT` set to LIP to measure those). ")
    if len(present):
        rare = present["images"].idxmin()
        k = int(table.loc[rare, "images"])
        a, b = share_interval(k, n)
        line += (f"With {n} images every share is rough: {table.loc[rare, 'class']} is in {k} of {n} images, "
                 f"a 95% interval of {_pct(a)} to {_pct(b)} of images. ")
    if len(few):
        line += (f"{len(few)} classes ({', '.join(few['class'])}) are in fewer than 5 images, so their rows of the "
                 "co-occurrence figure rest on fewer than 5 images each. ")
    if len(absent):
        line += f"{len(absent)} classes never appear here ({', '.join(absent['class'])}). "
    return [line.rstrip()]


def what_it_shows(stats: DatasetStats) -> str:
    """Notebook 01's closing note, markdown bullets under its heading "What this shows, and what it does
    not": the images behind each statistic, which statistics SynthLIP's generator fixes and which are
    measured, and what they do not say about real LIP. Every number in it is computed from ``stats``."""
    lines = _basis(stats)
    if stats.generator is not None:
        lines += _by_construction(stats)
    return "\n".join(lines + _measured(stats) + _does_not(stats))


__all__ = ["what_it_shows"]
