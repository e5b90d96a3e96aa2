"""lipkit.data.io: image/label reading and conversion, colour labels, id lists, pose CSVs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lipkit.data import LIPDataError, colors_to_ids, read_id_list, read_image, read_label, read_pose_csv, write_pose_csv
from lipkit.labels import CIHP, LIP, PASCAL_PERSON_PART


def _rgb_grid(h: int = 6, w: int = 5) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- images

def test_rgb_png_round_trips(tmp_path):
    arr = _rgb_grid()
    Image.fromarray(arr).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (6, 5, 3)
    assert np.array_equal(out, arr)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    grey = np.arange(30, dtype=np.uint8).reshape(6, 5) * 8
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (6, 5, 3)
    for c in range(3):
        assert np.array_equal(out[:, :, c], grey)


def test_palette_image_gives_palette_colours(tmp_path):
    idx = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    img = Image.fromarray(idx, mode="P")
    img.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90] + [0] * (256 * 3 - 9))
    img.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    expected = np.array([[[10, 20, 30], [40, 50, 60]], [[70, 80, 90], [40, 50, 60]]], dtype=np.uint8)
    assert np.array_equal(out, expected)


def test_rgba_drops_alpha(tmp_path):
    rgba = np.dstack([_rgb_grid(), np.full((6, 5), 7, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    assert np.array_equal(read_image(tmp_path / "a.png"), rgba[:, :, :3])


def test_cmyk_jpeg_converted(tmp_path):
    # pure cyan ink = RGB (0, 255, 255); no ink = white (JPEG is lossy: small tolerance)
    Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save(tmp_path / "c.jpg", quality=100)
    Image.new("CMYK", (8, 8), (0, 0, 0, 0)).save(tmp_path / "w.jpg", quality=100)
    cyan, white = read_image(tmp_path / "c.jpg"), read_image(tmp_path / "w.jpg")
    assert cyan.shape == (8, 8, 3)
    assert np.abs(cyan.astype(int) - [0, 255, 255]).max() <= 3
    assert np.abs(white.astype(int) - 255).max() <= 3


def test_16bit_grayscale_scaled_to_8bit(tmp_path):
    values8 = np.array([[0, 1, 128], [200, 254, 255]], dtype=np.uint16)
    Image.fromarray(values8 * 257).save(tmp_path / "d.png")  # 16-bit PNG: v * 257 is v in 16 bits
    out = read_image(tmp_path / "d.png")
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    assert np.array_equal(out[:, :, 1], values8.astype(np.uint8))


def test_float_image_refused_naming_file(tmp_path):
    Image.fromarray(np.zeros((3, 3), np.float32), mode="F").save(tmp_path / "f.tiff")
    with pytest.raises(LIPDataError, match="f.tiff") as info:
        read_image(tmp_path / "f.tiff")
    assert "mode F" in str(info.value)


def test_missing_image_names_file(tmp_path):
    with pytest.raises(LIPDataError, match="nope.jpg: image file not found") as info:
        read_image(tmp_path / "nope.jpg")
    assert info.value.kind == "missing-image"


# ---------------------------------------------------------------- labels

def test_mode_l_label_ids(tmp_path):
    ids = np.array([[0, 14, 15], [19, 255, 0]], dtype=np.uint8)
    Image.fromarray(ids, mode="L").save(tmp_path / "l.png")
    assert np.array_equal(read_label(tmp_path / "l.png", LIP), ids)


def test_palette_label_read_as_indices_not_grey(tmp_path):
    ids = np.array([[0, 1, 2], [3, 6, 5]], dtype=np.uint8)
    img = Image.fromarray(ids, mode="P")
    img.putpalette([c for rgb in PASCAL_PERSON_PART.palette for c in rgb])
    img.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    # converting to grayscale would give luminance values, not ids; the reader must give the indices
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "p.png").convert("L")), ids)
    assert np.array_equal(read_label(tmp_path / "p.png", PASCAL_PERSON_PART), ids)


def test_grey_rgb_label_accepted(tmp_path):
    ids = np.array([[0, 5], [13, 2]], dtype=np.uint8)
    Image.fromarray(np.repeat(ids[:, :, None], 3, axis=2)).save(tmp_path / "g.png")
    assert np.array_equal(read_label(tmp_path / "g.png", LIP), ids)


def test_colour_label_refused_pointing_to_colors_to_ids(tmp_path):
    ids = np.array([[0, 5], [13, 2]], dtype=np.uint8)
    Image.fromarray(LIP.palette_array[ids]).save(tmp_path / "c.png")
    with pytest.raises(LIPDataError) as info:
        read_label(tmp_path / "c.png", LIP)
    msg = str(info.value)
    assert "c.png" in msg and "lipkit.data.colors_to_ids(rgb, label_set)" in msg and "colourised" in msg
    assert info.value.kind == "colour-label"


def test_label_values_outside_set_refused(tmp_path):
    ids = np.array([[0, 20], [7, 255]], dtype=np.uint8)  # 20 is past LIP's 0..19; 255 is fine
    Image.fromarray(ids, mode="L").save(tmp_path / "v.png")
    with pytest.raises(LIPDataError, match=r"v.png: label values 20 are outside label set 'lip'"):
        read_label(tmp_path / "v.png", LIP)
    # without a label set no value check
    assert np.array_equal(read_label(tmp_path / "v.png"), ids)
    # 7 is outside PASCAL-Person-Part (0..6) too
    with pytest.raises(LIPDataError, match="7, 20"):
        read_label(tmp_path / "v.png", PASCAL_PERSON_PART)


def test_colors_to_ids_inverts_palette():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, CIHP.num_classes, size=(7, 9)).astype(np.uint8)
    rgb = CIHP.palette_array[ids]
    assert np.array_equal(colors_to_ids(rgb, CIHP), ids)


def test_colors_to_ids_unknown_colour():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[1, 1] = (1, 2, 3)
    with pytest.raises(ValueError, match=r"\(1, 2, 3\)"):
        colors_to_ids(rgb, LIP)
    assert colors_to_ids(rgb, LIP, strict=False).tolist() == [[0, 0], [0, 255]]


# ---------------------------------------------------------------- id lists

def test_id_list_crlf_bom_blank_lines_and_pairs(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_bytes("\ufeff".encode() + b"1_2\r\n 3_4 \r\n\r\nJPEGImages/2008_000003.jpg SegmentationPart/2008_000003.png\r\n5_6.jpg\n")
    assert read_id_list(path) == ["1_2", "3_4", "2008_000003", "5_6"]


def test_id_list_empty_missing_duplicate(tmp_path):
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(LIPDataError, match="empty.txt: id list is empty"):
        read_id_list(tmp_path / "empty.txt")
    with pytest.raises(LIPDataError, match="gone.txt: id list not found"):
        read_id_list(tmp_path / "gone.txt")
    (tmp_path / "dup.txt").write_text("a\nb\na\nc\nb\n")
    with pytest.raises(LIPDataError, match=r"dup.txt: 2 duplicate id\(s\): 'a' on lines 1, 3; 'b' on lines 2, 5"):
        read_id_list(tmp_path / "dup.txt")


# ---------------------------------------------------------------- pose CSV

def test_pose_csv_hand_written_row(tmp_path):
    values = ["nan"] * 48
    values[0:3] = ["12", "34.5", "1"]  # joint 0 (R_Ankle): x=12, y=34.5, v=1
    values[45:48] = ["7", "8", ""]  # joint 15 (L_Wrist): v empty -> NaN
    (tmp_path / "p.csv").write_text("100_200.jpg," + ",".join(values) + "\r\n")
    poses = read_pose_csv(tmp_path / "p.csv")
    assert list(poses) == ["100_200"]
    pose = poses["100_200"]
    assert pose.dtype == np.float32 and pose.shape == (16, 3)
    assert pose[0].tolist() == [12.0, 34.5, 1.0]
    assert pose[15, :2].tolist() == [7.0, 8.0] and np.isnan(pose[15, 2])
    assert np.isnan(pose[1:15]).all()


def test_pose_csv_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    poses = {f"{i}_{i * 7}": (rng.random((16, 3)) * 400).astype(np.float32) for i in range(5)}
    poses["0_0"][[2, 9]] = np.nan
    write_pose_csv(tmp_path / "p.csv", poses)
    text = (tmp_path / "p.csv").read_text()
    first = text.splitlines()[0].split(",")
    assert first[0] == "0_0.jpg" and len(first) == 49 and first[7:10] == ["nan", "nan", "nan"]
    back = read_pose_csv(tmp_path / "p.csv")
    assert list(back) == list(poses)
    for k in poses:
        assert np.array_equal(back[k], poses[k], equal_nan=True)


def test_pose_csv_errors_name_file_and_line(tmp_path):
    (tmp_path / "short.csv").write_text("a.jpg,1,2,3\n")
    with pytest.raises(LIPDataError, match="short.csv: line 1: expected 49"):
        read_pose_csv(tmp_path / "short.csv")
    row = "a.jpg," + ",".join(["1"] * 48)
    (tmp_path / "dup.csv").write_text(row + "\n" + row + "\n")
    with pytest.raises(LIPDataError, match="dup.csv: line 2: id 'a' already given on line 1"):
        read_pose_csv(tmp_path / "dup.csv")
    (tmp_path / "word.csv").write_text("a.jpg," + ",".join(["x"] * 48) + "\n")
    with pytest.raises(LIPDataError, match="word.csv: line 1: not a number"):
        read_pose_csv(tmp_path / "word.csv")
    with pytest.raises(LIPDataError, match="none.csv: pose CSV not found"):
        read_pose_csv(tmp_path / "none.csv")


def test_write_pose_csv_rejects_bad_shape(tmp_path):
    with pytest.raises(ValueError, match="'x'"):
        write_pose_csv(tmp_path / "p.csv", {"x": np.zeros((15, 3))})
