"""lipkit.data.transforms: flip/scale/crop invariants, hand-computed cases, the CIHP reversed label, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from lipkit.data import read_label
from lipkit.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_MEAN_UINT8,
    IMAGENET_STD,
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    Resize,
    ToTensor,
    crop_sample,
    hflip_sample,
    resize_sample,
    train_transform,
    eval_transform,
)
from lipkit.labels import CIHP, LIP, LIP_POSE_FLIP_PAIRS


def make_sample(h: int, w: int, seed: int = 0, label_set=LIP) -> dict:
    rng = np.random.default_rng(seed)
    # LIP joints are whole pixels; quarter pixels keep float32 arithmetic exact for the identity checks
    xy = np.round(np.stack([rng.uniform(0, w - 1, 16), rng.uniform(0, h - 1, 16)], axis=1) * 4) / 4
    pose = np.column_stack([xy, rng.integers(0, 2, 16)]).astype(np.float32)
    pose[rng.integers(0, 16)] = np.nan
    return {
        "image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "label": rng.integers(0, label_set.num_classes, (h, w)).astype(np.uint8),
        "id": "x",
        "pose": pose,
    }


def test_flip_hand_computed():
    s = {"image": np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3),
         "label": np.array([[14, 0, 16], [18, 5, 19]], np.uint8),
         "pose": np.full((16, 3), np.nan, np.float32), "id": "a"}
    s["pose"][0] = (0.0, 1.0, 1.0)  # R_Ankle at column 0
    s["pose"][9] = (2.0, 0.0, 0.0)  # B_Head (unpaired) at column 2
    f = hflip_sample(s, LIP)
    assert f["label"].tolist() == [[17, 0, 15], [18, 5, 19]]
    assert np.array_equal(f["image"], s["image"][:, ::-1])
    # R_Ankle (row 0) becomes L_Ankle (row 5) at x = W-1-0 = 2; B_Head stays row 9 at x = 0
    assert f["pose"][5].tolist() == [2.0, 1.0, 1.0] and f["pose"][9].tolist() == [0.0, 0.0, 0.0]
    assert np.isnan(f["pose"][0]).all()
    assert f["id"] == "a" and s["label"][0, 0] == 14  # input untouched


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_flip_twice_is_identity(h, w, seed):
    s = make_sample(h, w, seed)
    for swap in (True, False):
        back = hflip_sample(hflip_sample(s, LIP, swap=swap), LIP, swap=swap)
        assert np.array_equal(back["image"], s["image"])
        assert np.array_equal(back["label"], s["label"])
        assert np.array_equal(back["pose"], s["pose"], equal_nan=True)


def test_flip_without_swap_keeps_ids_and_joint_names():
    s = {"image": np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3),
         "label": np.array([[14, 0, 16], [18, 5, 19]], np.uint8),  # a left-arm pixel at column 0
         "pose": np.full((16, 3), np.nan, np.float32)}
    s["pose"][0] = (0.0, 1.0, 1.0)  # R_Ankle at column 0
    kept = hflip_sample(s, LIP, swap=False)
    swapped = hflip_sample(s, LIP)  # swap=True is the default
    # without swap the left-arm pixel moves to the mirrored column (W-1-0 = 2) and stays left arm (14)
    assert kept["label"].tolist() == [[16, 0, 14], [19, 5, 18]]
    assert kept["label"][0, 2] == 14 and swapped["label"][0, 2] == 15  # with swap it becomes right arm
    assert np.array_equal(kept["image"], swapped["image"])  # the pixels move the same way
    # the pose stays consistent with the label: R_Ankle stays row 0, at x = 2
    assert kept["pose"][0].tolist() == [2.0, 1.0, 1.0] and np.isnan(kept["pose"][5]).all()
    assert swapped["pose"][5].tolist() == [2.0, 1.0, 1.0] and np.isnan(swapped["pose"][0]).all()
    assert kept["label"].flags["C_CONTIGUOUS"] and s["label"][0, 0] == 14  # input untouched
    always = RandomHorizontalFlip(LIP, p=1.0, generator=0, swap=False)
    assert always.swap is False and np.array_equal(always(s)["label"], kept["label"])


def test_train_transform_flip_swap_flag():
    left_arm = {"image": np.zeros((20, 20, 3), np.uint8), "label": np.full((20, 20), 14, np.uint8)}
    seen = {}
    for flip_swap in (True, False):
        t = train_transform(LIP, crop_size=16, scale_range=(1.0, 1.0), flip_swap=flip_swap)
        flips = [step for step in t.transforms if isinstance(step, RandomHorizontalFlip)]
        assert len(flips) == 1 and flips[0].swap is flip_swap
        seen[flip_swap] = set()
        for seed in range(12):  # each draw flips with probability 1/2
            t.seed(seed)
            seen[flip_swap] |= set(t(left_arm)["label"].unique().tolist())
    assert seen[True] == {14, 15}  # some crops were flipped, and the flip made them right arms
    assert seen[False] == {14}  # flipped or not, the arm stays labelled left


def test_flip_pose_pairs_swap():
    s = make_sample(8, 11, 3)
    f = hflip_sample(s, LIP)
    for a, b in LIP_POSE_FLIP_PAIRS:
        for i, j in ((a, b), (b, a)):
            assert np.array_equal(f["pose"][i, 1:], s["pose"][j, 1:], equal_nan=True)
            assert np.array_equal(f["pose"][i, 0], 10 - s["pose"][j, 0], equal_nan=True)


def test_cihp_flip_equals_official_reversed_label(samples):
    label = read_label(samples / "cihp" / "labels" / "0005008.png", CIHP)
    reversed_label = read_label(samples / "cihp" / "labels_rev" / "0005008.png", CIHP)
    image = np.zeros(label.shape + (3,), np.uint8)
    flipped = hflip_sample({"image": image, "label": label}, CIHP)["label"]
    assert np.array_equal(flipped, reversed_label)
    # and through the random transform with p=1
    flipped2 = RandomHorizontalFlip(CIHP, p=1.0, generator=0)({"image": image, "label": label})["label"]
    assert np.array_equal(flipped2, reversed_label)


def test_resize_label_nearest_hand_computed():
    label = np.array([[1, 2], [3, 4]], np.uint8)
    image = np.zeros((2, 2, 3), np.uint8)
    up = resize_sample({"image": image, "label": label}, 4, 4)
    assert np.array_equal(up["label"], np.repeat(np.repeat(label, 2, 0), 2, 1))
    big = np.arange(36, dtype=np.uint8).reshape(6, 6)
    down = resize_sample({"image": np.zeros((6, 6, 3), np.uint8), "label": big}, 3, 3)
    assert np.array_equal(down["label"], big[1::2, 1::2])  # centre of output pixel i is input 2i+0.5 -> row 2i+1


def test_resize_pose_pixel_centres():
    pose = np.full((16, 3), np.nan, np.float32)
    pose[0] = (1.0, 2.0, 1.0)  # centre of pixel column 1, row 2
    s = {"image": np.zeros((5, 4, 3), np.uint8), "pose": pose}
    out = resize_sample(s, 10, 8)  # x2: pixel 1 covers [2, 4) -> centre 2.5; row 2 -> 4.5
    assert out["pose"][0].tolist() == [2.5, 4.5, 1.0]
    assert Resize((10, 8))(s)["image"].shape == (10, 8, 3) and Resize(6)(s)["image"].shape == (6, 6, 3)


def test_random_crop_pads_with_ignore_and_mean():
    s = make_sample(5, 4, 1)
    out = RandomCrop(8, generator=0)(s)
    assert out["image"].shape == (8, 8, 3) and out["label"].shape == (8, 8)
    # small sample: placed at top-left, padding bottom/right
    assert np.array_equal(out["label"][:5, :4], s["label"]) and np.array_equal(out["image"][:5, :4], s["image"])
    assert (out["label"][5:] == 255).all() and (out["label"][:, 4:] == 255).all()
    assert (out["image"][5:] == np.array(IMAGENET_MEAN_UINT8, np.uint8)).all()
    assert IMAGENET_MEAN_UINT8 == (124, 116, 104)


def test_crop_pose_shift_and_outside_nan():
    pose = np.full((16, 3), np.nan, np.float32)
    pose[0] = (5.0, 6.0, 1.0)
    pose[1] = (0.0, 0.0, 1.0)
    s = {"image": np.zeros((10, 10, 3), np.uint8), "label": np.zeros((10, 10), np.uint8), "pose": pose}
    out = crop_sample(s, top=4, left=3, height=5, width=5)
    assert out["pose"][0].tolist() == [2.0, 2.0, 1.0]
    assert np.isnan(out["pose"][1]).all()  # (0, 0) lies outside the window


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 60), w=st.integers(1, 60), seed=st.integers(0, 2**16),
       lo=st.floats(0.2, 1.5), span=st.floats(0.0, 1.5), crop=st.integers(1, 48), n_ids=st.integers(1, 6))
def test_no_label_value_is_interpolated(h, w, seed, lo, span, crop, n_ids):
    rng = np.random.default_rng(seed)
    s = make_sample(h, w, seed)
    s["label"] = rng.choice(np.array([0, 3, 14, 15, 16, 19])[:n_ids], size=(h, w)).astype(np.uint8)
    pipeline = Compose([RandomScale((lo, lo + span), generator=seed), RandomCrop(crop, generator=seed + 1),
                        RandomHorizontalFlip(LIP, generator=seed + 2)])
    out = pipeline(s)
    before = set(np.unique(s["label"]).tolist())
    before_mirrored = before | {LIP.flip_permutation[i] for i in before}
    after = set(np.unique(out["label"]).tolist())
    assert after <= before_mirrored | {255}
    assert out["image"].shape == (crop, crop, 3) and out["image"].dtype == np.uint8
    # without a flip, strictly a subset of the original ids plus padding
    no_flip = Compose(pipeline.transforms[:2])(s)
    assert set(np.unique(no_flip["label"]).tolist()) <= before | {255}


def test_random_scale_discrete_and_range_sizes():
    s = make_sample(10, 20)
    for _ in range(10):
        out = RandomScale(scales=(0.5, 1.5))(s)
        assert out["image"].shape[:2] in ((5, 10), (15, 30))
    sizes = {RandomScale((0.6, 1.4), generator=k)(s)["label"].shape[0] for k in range(30)}
    assert min(sizes) >= 6 and max(sizes) <= 14 and len(sizes) > 3


def test_seeded_pipelines_repeat():
    s = make_sample(50, 40)
    a = train_transform(LIP, crop_size=32, seed=5)(s)
    b = train_transform(LIP, crop_size=32, seed=5)(s)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    outs = [train_transform(LIP, crop_size=32, seed=k)(s)["label"] for k in range(4)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])
    # no explicit seed: torch's generator decides, so torch.manual_seed repeats it
    t = train_transform(LIP, crop_size=32)
    torch.manual_seed(11)
    c = t(s)
    torch.manual_seed(11)
    d = t(s)
    assert torch.equal(c["image"], d["image"]) and torch.equal(c["label"], d["label"])


def test_train_transform_outputs_and_collate():
    samples = [make_sample(30 + 5 * k, 25, k) for k in range(3)]
    t = train_transform(LIP, crop_size=(24, 20), seed=0)
    outs = [t(s) for s in samples]
    for o in outs:
        assert o["image"].dtype == torch.float32 and o["image"].shape == (3, 24, 20)
        assert o["label"].dtype == torch.int64 and o["label"].shape == (24, 20)
        assert o["pose"].dtype == torch.float32 and o["pose"].shape == (16, 3)
    batch = torch.utils.data.default_collate(outs)
    assert batch["image"].shape == (3, 3, 24, 20) and batch["id"] == ["x", "x", "x"]


def test_normalize_and_to_tensor_values():
    image = np.zeros((2, 3, 3), np.uint8)
    image[0, 0] = IMAGENET_MEAN_UINT8
    image[1, 2] = (255, 0, 51)
    out = eval_transform()({"image": image, "label": np.zeros((2, 3), np.uint8)})
    x = out["image"]
    assert x.shape == (3, 2, 3) and out["label"].dtype == torch.int64
    assert torch.allclose(x[:, 0, 0], torch.zeros(3), atol=0.01)  # the mean colour maps to ~0
    expected = [(1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], (0.0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1], (0.2 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]]
    assert torch.allclose(x[:, 1, 2], torch.tensor(expected), atol=1e-5)
    # ToTensor alone scales uint8 to [0, 1]
    assert torch.allclose(ToTensor()({"image": image})["image"][:, 1, 2], torch.tensor([1.0, 0.0, 0.2]))
    assert Normalize(mean=(0, 0, 0), std=(1, 1, 1))({"image": image})["image"].max() == pytest.approx(1.0)


def test_flip_on_real_label_twice(samples):
    label = read_label(samples / "lip" / "train_segmentations" / "684_2150041.png", LIP)
    image = np.asarray(Image.open(samples / "lip" / "train_images" / "684_2150041.jpg").convert("RGB"))
    s = {"image": image, "label": label}
    once = hflip_sample(s, LIP)
    # train label has 14 (left arm) and 15 (right arm): the flip swaps their pixel counts
    assert (once["label"] == 14).sum() == (label == 15).sum()
    twice = hflip_sample(once, LIP)
    assert np.array_equal(twice["label"], label) and np.array_equal(twice["image"], image)
