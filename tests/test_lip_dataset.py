"""LIPDataset / PascalPersonPartDataset: layouts, items, pose, real samples (flat and official nested)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lipkit.data import LIPDataError, LIPDataset, PascalPersonPartDataset, write_pose_csv
from lipkit.labels import LIP, PASCAL_PERSON_PART


def _write_item(img_dir: Path, lab_dir: Path | None, ident: str, h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    label = rng.integers(0, LIP.num_classes, (h, w)).astype(np.uint8)
    img_dir.mkdir(parents=True, exist_ok=True)
    # PNG bytes under the .jpg name: Pillow reads by content, so the pixels round-trip exactly
    Image.fromarray(image).save(img_dir / f"{ident}.jpg", format="PNG")
    if lab_dir is not None:
        lab_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(label, mode="L").save(lab_dir / f"{ident}.png")
    return image, label


def make_flat(root: Path, n: int = 3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A small flat LIP root (train split) with exact (losslessly stored) pixels; returns id -> (image, label)."""
    items = {}
    for k in range(n):
        ident = f"{k}_{100 + k}"
        items[ident] = _write_item(root / "train_images", root / "train_segmentations", ident, 10 + k, 7 + 2 * k, k)
    (root / "train_id.txt").write_text("\n".join(items) + "\n")
    return items


def test_flat_items_exact(tmp_path):
    items = make_flat(tmp_path)
    ds = LIPDataset(tmp_path, "train")
    assert len(ds) == 3 and ds.ids == list(items) and ds.label_set is LIP
    for i, (ident, (image, label)) in enumerate(items.items()):
        s = ds[i]
        assert set(s) == {"image", "label", "id"}
        assert s["id"] == ident
        assert s["image"].dtype == np.uint8 and np.array_equal(s["image"], image)
        assert s["label"].dtype == np.uint8 and np.array_equal(s["label"], label)
        assert ds.image_path(i) == tmp_path / "train_images" / f"{ident}.jpg"
        assert ds.label_path(i) == tmp_path / "train_segmentations" / f"{ident}.png"
    assert ds[-1]["id"] == ds.ids[-1]
    with pytest.raises(IndexError):
        ds[3]
    assert [s["id"] for s in ds] == ds.ids  # iteration protocol stops at the end


def test_transform_is_applied(tmp_path):
    make_flat(tmp_path)
    ds = LIPDataset(tmp_path, "train", transform=lambda s: {**s, "seen": True})
    assert ds[0]["seen"] is True


def test_with_pose_missing_ids_nan_and_unknown_ids_ignored(tmp_path):
    items = make_flat(tmp_path)
    ids = list(items)
    pose = np.arange(48, dtype=np.float32).reshape(16, 3)
    pose[4] = np.nan
    write_pose_csv(tmp_path / "lip_train_set.csv", {ids[0]: pose, "999_999": pose + 1, "998_1": pose})
    ds = LIPDataset(tmp_path, "train", with_pose=True)
    got = ds[0]["pose"]
    assert got.dtype == np.float32 and got.shape == (16, 3)
    assert np.array_equal(got, pose, equal_nan=True)
    assert np.isnan(ds[1]["pose"]).all() and ds[1]["pose"].shape == (16, 3)
    assert ds.unknown_pose_ids == ("998_1", "999_999")
    assert ds.missing_pose_ids == tuple(ids[1:])
    # items without with_pose carry no pose
    assert "pose" not in LIPDataset(tmp_path, "train")[0]


def test_official_nested_layout_with_pose_and_test_split(tmp_path):
    root = tmp_path / "LIP"
    images, labels = root / "TrainVal_images" / "val_images", root / "TrainVal_parsing_annotations" / "TrainVal_parsing_annotations" / "val_segmentations"
    image, label = _write_item(images, labels, "5_6", 9, 4, 0)
    (root / "TrainVal_images" / "val_id.txt").write_text("5_6\n")
    (root / "TrainVal_pose_annotations").mkdir()
    write_pose_csv(root / "TrainVal_pose_annotations" / "lip_val_set.csv", {"5_6": np.ones((16, 3), np.float32)})
    ds = LIPDataset(root, "val", with_pose=True)
    assert ds.layout.layout == "official" and ds.layout.label_dir == labels
    s = ds[0]
    assert np.array_equal(s["image"], image) and np.array_equal(s["label"], label)
    assert np.array_equal(s["pose"], np.ones((16, 3), np.float32))
    # test split: Testing_images/testing_images + test_id.txt, no labels
    _write_item(root / "Testing_images" / "testing_images", None, "7_8", 5, 5, 1)
    (root / "Testing_images" / "test_id.txt").write_text("7_8\n")
    test = LIPDataset(root, "test")
    assert set(test[0]) == {"image", "id"} and test[0]["image"].shape == (5, 5, 3)
    with pytest.raises(LIPDataError, match="has no labels"):
        test.label_path(0)


