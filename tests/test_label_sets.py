"""Training on every label set (lip, cihp, atr, pascal-person-part) with and without the SSL loss.

One real optimiser step per label set and ``ssl.mode`` on tiny SynthLIP-based folders, plus the
config checks that refuse joint groups of another label set and ``open_split``'s layout errors.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lipkit import ssl
from lipkit.data import LIPDataError, LIPDataset, PascalPersonPartDataset, open_split
from lipkit.data.synth import make_synthlip
from lipkit.labels import ATR, CIHP, LIP, PASCAL_PERSON_PART, LabelSet
from lipkit.training import TrainConfig, fit

N_TRAIN, N_VAL = 4, 2

# LIP id -> the ATR id of the same part (the others become background); 255 stays 255.
LIP_TO_ATR = {1: 1, 2: 2, 4: 3, 5: 4, 12: 5, 9: 6, 6: 7, 18: 9, 19: 10, 13: 11, 16: 12, 17: 13,
              14: 14, 15: 15, 11: 17}


def lip_to_atr_lut() -> np.ndarray:
    lut = np.zeros(256, np.uint8)
    for lip_id, atr_id in LIP_TO_ATR.items():
        lut[lip_id] = atr_id
    lut[255] = 255
    return lut


def write_atr_copy(lip_root: Path, atr_root: Path) -> Path:
    """A LIP-layout copy of ``lip_root`` whose label PNGs hold ATR's 18 ids."""
    lut = lip_to_atr_lut()
    atr_root.mkdir(parents=True)
    for split in ("train", "val"):
        shutil.copytree(lip_root / f"{split}_images", atr_root / f"{split}_images")
        shutil.copy(lip_root / f"{split}_id.txt", atr_root / f"{split}_id.txt")
        (atr_root / f"{split}_segmentations").mkdir()
        for png in sorted((lip_root / f"{split}_segmentations").glob("*.png")):
            lab = np.asarray(Image.open(png))
            Image.fromarray(lut[lab], mode="L").save(atr_root / f"{split}_segmentations" / png.name)
    return atr_root


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny datasets per label set: SynthLIP (lip, reused for cihp: same ids), its ATR copy, SynthLIP-PASCAL."""
    base = tmp_path_factory.mktemp("label_sets")
    common = dict(n_train=N_TRAIN, n_val=N_VAL, seed=5, size_range=(40, 64), progress=False, workers=1)
    lip = make_synthlip(base / "lip", **common)
    pascal = make_synthlip(base / "pascal", format="pascal-person-part", **common)
    atr = write_atr_copy(lip, base / "atr")
    return {"lip": lip, "cihp": lip, "atr": atr, "pascal-person-part": pascal}


def tiny_config(root: Path, out: Path, label_set: str, mode: str, **over: object) -> TrainConfig:
    data = {
        "data": {"root": str(root), "label_set": label_set, "crop_size": 33, "scale_range": [0.75, 1.25],
                 "max_val_images": N_VAL},
        "model": {"backbone": "resnet18", "width": 0.125},
        "optim": {"lr": 0.01},
        "ssl": {"mode": mode},
        "eval": {"every": 0},
        "iterations": 1, "batch_size": 2, "seed": 1, "threads": 1, "log_every": 1,
        "progress": False, "out_dir": str(out),
    }
    data.update(over)
    return TrainConfig.from_dict(data)


LABEL_SETS: dict[str, LabelSet] = {"lip": LIP, "cihp": CIHP, "atr": ATR, "pascal-person-part": PASCAL_PERSON_PART}


def test_atr_copy_holds_atr_ids(roots: dict[str, Path]) -> None:
    # Guards the fixture itself: the ATR run must see ATR ids (< 18), including ids that LIP's joint
    # groups do not use in the same place (e.g. ATR 11 = face, 9/10 = shoes), or it tests nothing.
    ds = open_split(roots["atr"], "train", ATR)
    seen = set()
    for i in range(len(ds)):
        seen |= set(np.unique(ds.load(i)["label"]).tolist())
    assert seen - {255} <= set(range(ATR.num_classes))
    assert {4, 11} <= seen  # upper-clothes and face, mapped from LIP 5 and 13


# Guards, per label set and ssl mode, that a real step trains end to end: build_data opens the right
# layout (fails if it used LIPDataset on the PASCAL root), the loss gets that label set's joint groups
# (fails if ATR or PASCAL got LIP's: LIP's groups use ids 18/19, beyond ATR's 18 and PASCAL's 7
# classes, and StructureSensitiveLoss refuses them even with ssl.mode=none), the loss is finite,
# and validation scores one IoU per class of the label set (fails if the val split or evaluation
# used another label set's classes).
@pytest.mark.parametrize("mode", ["none", "paper"])
@pytest.mark.parametrize("name", list(LABEL_SETS))
def test_one_training_step_per_label_set(roots: dict[str, Path], tmp_path: Path, name: str, mode: str) -> None:
    label_set = LABEL_SETS[name]
    result = fit(tiny_config(roots[name], tmp_path / "run", name, mode))
    assert result["step"] == 1
    loss = result["train"]["loss"]
    assert loss is not None and math.isfinite(loss)
    val = result["val"]
    assert val is not None and val["num_images"] == N_VAL
    assert list(val["iou"]) == list(label_set.classes)
    assert len(val["iou"]) == label_set.num_classes


# Guards TrainConfig.validate: joint groups that do not fit the label set are refused up front with
# a message naming ssl.groups and the label set (fails if validation let them through to the loss).
@pytest.mark.parametrize("label_set, groups", [("atr", "lip-no-shoes"), ("cihp", "atr"),
                                               ("pascal-person-part", "lip")])
def test_config_refuses_groups_of_another_label_set(tmp_path: Path, label_set: str, groups: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"ssl.groups={groups!r}") + ".*" + re.escape(label_set)):
        TrainConfig.from_dict({"data": {"label_set": label_set}, "ssl": {"groups": groups}})


def test_config_accepts_each_label_sets_own_groups() -> None:
    # Guards the other direction: every name LABEL_SET_JOINTS lists for a label set validates.
    for name in LABEL_SETS:
        for groups in ("", *ssl.LABEL_SET_JOINTS[name]):
            TrainConfig.from_dict({"data": {"label_set": name}, "ssl": {"groups": groups}})


# Guards open_split's dispatch: pascal-person-part reads PASCAL roots, the others LIP roots (lip's
# items identical to LIPDataset's, so existing LIP runs are unchanged).
def test_open_split_picks_the_dataset_class(roots: dict[str, Path]) -> None:
    pascal = open_split(roots["pascal-person-part"], "val", "pascal-person-part")
    assert isinstance(pascal, PascalPersonPartDataset) and len(pascal) == N_VAL
    assert pascal.label_set == PASCAL_PERSON_PART
    lip = open_split(roots["lip"], "train", "lip")
    direct = LIPDataset(roots["lip"], "train")
    assert type(lip) is LIPDataset and lip.ids == direct.ids and lip.label_set == LIP
    np.testing.assert_array_equal(lip.load(0)["label"], direct.load(0)["label"])
    assert open_split(roots["cihp"], "val", CIHP).label_set == CIHP


# Guards the layout errors: the wrong layout for the label set raises LIPDataError naming the root,
# the label set and the layout expected (fails on a bare resolve error or a silent LIP read).
def test_open_split_pascal_on_a_lip_root_names_the_root(roots: dict[str, Path]) -> None:
    root = roots["lip"]
    with pytest.raises(LIPDataError, match=re.escape(str(root))) as info:
        open_split(root, "train", "pascal-person-part")
    message = str(info.value)
    assert "pascal-person-part" in message and "JPEGImages" in message and "SegmentationPart" in message


def test_open_split_lip_on_a_pascal_root_says_which_label_set(roots: dict[str, Path]) -> None:
    root = roots["pascal-person-part"]
    with pytest.raises(LIPDataError, match=re.escape(str(root))) as info:
        open_split(root, "train", "atr")
    assert "'atr'" in str(info.value) and "pascal-person-part" in str(info.value)


def test_open_split_missing_root(tmp_path: Path) -> None:
    with pytest.raises(LIPDataError, match="does not exist"):
        open_split(tmp_path / "nowhere", "train", "pascal-person-part")
