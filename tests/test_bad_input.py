"""Hardening: a matrix of bad inputs, each with its documented behaviour, and check-data listing
them all in one pass (issue 6). All bad files are built here with Pillow in a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lipkit.cli import main
from lipkit.data import LIPDataError, LIPDataset, write_pose_csv
from lipkit.data.validate import validate_split
from lipkit.labels import LIP

H, W = 40, 30


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _label(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, LIP.num_classes, (H, W)).astype(np.uint8)


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def build_bad_root(root: Path) -> dict[str, str]:
    """Flat LIP train split: one good item plus one item per bad case. Returns case -> id."""
    img_dir, lab_dir = root / "train_images", root / "train_segmentations"
    img_dir.mkdir(parents=True)
    lab_dir.mkdir()
    cases = ["good", "trunc_jpg", "corrupt_jpg", "trunc_png", "corrupt_png", "garbled_png", "size_mismatch",
             "out_of_range", "trunc_header_jpg", "rgb_label", "cmyk", "rgba", "img16", "missing_img", "missing_lab"]
    for k, case in enumerate(cases):
        img_path, lab_path = img_dir / f"{case}.jpg", lab_dir / f"{case}.png"
        Image.fromarray(_image(k)).save(img_path, quality=90)
        Image.fromarray(_label(k), mode="L").save(lab_path)
    _truncate(img_dir / "trunc_jpg.jpg")
    (img_dir / "corrupt_jpg.jpg").write_bytes(os.urandom(300))
    _truncate(img_dir / "trunc_header_jpg.jpg", keep=0.05)  # stops inside the JPEG header
    _truncate(lab_dir / "trunc_png.png")
    (lab_dir / "corrupt_png.png").write_bytes(b"not a PNG at all" + os.urandom(200))
    data = bytearray((lab_dir / "garbled_png.png").read_bytes())  # valid header, damaged pixel data
    idat = data.index(b"IDAT") + 8
    data[idat:idat + 20] = bytes(20)
    (lab_dir / "garbled_png.png").write_bytes(bytes(data))
    Image.fromarray(np.zeros((H, W + 1), np.uint8), mode="L").save(lab_dir / "size_mismatch.png")
    bad_ids = _label(6)
    bad_ids[0, 0], bad_ids[1, 1] = 20, 77
    Image.fromarray(bad_ids, mode="L").save(lab_dir / "out_of_range.png")
    Image.fromarray(LIP.palette_array[_label(7)]).save(lab_dir / "rgb_label.png")
    Image.new("CMYK", (W, H), (255, 0, 0, 0)).save(img_dir / "cmyk.jpg", quality=100)
    rgba = np.dstack([_image(10), np.full((H, W), 128, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(img_dir / "rgba.jpg", format="PNG")
    Image.fromarray(((np.arange(H * W) % 256).astype(np.uint16).reshape(H, W) * 257)).save(img_dir / "img16.jpg", format="PNG")
    (img_dir / "missing_img.jpg").unlink()
    (lab_dir / "missing_lab.png").unlink()
    # CRLF line endings: accepted
    (root / "train_id.txt").write_bytes("".join(f"{c}\r\n" for c in cases).encode())
    write_pose_csv(root / "lip_train_set.csv", {"good": np.ones((16, 3), np.float32), "ghost": np.zeros((16, 3), np.float32)})
    return {c: c for c in cases}


@pytest.fixture(scope="module")
def bad_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad") / "lip"
    build_bad_root(root)
    return root


# case -> (error kind, file under root named in the message) for the items that must fail to load
FAILING = {
    "trunc_jpg": ("truncated-image", "train_images/trunc_jpg.jpg"),
    "corrupt_jpg": ("unreadable-image", "train_images/corrupt_jpg.jpg"),
    "trunc_header_jpg": ("truncated-image", "train_images/trunc_header_jpg.jpg"),
    "trunc_png": ("truncated-label", "train_segmentations/trunc_png.png"),
    "corrupt_png": ("unreadable-label", "train_segmentations/corrupt_png.png"),
    "garbled_png": ("unreadable-label", "train_segmentations/garbled_png.png"),
    "size_mismatch": ("size-mismatch", "train_segmentations/size_mismatch.png"),
    "out_of_range": ("label-values", "train_segmentations/out_of_range.png"),
    "rgb_label": ("colour-label", "train_segmentations/rgb_label.png"),
    "missing_img": ("missing-image", "train_images/missing_img.jpg"),
    "missing_lab": ("missing-label", "train_segmentations/missing_lab.png"),
}


def test_crlf_id_list_read_cleanly(bad_root):
    ds = LIPDataset(bad_root, "train")
    assert ds.ids[0] == "good" and not any("\r" in i or " " in i for i in ds.ids) and len(ds.ids) == 15


@pytest.mark.parametrize("case", sorted(FAILING))
def test_bad_item_raises_naming_file(bad_root, case):
    kind, rel = FAILING[case]
    ds = LIPDataset(bad_root, "train")
    with pytest.raises(LIPDataError) as info:
        ds[ds.ids.index(case)]
    assert info.value.kind == kind
    assert str(bad_root / rel) in str(info.value)
    assert info.value.path == bad_root / rel


def test_out_of_range_message_lists_values(bad_root):
    ds = LIPDataset(bad_root, "train")
    with pytest.raises(LIPDataError, match="label values 20, 77 are outside"):
        ds[ds.ids.index("out_of_range")]


def test_size_mismatch_names_both_files(bad_root):
    ds = LIPDataset(bad_root, "train")
    with pytest.raises(LIPDataError, match=r"label is 31x40 \(WxH\) but its image .*size_mismatch.jpg is 30x40"):
        ds[ds.ids.index("size_mismatch")]


def test_converted_images_load_as_rgb(bad_root):
    ds = LIPDataset(bad_root, "train")
    cmyk = ds[ds.ids.index("cmyk")]["image"]
    rgba = ds[ds.ids.index("rgba")]["image"]
    img16 = ds[ds.ids.index("img16")]["image"]
    for im in (cmyk, rgba, img16):
        assert im.shape == (H, W, 3) and im.dtype == np.uint8
    assert np.abs(cmyk.astype(int) - [0, 255, 255]).max() <= 3  # cyan ink
    assert np.array_equal(rgba, _image(10))  # alpha dropped, colours kept
    assert np.array_equal(img16[:, :, 0], (np.arange(H * W) % 256).reshape(H, W).astype(np.uint8))


def test_pose_rows_for_unknown_ids_are_ignored_and_listed(bad_root):
    ds = LIPDataset(bad_root, "train", with_pose=True)
    assert ds.unknown_pose_ids == ("ghost",)
    assert len(ds.missing_pose_ids) == 14
    assert np.array_equal(ds.poses["good"], np.ones((16, 3), np.float32))


def test_missing_pose_file_names_where_it_looked(tmp_path):
    root = tmp_path / "lip"
    build_bad_root(root)
    (root / "lip_train_set.csv").unlink()
    with pytest.raises(LIPDataError, match="with_pose=True but no pose CSV") as info:
        LIPDataset(root, "train", with_pose=True)
    assert str(root / "lip_train_set.csv") in str(info.value) and info.value.kind == "missing-pose"
    assert len(LIPDataset(root, "train")) == 15  # without pose it loads


def test_empty_and_duplicate_id_lists(tmp_path):
    root = tmp_path / "lip"
    build_bad_root(root)
    ids = root / "train_id.txt"
    ids.write_text("\r\n\r\n")
    with pytest.raises(LIPDataError, match="id list is empty") as info:
        LIPDataset(root, "train")
    assert info.value.path == ids and str(ids) in str(info.value)
    ids.write_text("good\r\ncmyk\r\ngood\r\n")
    with pytest.raises(LIPDataError, match=r"'good' on lines 1, 3") as info:
        LIPDataset(root, "train")
    assert str(ids) in str(info.value) and info.value.kind == "duplicate-ids"
    ids.unlink()
    with pytest.raises(LIPDataError, match=r"train id list not found \(looked for train_id.txt"):
        LIPDataset(root, "train")


def test_wrong_root_and_unknown_split(tmp_path):
    (tmp_path / "somefile.txt").write_text("x")
    with pytest.raises(LIPDataError, match="matches no known layout") as info:
        LIPDataset(tmp_path, "train")
    msg = str(info.value)
    for looked in ("train_images", "TrainVal_images/train_images", "TrainVal_parsing_annotations/TrainVal_parsing_annotations/train_segmentations", "train_id.txt"):
        assert looked in msg
    assert str(tmp_path) in msg
    with pytest.raises(LIPDataError, match="does not exist"):
        LIPDataset(tmp_path / "nowhere", "train")
    with pytest.raises(LIPDataError, match=r"unknown split 'validation'; choose one of train, val, test"):
        LIPDataset(tmp_path, "validation")


def _check_data_root(tmp_path: Path) -> Path:
    """The bad train split plus a duplicate id, and a val split with an empty list and no pose CSV."""
    root = tmp_path / "lip"
    build_bad_root(root)
    with open(root / "train_id.txt", "ab") as f:
        f.write(b"good\r\n")
    (root / "val_images").mkdir()
    (root / "val_segmentations").mkdir()
    (root / "val_id.txt").write_text("")
    return root


def test_validate_split_finds_every_problem_exactly(tmp_path):
    root = _check_data_root(tmp_path)
    report = validate_split(root, "train", "lip", with_pose=True, progress=False)
    assert not report.ok and report.n_items == 15
    found: dict[str, set[str]] = {}
    for issue in report.problems:
        found.setdefault(issue.kind, set()).add(str(issue.path.relative_to(root)))
    expected: dict[str, set[str]] = {}
    for kind, rel in FAILING.values():
        expected.setdefault(kind, set()).add(rel)
    expected["duplicate-ids"] = {"train_id.txt"}
    assert found == expected  # every bad item, nothing reported for the good or convertible ones
    notes = {(n.kind, n.path.name) for n in report.notes}
    assert notes == {("converted-image", "cmyk.jpg"), ("converted-image", "rgba.jpg"), ("converted-image", "img16.jpg"),
                     ("pose-unknown-ids", "lip_train_set.csv"), ("pose-missing-ids", "lip_train_set.csv")}
    val = validate_split(root, "val", "lip", with_pose=True, progress=False)
    assert {i.kind for i in val.problems} == {"id-list", "missing-pose"}


def test_decode_images_mode_agrees(tmp_path):
    root = _check_data_root(tmp_path)
    fast = validate_split(root, "train", progress=False)
    full = validate_split(root, "train", decode_images=True, progress=False)
    assert fast.problem_counts() == full.problem_counts()


def test_check_data_cli_lists_everything_in_one_pass(tmp_path, capsys):
    root = _check_data_root(tmp_path)
    rc = main(["check-data", str(root), "--with-pose", "--no-progress", "--max-files", "20"])
    out = capsys.readouterr().out
    assert rc == 1
    kinds = {k for k, _ in FAILING.values()} | {"duplicate-ids", "id-list", "missing-pose", "converted-image", "pose-unknown-ids"}
    for kind in kinds:
        assert f"| {kind} |" in out, kind
    for _, rel in FAILING.values():
        assert rel in out, rel
    assert "split=train" in out and "split=val" in out
    assert "| label-values | 1 | train_segmentations/out_of_range.png |" in out
    assert "| unreadable-label | 2 |" in out


def test_check_data_cli_wrong_root(tmp_path, capsys):
    rc = main(["check-data", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1 and "matches no known layout" in out and "TrainVal_images/train_images" in out


def test_predict_and_evaluate_answer_bad_files_with_one_line(tmp_path):
    """A user's own photos and checkpoints meet `predict` first: bad ones get one line on stderr, exit 2."""
    import subprocess
    import sys

    from lipkit import paths

    text = tmp_path / "photo.jpg"
    text.write_text("not an image")
    good = paths.shipped_dir("deeplabv2") / "model.pt"
    truncated = tmp_path / "model.pt"
    truncated.write_bytes(good.read_bytes()[: 50_000])
    cases = {
        ("predict", str(text), "--checkpoint", str(good), "--out", str(tmp_path / "out")): str(text),
        ("predict", str(text), "--checkpoint", str(truncated), "--out", str(tmp_path / "out")): "truncated",
        ("evaluate", "--checkpoint", str(truncated), "--data-root", str(tmp_path)): "truncated",
        ("evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--data-root", str(tmp_path)): "does not exist",
    }
    for argv, needle in cases.items():
        done = subprocess.run([sys.executable, "-m", "lipkit", *argv], capture_output=True, text=True,
                              cwd=paths.REPO_ROOT, env={**os.environ, "TQDM_DISABLE": "1"})
        lines = [x for x in done.stderr.splitlines() if x.strip() and "it/s" not in x and "?it" not in x]
        assert done.returncode == 2, (argv, done.stderr)
        assert len(lines) == 1 and lines[0].startswith(f"{argv[0]}: ") and needle in lines[0], (argv, done.stderr)
        assert "Traceback" not in done.stderr
