import json
from itertools import combinations

import numpy as np
import pytest
from PIL import Image

from lipkit.cli import main
from lipkit.data import write_pose_csv
from lipkit.labels import LIP, LIP_POSE_JOINTS
from lipkit.stats_notes import what_it_shows
from lipkit.stats import (compute_stats, dataset_name, label_histogram, markdown_table, pose_available, share_interval,
                          stats_from_labels)


def _labels():
    """Three small hand-made label maps of different sizes (H x W)."""
    a = np.zeros((4, 6), np.uint8)
    a[0, :3] = 2  # hair: 3 px
    a[1:3, 1:4] = 5  # upper-clothes: 6 px
    a[3, 5] = 255  # ignore: 1 px
    b = np.zeros((5, 3), np.uint8)
    b[0, 0] = 2  # hair 1
    b[1:, 1] = 9  # pants 4
    b[2, 2] = 14  # left arm 1
    c = np.full((2, 2), 5, np.uint8)  # upper-clothes only (no background)
    c[1, 1] = 30  # invalid id for LIP
    return [a, b, c]


def test_label_histogram_counts_classes_ignore_and_invalid():
    a = np.array([[0, 0, 3], [255, 19, 25]], np.uint8)
    counts, ignored, invalid = label_histogram(a, 20)
    expected = np.zeros(20, np.int64)
    expected[[0, 3, 19]] = [2, 1, 1]
    np.testing.assert_array_equal(counts, expected)
    assert (ignored, invalid) == (1, 1)


def test_class_table_against_hand_counts():
    st = stats_from_labels(_labels(), LIP, ids=["a", "b", "c"], split="x")
    t = st.class_table()
    assert t.loc[2, "images"] == 2 and t.loc[5, "images"] == 2 and t.loc[9, "images"] == 1 and t.loc[0, "images"] == 2
    assert t.loc[5, "pixels"] == 6 + 3
    labelled = (24 - 1) + 15 + 3  # all pixels minus ignore and invalid
    assert t["pixels"].sum() == labelled
    assert t.loc[2, "pixel_share"] == pytest.approx(4 / labelled)
    assert t["pixel_share"].sum() == pytest.approx(1.0)
    # median share of image area where present: hair 3/24 and 1/15
    assert t.loc[2, "median_region"] == pytest.approx(np.median([3 / 24, 1 / 15]))
    assert np.isnan(t.loc[3, "median_region"])  # glove never present
    np.testing.assert_array_equal(st.sizes, [[6, 4], [3, 5], [2, 2]])  # (width, height)
    assert st.ignored.tolist() == [1, 0, 0] and st.invalid.tolist() == [0, 0, 1]


def test_cooccurrence_matches_brute_force():
    rng = np.random.default_rng(0)
    labels = [rng.choice([0, 1, 2, 5, 9, 13, 14, 15, 19], size=(rng.integers(3, 9), rng.integers(3, 9)),
                         p=[.4, .02, .1, .2, .1, .08, .04, .04, .02]).astype(np.uint8) for _ in range(25)]
    st = stats_from_labels(labels, LIP)
    count = st.cooccurrence("count").to_numpy()
    sets = [set(np.unique(l).tolist()) for l in labels]
    for i in range(20):
        assert count[i, i] == sum(i in s for s in sets)
    for i, j in combinations(range(20), 2):
        both = sum(i in s and j in s for s in sets)
        assert count[i, j] == both == count[j, i]
    cond = st.cooccurrence("conditional").to_numpy()
    jac = st.cooccurrence("jaccard").to_numpy()
    i, j = 2, 14
    assert cond[i, j] == pytest.approx(count[i, j] / count[i, i])
    assert jac[i, j] == pytest.approx(count[i, j] / sum((i in s) or (j in s) for s in sets))
    with pytest.raises(ValueError, match="co-occurrence mode"):
        st.cooccurrence("bogus")


