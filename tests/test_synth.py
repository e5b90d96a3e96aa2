"""SynthLIP: determinism, LIP/PASCAL round trips, left/right geometry, class coverage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lipkit.cli import main as cli
from lipkit.data import LIPDataset, PascalPersonPartDataset, read_pose_csv
from lipkit.data.synth import SynthConfig, image_rng, make_synthlip, render_sample
from lipkit.labels import LIP, LIP_POSE_JOINTS

L_ARM_JOINTS = [LIP_POSE_JOINTS.index(n) for n in ("L_Shoulder", "L_Elbow", "L_Wrist")]
R_ARM_JOINTS = [LIP_POSE_JOINTS.index(n) for n in ("R_Shoulder", "R_Elbow", "R_Wrist")]
L_LEG_JOINTS = [LIP_POSE_JOINTS.index(n) for n in ("L_Hip", "L_Knee", "L_Ankle")]
R_LEG_JOINTS = [LIP_POSE_JOINTS.index(n) for n in ("R_Hip", "R_Knee", "R_Ankle")]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def lip_root(tmp_path_factory) -> Path:
    return make_synthlip(tmp_path_factory.mktemp("synth") / "lip", 24, 8, 3, seed=3, workers=1, progress=False)


@pytest.fixture(scope="module")
def rendered() -> list:
    """300 images rendered in memory (no files), for statistics over many people."""
    config = SynthConfig(seed=11)
    return [render_sample(image_rng(11, "train", i), config) for i in range(300)]


def test_same_arguments_give_identical_files_for_any_worker_count(tmp_path, lip_root):
    a = make_synthlip(tmp_path / "a", 6, 3, 2, seed=5, workers=1, progress=False)
    b = make_synthlip(tmp_path / "b", 6, 3, 2, seed=5, workers=2, progress=False)
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys() and len(fa) > 20
    assert all(fa[k] == fb[k] for k in fa), [k for k in fa if fa[k] != fb[k]]
    # regenerating into the same root replaces the previous files and gives the same bytes
    make_synthlip(a, 6, 3, 2, seed=5, workers=1, progress=False)
    assert _files(a) == fa


def test_different_seeds_differ(tmp_path):
    a = make_synthlip(tmp_path / "a", 4, 1, seed=0, workers=1, progress=False)
    b = make_synthlip(tmp_path / "b", 4, 1, seed=1, workers=1, progress=False)
    ids = (a / "train_id.txt").read_text().split()
    assert ids == (b / "train_id.txt").read_text().split()
    differ = [(a / "train_images" / f"{i}.jpg").read_bytes() != (b / "train_images" / f"{i}.jpg").read_bytes() for i in ids]
    assert all(differ)


def test_layout_round_trip_through_lipdataset_with_pose(lip_root):
    ds = LIPDataset(lip_root, "train", with_pose=True)
    assert len(ds) == 24 and len(set(ds.ids)) == 24
    poses = read_pose_csv(lip_root / "lip_train_set.csv")
    assert sorted(poses) == sorted(ds.ids)
    meta = [json.loads(line) for line in (lip_root / "meta_train.jsonl").read_text().splitlines()]
    assert [m["id"] for m in meta] == ds.ids
    outside = 0
    for i in range(len(ds)):
        s = ds[i]
        h, w = s["label"].shape
        assert s["image"].shape == (h, w, 3) and s["image"].dtype == np.uint8
        assert s["label"].dtype == np.uint8 and s["label"].max() < LIP.num_classes
        assert (meta[i]["width"], meta[i]["height"]) == (w, h)
        assert 100 <= h <= 500 and 100 <= w <= 500
        assert meta[i]["view"] in ("front", "back", "left", "right")
        pose = s["pose"]
        assert pose.shape == (16, 3) and pose.dtype == np.float32
        np.testing.assert_array_equal(pose, poses[s["id"]])
        given = ~np.isnan(pose[:, 0])
        assert np.array_equal(given, ~np.isnan(pose[:, 1])) and np.array_equal(given, ~np.isnan(pose[:, 2]))
        x, y = pose[given, 0], pose[given, 1]
        assert np.all((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)), "annotated joints lie inside the image"
        assert set(np.unique(pose[given, 2])) <= {0.0, 1.0}
        outside += int((~given).sum())
        assert s["label"].any(), "every image shows part of a person"
    assert outside > 0, "truncated people leave joints unannotated (NaN)"
    test = LIPDataset(lip_root, "test")
    assert len(test) == 3 and "label" not in test[0]
    assert not (lip_root / "test_segmentations").exists()
    info = json.loads((lip_root / "synthlip.json").read_text())
    assert info["seed"] == 3 and info["counts"] == {"train": 24, "val": 8, "test": 3}


def _side_checks(samples, view: str, ids: tuple[int, int], joints_l, joints_r) -> tuple[int, int]:
    """Count images where label ids[0] (the person's left part) lies nearer the left joints."""
    ok = total = 0
    for s in samples:
        if s.meta["view"] != view:
            continue
        lab = s.label
        cols = [np.nonzero(lab == k)[1] for k in ids]
        jl, jr = s.pose[joints_l, 0], s.pose[joints_r, 0]
        if min(len(c) for c in cols) < 30 or np.isnan(jl).any() or np.isnan(jr).any():
            continue
        if abs(jl.mean() - jr.mean()) < 5:
            continue  # the two sides project onto each other: no side to tell
        ml = cols[0].mean()
        total += 1
        ok += abs(ml - jl.mean()) < abs(ml - jr.mean())
    return ok, total


@pytest.mark.parametrize("view", ["front", "back"])
def test_left_parts_sit_on_the_persons_left(rendered, view):
    ok, total = _side_checks(rendered, view, (14, 15), L_ARM_JOINTS, R_ARM_JOINTS)
    assert total >= 15 and ok >= 0.95 * total, (ok, total)
    ok, total = _side_checks(rendered, view, (16, 17), L_LEG_JOINTS, R_LEG_JOINTS)
    assert total >= 5 and ok >= 0.95 * total, (ok, total)
    # front: the person's left on the image's right; back: on the image's left (shoulders decide)
    sl = LIP_POSE_JOINTS.index("L_Shoulder")
    sr = LIP_POSE_JOINTS.index("R_Shoulder")
    dx = np.array([s.pose[sl, 0] - s.pose[sr, 0] for s in rendered if s.meta["view"] == view])
    dx = dx[~np.isnan(dx)]
    assert len(dx) >= 20
    assert np.mean(dx > 0 if view == "front" else dx < 0) > 0.95


def test_back_views_hide_the_face(rendered):
    face = {v: [] for v in ("front", "back")}
    for s in rendered:
        if s.meta["view"] in face and s.meta["truncation"] != "cut-off":
            face[s.meta["view"]].append(np.count_nonzero(s.label == 13) / max(1, np.count_nonzero(s.label == 2)))
    # the neck stays visible from behind (labelled face), the face itself does not
    assert np.median(face["back"]) < 0.3 < np.median(face["front"])


def test_class_coverage_and_long_tail(rendered):
    present = np.zeros(LIP.num_classes, int)
    for s in rendered:
        assert s.label.dtype == np.uint8 and int(s.label.max()) < LIP.num_classes
        present += np.bincount(s.label.ravel(), minlength=LIP.num_classes) > 0
    share = present / len(rendered)
    assert np.all(share >= 0.01), {LIP.classes[k]: share[k] for k in np.flatnonzero(share < 0.01)}
    common = [LIP.index(n) for n in ("Face", "Upper-clothes", "Pants", "Hair")]
    rare = [LIP.index(n) for n in ("Sunglasses", "Glove", "Scarf", "Jumpsuits")]
    assert share[common].min() > 5 * share[rare].max(), share
    assert share[0] == 1.0


def test_views_truncation_and_occlusion_all_occur(rendered):
    views = {s.meta["view"] for s in rendered}
    assert views == {"front", "back", "left", "right"}
    assert {s.meta["truncation"] for s in rendered} == {"full", "upper-body", "cut-off"}
    occ = np.array([s.meta["occluded_fraction"] for s in rendered])
    assert 0.05 < np.mean(occ > 0) < 0.6 and occ.max() < 1.0
    sizes = {s.label.shape for s in rendered}
    assert len(sizes) > 100, "image sizes vary"


def test_pascal_person_part_round_trip(tmp_path):
    lip = make_synthlip(tmp_path / "lip", 6, 2, seed=7, workers=1, progress=False)
    ppp = make_synthlip(tmp_path / "ppp", 6, 2, seed=7, workers=1, progress=False, format="pascal-person-part")
    ds = PascalPersonPartDataset(ppp, "train")
    lipds = LIPDataset(lip, "train")
    assert ds.ids == lipds.ids and len(ds) == 6
    allowed = {  # LIP id -> PASCAL parts a pixel of it may carry
        1: {1}, 2: {1}, 4: {1}, 13: {1}, 3: {4}, 18: {6}, 19: {6}, 8: {6}, 14: {3, 4}, 15: {3, 4},
        16: {5, 6}, 17: {5, 6}, 5: {2, 3, 4}, 7: {2, 3, 4, 5, 6}, 9: {2, 5, 6}, 12: {2, 5, 6},
    }
    for i in range(len(ds)):
        part, ref = ds[i], lipds[i]
        img_path = ppp / "JPEGImages" / f"{ds.ids[i]}.jpg"
        assert img_path.read_bytes() == (lip / "train_images" / f"{ds.ids[i]}.jpg").read_bytes()
        raw = Image.open(ppp / "SegmentationPart" / f"{ds.ids[i]}.png")
        assert raw.mode == "P"
        pl, ll = part["label"], ref["label"]
        assert pl.max() <= 6
        np.testing.assert_array_equal(pl > 0, ll > 0)  # the same people, pixel for pixel
        for lip_id, parts in allowed.items():
            got = set(np.unique(pl[ll == lip_id]).tolist())
            assert got <= parts, (lip_id, got)
    assert (ppp / "val_id.txt").read_text().split() == PascalPersonPartDataset(ppp, "val").ids


def test_pascal_arms_split_at_the_elbow(rendered):
    """Arm pixels labelled upper/lower arm lie nearer the shoulder-elbow/elbow-wrist bone."""
    config = SynthConfig(seed=11, format="pascal-person-part")
    agree = total = 0
    for i in range(60):
        s = render_sample(image_rng(11, "train", i), config, parts=True)
        for lip_id, (js, je, jw) in ((14, L_ARM_JOINTS), (15, R_ARM_JOINTS)):
            p = s.pose[[js, je, jw], :2]
            ys, xs = np.nonzero(s.label == lip_id)
            if np.isnan(p).any() or len(ys) < 50:
                continue
            pts = np.stack([xs, ys], 1).astype(float)

            def dist(a, b):
                ab = b - a
                t = np.clip(((pts - a) @ ab) / max(ab @ ab, 1e-9), 0, 1)
                return np.linalg.norm(pts - (a + t[:, None] * ab), axis=1)

            upper = dist(p[0], p[1]) < dist(p[1], p[2])
            parts = s.parts[ys, xs]
            clear = np.abs(dist(p[0], p[1]) - dist(p[1], p[2])) > 3  # skip pixels near the elbow
            agree += int(((parts == 3) == upper)[clear].sum())
            total += int(clear.sum())
    assert total > 2000 and agree / total > 0.9, (agree, total)


def test_cli_and_bad_arguments(tmp_path, capsys):
    assert cli(["synth", str(tmp_path / "cli"), "--train", "3", "--val", "2", "--seed", "2", "--quiet", "--workers", "1"]) == 0
    assert (tmp_path / "cli" / "train_id.txt").read_text().split() == [f"synth_train_{i:06d}" for i in range(3)]
    assert len(list((tmp_path / "cli" / "val_segmentations").glob("*.png"))) == 2
    assert cli(["synth", str(tmp_path / "bad"), "--train", "1", "--val", "1", "--min-size", "10", "--quiet"]) == 2
    assert "size_range" in capsys.readouterr().out
    with pytest.raises(ValueError, match="format"):
        make_synthlip(tmp_path / "x", 1, 1, format="coco")
    other = tmp_path / "other"
    (other / "train_images").mkdir(parents=True)
    (other / "train_images" / "mine.jpg").write_bytes(b"not synthlip")
    with pytest.raises(FileExistsError, match="synthlip.json"):
        make_synthlip(other, 1, 1, workers=1, progress=False)


# ------------------------------------------------------------------ each LIP class drawn as LIP defines it
# LIP's definitions: a garment is one piece (a dress or a jumpsuit covers top and legs in one material);
# face, arms and legs are the exposed skin (the neck and a bald scalp count as face, a bare hand as
# its arm, a bare foot as its leg); hair is hair. SynthLIP draws each class from one material of
# the person, this one:
CLASS_MATERIAL = {"Hat": "hat", "Hair": "hair", "Glove": "gloves", "Sunglasses": "glasses",
                  "Upper-clothes": "top", "Dress": "top", "Coat": "coat", "Socks": "socks", "Pants": "bottom",
                  "Jumpsuits": "top", "Scarf": "scarf", "Skirt": "bottom", "Face": "skin",
                  "Left-arm": "skin", "Right-arm": "skin", "Left-leg": "skin", "Right-leg": "skin",
                  "Left-shoe": "shoes", "Right-shoe": "shoes"}


def _people(n: int, seed: int = 5) -> list[tuple[dict, list, dict]]:
    """n people built by SynthLIP's own person layer: (person, primitives, material name -> id)."""
    from lipkit.data import synth

    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        materials: list = []
        person, prims, _, _, _ = synth._person_layer(rng, materials, float(rng.uniform(-180, 180)), 0.0)
        mat_of = {name: next(i for i, x in enumerate(materials) if x is m) for name, m in person["colors"].items()}
        out.append((person, prims, mat_of))
    return out


@pytest.fixture(scope="module")
def people() -> list:
    return _people(600)


def test_every_lip_class_is_drawn_from_its_one_material(people):
    seen = set()
    for person, prims, mat_of in people:
        for lip in {p.lip for p in prims}:
            name = LIP.classes[lip]
            mats = {p.mat for p in prims if p.lip == lip}
            assert mats == {mat_of[CLASS_MATERIAL[name]]}, (name, mats, person["outfit"])
            seen.add(name)
    assert seen == set(CLASS_MATERIAL), set(CLASS_MATERIAL) - seen  # every class was drawn


def test_a_jumpsuit_or_dress_is_one_garment_in_one_material(people):
    from lipkit.data import synth_render as R

    counts = {R.JUMPSUIT: 0, R.DRESS: 0}
    for person, prims, mat_of in people:
        top = person["outfit"]["top"]
        if top not in counts:
            assert mat_of["top"] != mat_of["bottom"]  # upper-clothes + pants/skirt: two garments
            continue
        counts[top] += 1
        garment = [p for p in prims if p.lip == top]
        assert {p.mat for p in garment} == {mat_of["top"]} and mat_of["bottom"] == mat_of["top"]
        # the one material covers the torso and the legs (a jumpsuit's trouser legs, a dress's skirt)
        assert {p.ppp for p in garment} >= {R.P_TORSO, R.P_ULEG}
    assert counts[R.JUMPSUIT] >= 5 and counts[R.DRESS] >= 10, counts


def test_images_are_a_function_of_seed_split_and_index():
    config = SynthConfig(seed=4)
    a = [render_sample(image_rng(4, "val", i), config) for i in (0, 7, 3)]
    b = [render_sample(image_rng(4, "val", i), config) for i in (3, 0, 7)]  # another order, same images
    for x, y in zip(a, [b[1], b[2], b[0]]):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.label, y.label)
    c = render_sample(image_rng(4, "train", 0), config)
    assert not (c.image.shape == a[0].image.shape and np.array_equal(c.image, a[0].image))
