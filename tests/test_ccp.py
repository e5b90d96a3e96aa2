"""Clothing Co-Parsing (lipkit.data.ccp, ccp_convert, ccp_stats): the tag mapping, reading, `convert`,
bad input, and the generated tables of docs/ccp.md.

Most tests build a tiny fake CCP clone in tmp_path (photos, .mat labels and label_list.mat written
here with Pillow and scipy); the ones marked ``ccp`` read the real clone named by LIPKIT_CCP.
Expected values are written out by hand, not taken from the module under test.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from lipkit import paths
from lipkit.cli import main
from lipkit.data import LIPDataError, LIPDataset, open_split, read_label
from lipkit.data.ccp import (
    IGNORE,
    LIP_TO_CCP,
    TAG_TABLE,
    CCPDataset,
    lip_to_ccp,
    read_ccp_label,
    read_tags,
    split_ids,
)
from lipkit.data.ccp_convert import convert_ccp
from lipkit.data.validate import validate_split
from lipkit.labels import CCP, LIP, get_label_set

# docs/FILES.md's list of the 59 tags, by id.
CCP_TAGS = (
    "null accessories bag belt blazer blouse bodysuit boots bra bracelet cape cardigan clogs coat dress earrings "
    "flats glasses gloves hair hat heels hoodie intimate jacket jeans jumper leggings loafers necklace panties pants "
    "pumps purse ring romper sandals scarf shirt shoes shorts skin skirt sneakers socks stockings suit sunglasses "
    "sweater sweatshirt swimwear t-shirt tie tights top vest wallet watch wedges"
).split()
H, W = 40, 32
# A hand-made label: tag ids and, below, the ccp ids they must become (worked out by hand from docs/ccp.md).
HAND_TAGS = np.array([[0, 41, 39, 7], [2, 25, 46, 35], [17, 47, 19, 20], [58, 45, 26, 6]], dtype=np.uint8)
HAND_CCP = np.array([[0, 13, 14, 14], [255, 9, 7, 10], [4, 4, 2, 1], [14, 255, 5, 255]], dtype=np.uint8)
FAKE_IDS = {"train": ["0001", "0002"], "val": ["0905", "0906"]}


def _label_list(path: Path, names: list[str] = CCP_TAGS) -> None:
    cells = np.empty((1, len(names)), dtype=object)
    for i, name in enumerate(names):
        cells[0, i] = np.array([name])
    scipy.io.savemat(path, {"label_list": cells})


def _tags(seed: int) -> np.ndarray:
    tags = np.random.default_rng(seed).integers(0, 59, (H, W)).astype(np.uint8)
    tags[:4, :4] = HAND_TAGS
    return tags


def fake_ccp(root: Path) -> Path:
    """A CCP clone holding the first two ids of each split: random photos, labels around HAND_TAGS."""
    (root / "photos").mkdir(parents=True)
    (root / "annotations" / "pixel-level").mkdir(parents=True)
    _label_list(root / "label_list.mat")
    for k, ident in enumerate(FAKE_IDS["train"] + FAKE_IDS["val"]):
        photo = np.random.default_rng(k).integers(0, 256, (H, W, 3), dtype=np.uint8)
        Image.fromarray(photo).save(root / "photos" / f"{ident}.jpg", quality=90)
        scipy.io.savemat(root / "annotations" / "pixel-level" / f"{ident}.mat", {"groundtruth": _tags(k)})
    return root


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return fake_ccp(tmp_path / "ccp")


# ------------------------------------------------------------------ the mapping and the label set
def test_every_tag_is_mapped_exactly_once() -> None:
    assert [r.tag_id for r in TAG_TABLE] == list(range(59))
    assert [r.tag for r in TAG_TABLE] == CCP_TAGS
    for rule in TAG_TABLE:
        assert rule.target == IGNORE or rule.target in CCP.classes, rule
        assert len(rule.reason.split()) >= 2, rule
    used = {r.target for r in TAG_TABLE}
    assert used - {IGNORE} == set(CCP.classes)  # every ccp class gets at least one tag
    shoes = {r.tag for r in TAG_TABLE if r.target == "Shoes"}
    assert shoes == {"boots", "clogs", "flats", "heels", "loafers", "pumps", "sandals", "shoes", "sneakers", "wedges"}
    ignored = {r.tag for r in TAG_TABLE if r.target == IGNORE}
    assert {"bag", "purse", "wallet", "belt", "bracelet", "earrings", "necklace", "ring", "watch", "tie"} <= ignored


def test_hand_made_mat_maps_to_the_hand_computed_ids(tmp_path: Path) -> None:
    path = tmp_path / "0001.mat"
    scipy.io.savemat(path, {"groundtruth": HAND_TAGS})
    np.testing.assert_array_equal(read_tags(path), HAND_TAGS)
    np.testing.assert_array_equal(read_ccp_label(path), HAND_CCP)


def test_ccp_label_set() -> None:
    assert get_label_set("ccp") is CCP and CCP.num_classes == 15
    assert CCP.classes[:13] == LIP.classes[:13] and CCP.palette[:13] == LIP.palette[:13]
    assert CCP.classes[13:] == ("Skin", "Shoes")
    assert not set(CCP.palette[13:]) & set(LIP.palette)  # new colours
    assert CCP.flip_pairs == () and CCP.flip_permutation == tuple(range(15))


def test_lip_to_ccp_covers_every_lip_class() -> None:
    assert set(LIP_TO_CCP) == set(LIP.classes) and set(LIP_TO_CCP.values()) <= set(CCP.classes)
    expected = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 13, 13, 13, 13, 14, 14, 255]
    np.testing.assert_array_equal(lip_to_ccp(np.array([*range(20), 255], dtype=np.uint8)), expected)
    pred = np.array([[13, 18], [19, 16]], dtype=np.int64)
    np.testing.assert_array_equal(lip_to_ccp(pred), [[13, 14], [14, 13]])
    with pytest.raises(ValueError, match="not LIP ids"):
        lip_to_ccp(np.array([20]))
    with pytest.raises(ValueError, match="integer"):
        lip_to_ccp(np.array([1.0]))


def test_split_is_fixed_and_leaves_0536_out() -> None:
    train, val = split_ids("train"), split_ids("val")
    assert len(val) == 100 and val[0] == "0905" and val[-1] == "1004"
    assert len(train) == 903 and train[0] == "0001" and train[-1] == "0904" and "0536" not in train
    assert sorted(train + val) == [f"{i:04d}" for i in range(1, 1005) if i != 536]


# ------------------------------------------------------------------ reading and converting
def test_dataset_reads_the_clone(src: Path) -> None:
    ds = CCPDataset(src, "val")
    assert len(ds) == 100  # the split's ids; the fake clone holds only the first two
    item = ds[0]
    assert item["id"] == "0905" and item["image"].shape == (H, W, 3)
    np.testing.assert_array_equal(item["label"][:4, :4], HAND_CCP)


def test_convert_round_trip(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out" / "ccp-lip"
    done = convert_ccp(src, dst, limit=2, progress=False)
    assert done.counts == {"train": 2, "val": 2}
    for split, ids in FAKE_IDS.items():
        assert (dst / f"{split}_id.txt").read_text().split() == ids
        for k, ident in enumerate(ids):
            label = read_label(dst / f"{split}_segmentations" / f"{ident}.png")
            np.testing.assert_array_equal(label[:4, :4], HAND_CCP)
            tags = scipy.io.loadmat(src / "annotations" / "pixel-level" / f"{ident}.mat")["groundtruth"]
            np.testing.assert_array_equal(label, CCP_EXPECTED[tags])
            assert (dst / f"{split}_images" / f"{ident}.jpg").read_bytes() == (src / "photos" / f"{ident}.jpg").read_bytes()
    assert json.loads((dst / "lipkit_dataset.json").read_text())["label_set"] == "ccp"
    assert "ccp" in (dst / "README.md").read_text()
    ds = open_split(dst, "val", "ccp")
    assert ds.ids == ["0905", "0906"] and ds.load(0)["label"].shape == (H, W)
    report = validate_split(dst, "val", progress=False)  # the declared label set is check-data's default
    assert report.ok and report.label_set == "ccp"
    with pytest.raises(LIPDataError, match="label set 'ccp'.*read as 'lip'"):
        LIPDataset(dst, "val")
    assert sorted(p.name for p in dst.parent.iterdir()) == ["ccp-lip"]  # no staging left behind


# Tag -> ccp id written out by hand from docs/ccp.md's table (independent of TAG_TABLE's code).
_BY_HAND = {
    0: 0, 4: 7, 5: 5, 7: 14, 10: 7, 11: 7, 12: 14, 13: 7, 14: 6, 16: 14, 17: 4, 18: 3, 19: 2, 20: 1, 21: 14,
    22: 5, 24: 7, 25: 9, 26: 5, 28: 14, 31: 9, 32: 14, 35: 10, 36: 14, 37: 11, 38: 5, 39: 14, 40: 9, 41: 13,
    42: 12, 43: 14, 44: 8, 46: 7, 47: 4, 48: 5, 49: 5, 51: 5, 54: 5, 55: 5, 58: 14,
}
CCP_EXPECTED = np.array([_BY_HAND.get(t, 255) for t in range(59)], dtype=np.uint8)


def test_convert_replaces_an_earlier_conversion_and_refuses_other_folders(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    convert_ccp(src, dst, limit=1, progress=False)
    convert_ccp(src, dst, limit=2, progress=False)
    assert (dst / "val_id.txt").read_text().split() == ["0905", "0906"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(LIPDataError, match="not empty") as info:
        convert_ccp(src, other, limit=1, progress=False)
    assert str(other) in str(info.value) and (other / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


# ------------------------------------------------------------------ bad input
def _break(src: Path, case: str) -> Path:
    """Damage the fake clone one way; returns the file the error must name."""
    labels, photos = src / "annotations" / "pixel-level", src / "photos"
    if case == "no-groundtruth":
        scipy.io.savemat(labels / "0002.mat", {"labels": _tags(1)})
        return labels / "0002.mat"
    if case == "size-mismatch":
        scipy.io.savemat(labels / "0905.mat", {"groundtruth": np.zeros((H + 1, W), np.uint8)})
        return labels / "0905.mat"
    if case == "tag-out-of-range":
        tags = _tags(1)
        tags[5, 5] = 59
        scipy.io.savemat(labels / "0002.mat", {"groundtruth": tags})
        return labels / "0002.mat"
    if case == "missing-photo":
        (photos / "0906.jpg").unlink()
        return photos / "0906.jpg"
    if case == "missing-label":
        (labels / "0001.mat").unlink()
        return labels / "0001.mat"
    if case == "corrupt-label":
        (labels / "0906.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(300))
        return labels / "0906.mat"
    if case == "corrupt-photo":
        (photos / "0002.jpg").write_bytes(b"\xff\xd8\xff" + bytes(50))
        return photos / "0002.jpg"
    if case == "missing-label-list":
        (src / "label_list.mat").unlink()
        return src
    if case == "corrupt-label-list":
        (src / "label_list.mat").write_bytes(b"not a mat file at all")
        return src / "label_list.mat"
    if case == "other-label-list":
        _label_list(src / "label_list.mat", CCP_TAGS[:-1])
        return src / "label_list.mat"
    raise AssertionError(case)


BAD_CASES = {  # case -> words the message must hold
    "no-groundtruth": "no 'groundtruth'", "size-mismatch": f"label is {W}x{H + 1}", "tag-out-of-range": "tag ids 59",
    "missing-photo": "photo not found", "missing-label": "not found", "corrupt-label": "cannot read",
    "corrupt-photo": "image", "missing-label-list": "not a Clothing Co-Parsing folder",
    "corrupt-label-list": "cannot read", "other-label-list": "58 tag names",
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_names_the_file_and_keeps_dst(src: Path, tmp_path: Path, case: str, capsys) -> None:
    dst = tmp_path / "dst"
    convert_ccp(src, dst, limit=1, progress=False)
    before = {p.relative_to(dst): p.read_bytes() for p in dst.rglob("*") if p.is_file()}
    named = _break(src, case)
    with pytest.raises(LIPDataError) as info:
        convert_ccp(src, dst, limit=2, progress=False)
    message = str(info.value)
    assert str(named) in message and BAD_CASES[case] in message and "\n" not in message, message
    assert {p.relative_to(dst): p.read_bytes() for p in dst.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ccp", "dst"]  # no staging left behind
    rc = main(["convert", "ccp", str(src), str(dst), "--limit", "2", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("convert: ") and str(named) in err[0], err


def test_src_that_is_not_ccp(tmp_path: Path, capsys) -> None:
    for bad in (tmp_path / "nowhere", tmp_path):
        rc = main(["convert", "ccp", str(bad), str(tmp_path / "dst"), "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and str(bad) in err[0] and "clothing-co-parsing" in err[0], err
    assert not (tmp_path / "dst").exists()


def test_cli_convert_in_a_fresh_process(src: Path, tmp_path: Path) -> None:
    (src / "photos" / "0001.jpg").unlink()
    done = subprocess.run([sys.executable, "-m", "lipkit", "convert", "ccp", str(src), str(tmp_path / "dst"),
                           "--no-progress"], capture_output=True, text=True, cwd=paths.REPO_ROOT)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and str(src / "photos" / "0001.jpg") in done.stderr


def test_one_training_step_on_converted_ccp(src: Path, tmp_path: Path) -> None:
    from lipkit.training import TrainConfig, fit

    dst = convert_ccp(src, tmp_path / "dst", limit=2, progress=False).root
    config = TrainConfig.from_dict({
        "data": {"root": str(dst), "label_set": "ccp", "crop_size": 33, "scale_range": [1.0, 1.0]},
        "model": {"backbone": "resnet18", "width": 0.125}, "ssl": {"mode": "paper"}, "eval": {"every": 0},
        "iterations": 1, "batch_size": 2, "seed": 1, "threads": 1, "progress": False, "out_dir": str(tmp_path / "run"),
    })
    result = fit(config)
    assert math.isfinite(result["train"]["loss"]) and list(result["val"]["iou"]) == list(CCP.classes)


# ------------------------------------------------------------------ the real clone (LIPKIT_CCP)
@pytest.mark.ccp
def test_real_round_trip(ccp: Path, tmp_path: Path) -> None:
    dst = convert_ccp(ccp, tmp_path / "ccp-lip", limit=2, progress=False).root
    for split in ("train", "val"):
        for ident in (dst / f"{split}_id.txt").read_text().split():
            tags = scipy.io.loadmat(ccp / "annotations" / "pixel-level" / f"{ident}.mat")["groundtruth"]
            label = read_label(dst / f"{split}_segmentations" / f"{ident}.png", CCP)
            np.testing.assert_array_equal(label, CCP_EXPECTED[tags])
            assert Image.open(ccp / "photos" / f"{ident}.jpg").size == (label.shape[1], label.shape[0])


@pytest.mark.ccp
def test_docs_tables_match_the_real_files(ccp: Path) -> None:
    from lipkit.data.ccp_stats import count_ccp, doc_tables, fill_doc

    counts = count_ccp(ccp)
    assert counts.unannotated() == ["0536"]  # the one label left out of the split
    doc = (paths.REPO_ROOT / "docs" / "ccp.md").read_text()
    assert fill_doc(doc, doc_tables(counts)) == doc, "docs/ccp.md is out of date: regenerate (lipkit.data.ccp_stats)"
    sizes = {Image.open(p).size for p in sorted((ccp / "photos").glob("*.jpg"))}
    assert {w for w, _ in sizes} == {550} and min(h for _, h in sizes) == 801 and max(h for _, h in sizes) == 873
    assert "550 px wide and\n801-873 px high" in doc