def test_region_sizes_and_image_sizes():
    st = stats_from_labels(_labels(), LIP, ids=["a", "b", "c"])
    rs = st.region_sizes()
    assert len(rs) == 3 + 4 + 1  # (image, class) pairs present: a {0,2,5}, b {0,2,9,14}, c {5}
    row = rs[(rs["id"] == "b") & (rs["class"] == "Pants")].iloc[0]
    assert row["pixels"] == 4 and row["area_share"] == pytest.approx(4 / 15)
    sizes = st.image_sizes().set_index("id")
    assert sizes.loc["a", "width"] == 6 and sizes.loc["a", "height"] == 4
    assert sizes["classes_present"].tolist() == [2, 3, 1]  # background not counted


def _write_split(root, split, labels, poses=None, meta=None):
    (root / f"{split}_images").mkdir(parents=True)
    (root / f"{split}_segmentations").mkdir(parents=True)
    ids = [f"{split}_{i:03d}" for i in range(len(labels))]
    for i, lab in zip(ids, labels):
        h, w = lab.shape
        Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(root / f"{split}_images" / f"{i}.jpg")
        Image.fromarray(lab, mode="L").save(root / f"{split}_segmentations" / f"{i}.png")
    (root / f"{split}_id.txt").write_text("\n".join(ids) + "\n")
    if poses is not None:
        write_pose_csv(root / f"lip_{split}_set.csv", dict(zip(ids, poses)))
    if meta is not None:
        with open(root / f"meta_{split}.jsonl", "w") as f:
            for i, m in zip(ids, meta):
                f.write(json.dumps({"id": i, **m}) + "\n")
    return ids


@pytest.fixture()
def tiny_root(tmp_path):
    root = tmp_path / "lip"
    labels = _labels()[:2] * 3  # 6 maps (ids inside LIP, one ignore pixel)
    poses = []
    for k in range(len(labels)):
        p = np.full((16, 3), np.nan, np.float32)
        p[: 10 + k, :2] = 1.0  # image k has 10 + k annotated joints
        p[: 10 + k, 2] = 0.0
        p[0, 2] = 1.0
        poses.append(p)
    views = ["front", "back", "left", "front", "right", "back"]
    meta = [{"view": v, "truncation": ["full", "cut-off"][k % 2], "occluded_fraction": 0.5 * (k % 2), "garments": ["pants"]} for k, v in enumerate(views)]
    _write_split(root, "train", labels, poses, meta)
    return root, labels


def test_compute_stats_reads_the_flat_layout(tiny_root):
    root, labels = tiny_root
    st = compute_stats(root, "train", progress=False)
    ref = stats_from_labels(labels, LIP)
    np.testing.assert_array_equal(st.pixel_counts, ref.pixel_counts)
    np.testing.assert_array_equal(st.sizes, ref.sizes)
    assert st.ids[0] == "train_000" and st.num_images == 6
    # pose: joint j annotated in images with 10 + k > j
    vis = st.pose_visibility()
    assert list(vis.index) == list(LIP_POSE_JOINTS)
    assert vis["annotated"].iloc[0] == 1.0 and vis["annotated"].iloc[12] == pytest.approx(3 / 6)
    assert vis["v_is_1"].iloc[0] == 1.0 and vis["v_is_1"].iloc[1] == 0.0
    assert st.joints_per_image().loc[10:15].tolist() == [1] * 6
    assert st.view_counts().to_dict() == {"back": 2, "front": 2, "left": 1, "right": 1}
    trunc = st.truncation_counts()
    assert trunc.to_dict() == {"cut-off": 3, "full": 3}
    occ = st.meta_counts("occluded_fraction")
    assert occ.sum() == 6 and occ.iloc[0] == 3  # three images with nothing occluded


def test_compute_stats_limit_and_threads_give_the_same_numbers(tiny_root):
    root, _ = tiny_root
    full = compute_stats(root, "train", progress=False)
    threaded = compute_stats(root, "train", progress=False, num_workers=2)
    np.testing.assert_array_equal(full.pixel_counts, threaded.pixel_counts)
    part = compute_stats(root, "train", progress=False, limit=2)
    np.testing.assert_array_equal(part.pixel_counts, full.pixel_counts[:2])
    assert part.pose.shape == (2, 16, 3) and len(part.meta) == 2