# ---------------------------------------------------------------- PASCAL-Person-Part

@pytest.mark.parametrize("list_path", ["train_id.txt", "ImageSets/Person/train.txt", "list/train.txt"])
def test_pascal_palette_labels_as_indices(tmp_path, list_path):
    ids = np.array([[0, 1, 2, 3], [4, 5, 6, 0], [6, 6, 1, 1]], dtype=np.uint8)
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "SegmentationPart").mkdir()
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(tmp_path / "JPEGImages" / "2008_000003.jpg")
    lab = Image.fromarray(ids, mode="P")
    lab.putpalette([c for rgb in PASCAL_PERSON_PART.palette for c in rgb])
    lab.save(tmp_path / "SegmentationPart" / "2008_000003.png")
    (tmp_path / list_path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / list_path).write_text("/JPEGImages/2008_000003.jpg /SegmentationPart/2008_000003.png\n")
    ds = PascalPersonPartDataset(tmp_path, "train")
    assert ds.label_set is PASCAL_PERSON_PART and ds.ids == ["2008_000003"]
    assert np.array_equal(ds[0]["label"], ids)
    assert ds[0]["image"].shape == (3, 4, 3)


def test_pascal_missing_list_names_candidates(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "SegmentationPart").mkdir()
    with pytest.raises(LIPDataError, match=r"test id list not found \(looked for test_id.txt, test.txt"):
        PascalPersonPartDataset(tmp_path, "test")


# ---------------------------------------------------------------- real samples

def test_samples_flat_layout(samples):
    train = LIPDataset(samples / "lip", "train")
    val = LIPDataset(samples / "lip", "val")
    assert train.ids == ["684_2150041"] and val.ids == ["86_185913"]
    t, v = train[0], val[0]
    assert t["image"].shape == (220, 154, 3) and t["label"].shape == (220, 154)
    # the val JPEG is grayscale on disk; it must come out H x W x 3 with equal channels
    assert Image.open(val.image_path(0)).mode == "L"
    assert v["image"].shape == (377, 130, 3) and v["image"].dtype == np.uint8
    assert np.array_equal(v["image"][:, :, 0], v["image"][:, :, 2])
    assert sorted(np.unique(t["label"]).tolist()) == [0, 2, 5, 13, 14, 15]
    assert sorted(np.unique(v["label"]).tolist()) == [0, 1, 5, 9, 13, 15]


@pytest.mark.parametrize("extra_level", [False, True])
def test_samples_official_nested_layout(samples, tmp_path, extra_level):
    """Copy the real files into the official archive layout in tmp_path and read them back identically."""
    root = tmp_path / "LIP"
    ann = root / "TrainVal_parsing_annotations"
    if extra_level:
        ann = ann / "TrainVal_parsing_annotations"
    for split in ("train", "val"):
        (root / "TrainVal_images" / f"{split}_images").mkdir(parents=True)
        (ann / f"{split}_segmentations").mkdir(parents=True)
        for src in (samples / "lip" / f"{split}_images").iterdir():
            shutil.copy(src, root / "TrainVal_images" / f"{split}_images" / src.name)
        for src in (samples / "lip" / f"{split}_segmentations").iterdir():
            shutil.copy(src, ann / f"{split}_segmentations" / src.name)
        shutil.copy(samples / "lip" / f"{split}_id.txt", root / "TrainVal_images" / f"{split}_id.txt")
    test_dir = root / "Testing_images" / "testing_images"
    test_dir.mkdir(parents=True)
    unlabeled = sorted((samples / "lip_val_unlabeled").glob("*.jpg"))
    for src in unlabeled:
        shutil.copy(src, test_dir / src.name)
    (root / "Testing_images" / "test_id.txt").write_text("".join(p.stem + "\r\n" for p in unlabeled))

    for split in ("train", "val"):
        nested, flat = LIPDataset(root, split), LIPDataset(samples / "lip", split)
        assert nested.layout.layout == "official" and nested.ids == flat.ids
        a, b = nested[0], flat[0]
        assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["label"], b["label"])
    test = LIPDataset(root, "test")
    assert len(test) == len(unlabeled) == 6
    assert all(s["image"].ndim == 3 and s["image"].shape[2] == 3 and "label" not in s for s in test)
