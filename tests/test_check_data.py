"""check-data: clean splits pass, the report format, split selection, pose notes, the real samples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from lipkit.cli import main
from lipkit.data import write_pose_csv
from lipkit.data.validate import Report, validate_split
from lipkit.labels import PASCAL_PERSON_PART


def make_clean(root: Path, splits=("train", "val"), n: int = 4) -> None:
    rng = np.random.default_rng(0)
    for split in splits:
        (root / f"{split}_images").mkdir(parents=True)
        (root / f"{split}_segmentations").mkdir()
        ids = [f"{split}{k}" for k in range(n)]
        for k, ident in enumerate(ids):
            h, w = 20 + k, 15 + 2 * k
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / f"{split}_images" / f"{ident}.jpg")
            lab = rng.integers(0, 20, (h, w)).astype(np.uint8)
            lab[0, 0] = 255  # ignore value is allowed
            Image.fromarray(lab, mode="L").save(root / f"{split}_segmentations" / f"{ident}.png")
        (root / f"{split}_id.txt").write_text("\n".join(ids) + "\n")


def test_clean_root_passes(tmp_path, capsys):
    make_clean(tmp_path)
    report = validate_split(tmp_path, "train", progress=False)
    assert isinstance(report, Report) and report.ok and report.n_items == 4 and report.layout == "flat"
    assert report.problems == [] and report.notes == []
    rc = main(["check-data", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "split=train" in out and "split=val" in out and out.count("OK") == 2


def test_split_option_and_label_set(tmp_path, capsys):
    make_clean(tmp_path)
    assert main(["check-data", str(tmp_path), "--split", "val", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "split=val" in out and "split=train" not in out
    # the same ids are out of range for PASCAL-Person-Part (0..6): every label fails
    assert main(["check-data", str(tmp_path), "--split", "val", "--label-set", "pascal-person-part", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "| label-values | 4 |" in out
    assert main(["check-data", str(tmp_path), "--label-set", "nope", "--no-progress"]) == 2


def test_one_problem_reported_with_kind_count_and_file(tmp_path):
    make_clean(tmp_path)
    Image.fromarray(np.full((21, 17), 30, np.uint8), mode="L").save(tmp_path / "train_segmentations" / "train1.png")
    report = validate_split(tmp_path, "train", progress=False)
    assert report.problem_counts() == {"label-values": 1}
    text = report.format()
    assert "| label-values | 1 | train_segmentations/train1.png |" in text
    assert "label values 30 are outside label set 'lip'" in text


def test_pose_notes_do_not_fail(tmp_path):
    make_clean(tmp_path, splits=("train",))
    write_pose_csv(tmp_path / "lip_train_set.csv", {"train0": np.zeros((16, 3)), "other": np.zeros((16, 3))})
    report = validate_split(tmp_path, "train", with_pose=True, progress=False)
    assert report.ok
    assert report.note_counts() == {"pose-unknown-ids": 1, "pose-missing-ids": 1}
    assert "3 id(s) have no pose row" in report.format()


def test_pascal_root_detected(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "SegmentationPart").mkdir()
    Image.fromarray(np.zeros((6, 5, 3), np.uint8)).save(tmp_path / "JPEGImages" / "a.jpg")
    lab = Image.fromarray(np.full((6, 5), 6, np.uint8), mode="P")
    lab.putpalette([c for rgb in PASCAL_PERSON_PART.palette for c in rgb])
    lab.save(tmp_path / "SegmentationPart" / "a.png")
    (tmp_path / "train_id.txt").write_text("a\n")
    report = validate_split(tmp_path, "train", progress=False)
    assert report.ok and report.layout == "pascal" and report.label_set == "pascal-person-part"


def test_samples_clean(samples, capsys):
    assert main(["check-data", str(samples / "lip"), "--no-progress"]) == 0
    assert capsys.readouterr().out.count("OK") == 2


def test_module_entry_point_subprocess(tmp_path):
    make_clean(tmp_path, splits=("train",), n=2)
    (tmp_path / "train_images" / "train0.jpg").unlink()
    proc = subprocess.run([sys.executable, "-m", "lipkit", "check-data", str(tmp_path), "--split", "train"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "| missing-image | 1 | train_images/train0.jpg |" in proc.stdout
    assert "check-data train" in proc.stderr  # the tqdm progress bar