def test_test_split_sizes_come_from_image_headers(tmp_path):
    root = tmp_path / "lip"
    (root / "test_images").mkdir(parents=True)
    Image.fromarray(np.zeros((7, 11, 3), np.uint8)).save(root / "test_images" / "t1.jpg")
    (root / "test_id.txt").write_text("t1\n")
    st = compute_stats(root, "test", progress=False)
    np.testing.assert_array_equal(st.sizes, [[11, 7]])
    assert st.pixel_counts.sum() == 0


def test_cli_prints_tables_and_writes_json(tiny_root, tmp_path, capsys):
    root, _ = tiny_root
    out = tmp_path / "o" / "stats.json"
    assert main(["stats", str(root), "--split", "train", "--no-progress", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| 5 | Upper-clothes |" in text and "## SynthLIP view" in text
    payload = json.loads(out.read_text())
    assert payload["summary"]["images"] == 6 and len(payload["classes"]) == 20


def test_cli_bad_root_is_a_clear_error(tmp_path, capsys):
    assert main(["stats", str(tmp_path / "nope"), "--no-progress"]) == 1
    assert "does not exist" in capsys.readouterr().out


def test_markdown_table_shape():
    st = stats_from_labels(_labels(), LIP)
    lines = markdown_table(st.class_table()).splitlines()
    assert len(lines) == 2 + 20 and lines[0].count("|") == 8


@pytest.mark.samples
def test_real_lip_sample_classes(samples):
    st = compute_stats(samples / "lip", "train", progress=False)
    assert set(np.flatnonzero(st.presence[0])) == {0, 2, 5, 13, 14, 15}
    assert st.sizes.tolist() == [[154, 220]]


def test_top_pairs_against_brute_force():
    rng = np.random.default_rng(1)
    labels = [rng.choice([0, 2, 5, 9, 13, 14, 15], size=(6, 5)).astype(np.uint8) for _ in range(12)]
    st = stats_from_labels(labels, LIP)
    sets = [set(np.unique(l).tolist()) - {0} for l in labels]
    brute = sorted(((sum(i in s and j in s for s in sets), i, j) for i, j in combinations(range(1, 20), 2)),
                   key=lambda t: -t[0])
    top = st.top_pairs(5)
    assert top["images"].tolist() == [t[0] for t in brute[:5]]
    first = top.iloc[0]
    i, j = LIP.index(first["class_a"]), LIP.index(first["class_b"])
    assert first["p_b_given_a"] == pytest.approx(first["images"] / sum(i in s for s in sets))
    assert first["p_a_given_b"] == pytest.approx(first["images"] / sum(j in s for s in sets))
    assert "Background" not in set(top["class_a"]) | set(top["class_b"])


def test_pose_available(tiny_root, tmp_path):
    root, _ = tiny_root
    assert pose_available(root, "train")
    (root / "lip_train_set.csv").unlink()
    assert not pose_available(root, "train")
    assert compute_stats(root, "train", progress=False).pose is None


def test_size_extremes_count_the_images_at_each_end():
    labels = [np.zeros((h, w), np.uint8) for h, w in [(10, 4), (12, 4), (11, 9), (13, 9), (13, 6)]]
    ext = stats_from_labels(labels, LIP).size_extremes()
    assert ext.loc["width"].tolist() == [4, 2, 9, 2]  # min, images at min, max, images at max
    assert ext.loc["height"].tolist() == [10, 1, 13, 2]


def test_share_interval_is_the_wilson_interval():
    lo, hi = share_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = share_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert all(np.isnan(share_interval(0, 0)))


def test_the_data_is_named_from_its_folder(tiny_root):
    root, _ = tiny_root
    st = compute_stats(root, "train", progress=False)
    assert (st.name, st.generator) == ("LIP", None) and dataset_name(root, "cihp") == "CIHP"
    (root / "synthlip.json").write_text(json.dumps({"seed": 3, "size_range": [2, 6], "version": "1.0"}))
    st = compute_stats(root, "train", progress=False)
    assert st.name == "SynthLIP" and st.generator["seed"] == 3 and st.summary()["dataset"] == "SynthLIP"


def test_garments_worn_against_garments_shown(tiny_root):
    root, labels = tiny_root  # every person wears pants; only the second map of each pair shows Pants
    g = compute_stats(root, "train", progress=False).garments_shown()
    assert g.loc["pants", "worn"] == 6 and g.loc["pants", "shown"] == 3 and g.loc["pants", "shown_share"] == 0.5
    assert g.loc["dress", "worn"] == 0 and np.isnan(g.loc["dress", "shown_share"])
    assert stats_from_labels(labels, LIP).garments_shown().empty  # no metadata: nothing to compare


def test_what_it_shows_is_computed_from_the_statistics(tiny_root):
    root, _ = tiny_root
    real = what_it_shows(compute_stats(root, "train", progress=False))
    assert "6 label maps of LIP split 'train'" in real and "Fixed by the generator" not in real
    assert "SynthLIP" not in real and "no training step" in real
    assert "Upper-clothes is in 3 of 6 images" in real  # the rarest class present (first of a tie), with its interval
    assert "measured on the label maps" in real and "drawn geometry" not in real
    lo, hi = share_interval(3, 6)
    assert f"{100 * lo:.0f}% to {100 * hi:.0f}%" in real
    (root / "synthlip.json").write_text(json.dumps({"seed": 3, "size_range": [3, 6], "version": "1.0"}))
    synth = what_it_shows(compute_stats(root, "train", progress=False))
    assert "seed (3)" in synth and "SynthLIP's statistics" in synth and "drawn geometry" in synth
    assert "Dress with Pants in 0 images" in synth and "6 pants" in synth
    assert "counted here: front 2, back 2, left 1, right 1" in synth
    assert "3 of 6 images have a width of exactly 3 px" in synth  # the maps are 6 and 3 px wide


# ------------------------------------------------------------------ part sizes against the stride
def _largest_square(mask: np.ndarray) -> int:
    """Brute force: the side of the largest axis-aligned square of True pixels."""
    h, w = mask.shape
    return max((s for s in range(1, min(h, w) + 1) for y in range(h - s + 1) for x in range(w - s + 1)
                if mask[y:y + s, x:x + s].all()), default=0)


@pytest.mark.parametrize("width", [1, 2, 3, 4, 7, 8, 13])
def test_thickness_of_a_bar_is_its_width_in_either_direction(width):
    from lipkit.stats import thickness

    mask = np.zeros((40, 50), bool)
    mask[10:10 + width, 5:45] = True
    assert thickness(mask) == width and thickness(mask.T) == width
    disc = np.hypot(*np.mgrid[-20:21, -20:21]) <= 6  # 13 px across; the largest square inside decides
    assert thickness(disc) == _largest_square(disc) < 13
    assert thickness(np.zeros((5, 5), bool)) == 0


def test_part_sizes_counts_areas_and_widths_per_class():
    from lipkit.stats import part_sizes

    a = np.zeros((30, 30), np.uint8)
    a[2:5, 2:20] = LIP.index("Left-arm")  # 3 x 18: area 54, width 3
    a[10:20, 10:20] = LIP.index("Face")  # 10 x 10: area 100, width 10
    b = np.zeros((30, 30), np.uint8)
    b[0:7, 0:10] = LIP.index("Left-arm")  # 7 x 10 in the corner: area 70, width 7 (the image's edge bounds it)
    table = part_sizes([{"label": a}, {"label": b}], LIP)
    arm, face = table.loc["Left-arm"], table.loc["Face"]
    assert (arm["images"], arm["median area (px)"], arm["median thickness (px)"]) == (2, 62.0, 5.0)
    assert (face["images"], face["median area (px)"], face["median thickness (px)"]) == (1, 100.0, 10.0)
    assert table.loc["Hat", "images"] == 0 and np.isnan(table.loc["Hat", "median area (px)"])
    assert "Background" not in table.index
