"""SynthLIP (or LIP) beside Clothing Co-Parsing (lipkit.stats_ccp): person extents, the side-by-side tables,
the LIP -> ccp mapping of a LIP-format split, the computed note's thresholds and the comparison figure.

Label maps are tiny and hand-made; every expected share below is worked out by hand in the comments, not
taken from the module under test. The test marked ``ccp`` reads the real clone named by LIPKIT_CCP.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from matplotlib.figure import Figure

from lipkit import stats_ccp as sc
from lipkit import viz
from lipkit.data.ccp import split_ids
from lipkit.labels import CCP, LIP, get_label_set
from lipkit.stats import compute_stats
from test_ccp import fake_ccp
from test_stats import _write_split

# ccp ids: 0 Background, 1 Hat, 2 Hair, 3 Glove, 5 Upper-clothes, 6 Dress, 7 Coat, 9 Pants, 13 Skin, 14 Shoes
A1 = np.array([[0, 0, 2, 2], [5, 5, 9, 13]], np.uint8)  # 8 px: bg 2, hair 2, upper 2, pants 1, skin 1
A2 = np.array([[2, 13], [6, 6]], np.uint8)  # 4 px: hair 1, skin 1, dress 2
B1 = np.array([[0, 0, 0], [2, 13, 255]], np.uint8)  # 6 px: bg 3, hair 1, skin 1, ignored 1 (5 labelled)


def _sides() -> tuple[sc.Side, sc.Side]:
    return (sc.side_from_labels([A1, A2], ["a1", "a2"], "A", "train"),
            sc.side_from_labels([B1], ["b1"], "B", "all"))


# ------------------------------------------------------------------ person extent
def test_person_extent_by_hand() -> None:
    label = np.zeros((10, 4), np.uint8)
    label[2:8, 1] = 5  # rows 2-7: 6 of 10 rows, away from the border
    assert sc.person_extent(label) == (pytest.approx(0.6), False)
    label[9, 3] = 255  # an ignored pixel (a bag) is the person's: rows 2-9, cut by the bottom row
    assert sc.person_extent(label) == (pytest.approx(0.8), True)
    assert sc.person_extent(np.zeros((5, 5), np.uint8)) == (0.0, False)
    top = np.zeros((4, 2), np.uint8)
    top[0, 0] = 13
    assert sc.person_extent(top) == (pytest.approx(0.25), True)


# ------------------------------------------------------------------ the side-by-side tables
def test_compare_against_hand_computed_shares() -> None:
    a, b = _sides()
    t = sc.compare(a, b)
    assert list(t.index) == list(CCP.classes)
    hair, skin, upper = "Hair", "Skin", "Upper-clothes"
    # A: 12 labelled pixels, hair 2 + 1; B: 5 labelled pixels (the ignored one left out), hair 1
    assert t.loc[hair, ("pixel share", "A")] == pytest.approx(3 / 12)
    assert t.loc[hair, ("pixel share", "B")] == pytest.approx(1 / 5)
    assert t.loc[hair, ("pixel share", "ratio")] == pytest.approx((3 / 12) / (1 / 5))
    assert t.loc["Background", ("pixel share", "B")] == pytest.approx(3 / 5)
    assert t.loc[upper, ("pixel share", "ratio")] == np.inf  # in A only
    assert np.isnan(t.loc["Coat", ("pixel share", "ratio")])  # in neither
    # images: hair in both maps of A, upper-clothes in one; B's one map holds hair
    assert t.loc[hair, ("images", "A")] == 2 and t.loc[upper, ("images", "A")] == 1 and t.loc[hair, ("images", "B")] == 1
    assert t.loc[upper, ("image share", "A")] == pytest.approx(0.5)
    assert t.loc[hair, ("image share", "ratio")] == pytest.approx(1.0)
    # median region, over the images holding the class, of the whole image area: hair 2/8 and 1/4 in A, 1/6 in B
    assert t.loc[hair, ("median region", "A")] == pytest.approx(0.25)
    assert t.loc[skin, ("median region", "A")] == pytest.approx((1 / 8 + 1 / 4) / 2)
    assert t.loc[hair, ("median region", "ratio")] == pytest.approx(0.25 / (1 / 6))
    with pytest.raises(ValueError, match="both datasets"):
        sc.compare(a, a)


def test_sizes_pairs_and_conditional_shares_by_hand() -> None:
    a, b = _sides()
    s = sc.sizes(a, b)
    assert s.loc["A", ["width min", "width max", "height min", "height max"]].tolist() == [2, 4, 2, 2]
    assert s.loc["A", "median aspect (h/w)"] == pytest.approx(np.median([2 / 4, 2 / 2]))
    assert s.loc["B", "person height median"] == pytest.approx(0.5)  # B1: only row 1 holds the person
    assert s.loc["A", "person cut by top/bottom"] == pytest.approx(1.0)  # both maps reach the top and bottom rows
    assert s.loc["B", "person cut by top/bottom"] == pytest.approx(1.0)  # row 1 is B1's bottom row
    pairs = sc.top_pairs(a, b, n=1)
    assert pairs.loc[1, ("A", "pair")] == "Hair + Skin" and pairs.loc[1, ("A", "image share")] == pytest.approx(1.0)
    c = sc.conditional(a, b, pairs=[("Hair", "Pants"), ("Dress", "Pants")])
    # A: hair in 2 images, pants in 1 of them; dress in 1 image, without pants. B: hair without pants, no dress.
    assert c.loc["P(Pants | Hair)", ("share", "A")] == pytest.approx(0.5)
    assert c.loc["P(Pants | Hair)", ("share", "B")] == 0.0
    assert c.loc["P(Pants | Dress)", ("share", "A")] == 0.0 and np.isnan(c.loc["P(Pants | Dress)", ("share", "B")])
    assert c.loc["P(Pants | Hair)", ("images with the first", "A")] == 2
    assert c.loc["P(Pants | Dress)", ("images with the first", "B")] == 0


# ------------------------------------------------------------------ a LIP-format split in ccp classes
LIP_MAPS = [
    # LIP ids: 2 Hair, 5 Upper-clothes, 9 Pants, 13 Face, 14/15 arms, 16/17 legs, 18/19 shoes
    np.array([[0, 2, 2, 0], [14, 13, 15, 0], [16, 9, 17, 0], [18, 0, 19, 0]], np.uint8),  # skin 5, shoes 2
    np.array([[0, 0, 0], [5, 13, 5], [0, 0, 0]], np.uint8),  # skin 1 (the face), no shoes
]


def test_lip_side_maps_face_arms_and_legs_to_skin(tmp_path: Path) -> None:
    root = tmp_path / "lip"
    _write_split(root, "train", LIP_MAPS)
    side, lip = sc.lip_side(root, "train"), compute_stats(root, "train", progress=False)
    assert side.stats.label_set is CCP and side.name == "LIP" and side.stats.generator is None
    skin, shoes = CCP.index("Skin"), CCP.index("Shoes")
    assert side.stats.pixel_counts[:, skin].tolist() == [5, 1] and side.stats.pixel_counts[:, shoes].tolist() == [2, 0]
    parts = [LIP.index(c) for c in ("Face", "Left-arm", "Right-arm", "Left-leg", "Right-leg")]
    np.testing.assert_array_equal(side.stats.pixel_counts[:, skin], lip.pixel_counts[:, parts].sum(axis=1))
    np.testing.assert_array_equal(side.stats.pixel_counts[:, :13], lip.pixel_counts[:, :13])
    ours, theirs = side.stats.class_table(), lip.class_table()
    assert ours.loc[skin, "pixel_share"] == pytest.approx(theirs.loc[parts, "pixel_share"].sum())
    assert ours.loc[shoes, "images"] == 1  # both shoes in the first map count once
    assert side.person_height.tolist() == pytest.approx([1.0, 1 / 3]) and side.person_cut.tolist() == [True, False]
    assert sc.lip_side(root, "train", limit=1).num_images == 1


def test_synthlip_root_is_named_and_its_generator_read(tmp_path: Path) -> None:
    root = tmp_path / "synth"
    _write_split(root, "train", LIP_MAPS)
    (root / "synthlip.json").write_text(json.dumps({"seed": 7, "version": "9.9"}))
    side = sc.lip_side(root, "train")
    assert side.name == "SynthLIP" and side.stats.generator["seed"] == 7
    other = sc.side_from_labels([B1] * 5, [str(i) for i in range(5)], "CCP", "all")
    assert "SynthLIP 9.9 seed 7" in sc.note(side, other)


def test_ccp_side_reads_hand_made_labels(tmp_path: Path) -> None:
    src = fake_ccp(tmp_path / "ccp")
    mats = src / "annotations" / "pixel-level"
    # CCP tags: 0 null, 2 bag (ignored), 14 dress, 19 hair, 31 pants, 39 shoes, 41 skin
    scipy.io.savemat(mats / "0001.mat", {"groundtruth": np.array([[0, 19, 0], [0, 41, 0], [2, 31, 31], [0, 39, 0]], np.uint8)})
    scipy.io.savemat(mats / "0002.mat", {"groundtruth": np.array([[0, 0], [19, 19], [14, 14], [41, 14], [0, 0]], np.uint8)})
    side = sc.ccp_side(src, ids=["0001", "0002"])
    assert side.name == "CCP" and side.stats.ids == ["0001", "0002"]
    counts = side.stats.pixel_counts
    assert counts[0, [0, 2, 9, 13, 14]].tolist() == [6, 1, 2, 1, 1] and side.stats.ignored.tolist() == [1, 0]
    assert counts[1, [0, 2, 6, 13]].tolist() == [4, 2, 3, 1]
    assert side.person_height.tolist() == pytest.approx([1.0, 3 / 5]) and side.person_cut.tolist() == [True, False]


def test_without_ccp_nothing_is_computed() -> None:
    assert sc.read_both("/nowhere", "train", None) is None
    assert sc.read_both("/nowhere", "train", "/also-nowhere", label_set=get_label_set("atr")) is None
    text = sc.how_to_get()
    assert "git clone https://github.com/bearpaw/clothing-co-parsing" in text and "export LIPKIT_CCP=" in text
    assert "atr" in sc.how_to_get(get_label_set("atr"))
    assert sc.comparable(LIP) and not sc.comparable(get_label_set("cihp"))


# ------------------------------------------------------------------ the computed note
def test_within_is_a_symmetric_factor() -> None:
    assert sc.within(2.0, 1.0) and sc.within(0.5, 1.0) and sc.within(1.0, 1.0)
    assert not sc.within(2.01, 1.0) and not sc.within(0.49, 1.0)
    assert sc.within(2.9, 1.0, factor=3) and sc.within(0.0, 0.0)
    assert not sc.within(0.0, 0.1) and not sc.within(np.nan, 1.0)


def _present(name: str, n: int, k: dict[str, int]) -> sc.Side:
    """``n`` one-row maps [background, Hat, Hair, Glove, Coat]: class c drawn (one pixel) in the first k[c] maps."""
    classes = ("Hat", "Hair", "Glove", "Coat")
    maps = []
    for i in range(n):
        row = [0] + [CCP.index(c) if i < k.get(c, 0) else 0 for c in classes]
        maps.append(np.array([row], np.uint8))
    return sc.side_from_labels(maps, [str(i) for i in range(n)], name)


def _section(text: str, head: str) -> str:
    return next(part for part in text.split("\n* ") if part.removeprefix("* ").startswith(f"**{head}"))


def test_note_thresholds() -> None:
    a = _present("A", 10, {"Hat": 6, "Hair": 7, "Glove": 4, "Coat": 0})
    b = _present("B", 10, {"Hat": 3, "Hair": 3, "Glove": 4, "Coat": 8})
    text = sc.note(a, b)
    good, bad, unjudged = (_section(text, h) for h in ("Reproduced", "Not reproduced", "Not judged"))
    # images containing it: Hat 6/10 vs 3/10 is exactly 2x (reproduced); B's 3 images count, as A's share expects 6 there
    assert "Hat 2.0x (6 | 3 images)" in good and "Hat 2.0x" not in bad
    assert "Hair 2.3x (7 | 3 images)" in bad  # 7/3 > 2
    assert "Glove 1.0x (4 | 4 images)" in unjudged and "Glove" not in good  # 4 < 5, and 4 expected at the other's share
    assert "Coat 0.0x (0 | 8 images)" in bad  # absent from A where B's share expects 8 of 10
    assert "region where present: Hat" in unjudged  # region sizes need 5 images holding it in each (B has 3)
    loose = sc.note(a, b, factor=3, min_images=3)
    assert "Hair 2.3x" in _section(loose, "Reproduced") and "Glove 1.0x" in _section(loose, "Reproduced")
    assert "within 3x" in loose and "generator" not in text


def test_note_judges_sizes_and_conditional_shares() -> None:
    a, b = _sides()
    text = sc.note(a, b, min_images=1)
    good, unjudged = _section(text, "Reproduced"), _section(text, "Not judged")
    assert "median image height 2 vs 2 px (1.0x; 2 | 1 images)" in good
    assert "median person height 100% vs 50% of the image height (2.0x" in good  # the factor's edge is inside
    assert "P(Hat | Hair) 0% of 2 vs 0% of 1 images" in good  # 0 in both: a match
    # A's one dress has no top; B has no dress, so there is nothing to judge
    assert "P(Upper-clothes | Dress) 0% of 1 vs - of 0 images" in unjudged
    assert "P(Hat | Hair)" in _section(sc.note(a, b), "Not judged")  # B has 1 image with hair, under 5


# ------------------------------------------------------------------ the figure
def test_comparison_bars_returns_a_log_figure() -> None:
    a, b = _sides()
    fig = viz.comparison_bars(sc.compare(a, b), CCP, title=sc.title(a, b))
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert all(ax.get_yscale() == "log" for ax in fig.axes)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["A", "B"]
    assert "A train (2 images) vs B (1 real photos)" in fig._suptitle.get_text()


# ------------------------------------------------------------------ the real clone (LIPKIT_CCP)
@pytest.mark.ccp
def test_real_val_counts_match_the_tag_counts(ccp: Path) -> None:
    from lipkit.data.ccp_stats import class_pixels, count_ccp

    ids = split_ids("val")
    side, counts = sc.ccp_side(ccp, ids=ids), count_ccp(ccp, ids=ids)
    per_class = class_pixels(counts)  # tags summed into classes, ignore in the last column
    np.testing.assert_array_equal(side.stats.pixel_counts, per_class[:, :CCP.num_classes])
    np.testing.assert_array_equal(side.stats.ignored, per_class[:, CCP.num_classes])
    assert set(side.stats.sizes[:, 0]) == {550} and 0.5 < float(np.median(side.person_height)) <= 1.0
