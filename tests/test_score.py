"""``lipkit.score`` / ``python -m lipkit score``: hand-made folders with hand-computed scores, every failure
kind naming its file, and the same numbers as ``evaluate`` on predictions written by ``predict``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lipkit import paths, score, subsets
from lipkit.cli import main
from lipkit.data import write_label_png
from lipkit.labels import LIP

K = LIP.num_classes
BG, FACE, UPPER = 0, LIP.index("Face"), LIP.index("Upper-clothes")
L_ARM, R_ARM, L_LEG, R_LEG = (LIP.index(c) for c in ("Left-arm", "Right-arm", "Left-leg", "Right-leg"))
SHIPPED = paths.shipped_dir("deeplabv2") / "model.pt"


def _labels() -> dict[str, np.ndarray]:
    """Three ground truths of different sizes, with both arms, legs and some ignore (255) pixels."""
    out = {}
    for k, (h, w) in enumerate([(12, 10), (9, 14), (16, 11)]):
        gt = np.zeros((h, w), np.uint8)
        gt[1:4, 3:7] = FACE
        gt[4:8, 3:7] = UPPER
        gt[4:8, 1:3] = R_ARM  # the person's right arm is on the image's left
        gt[4:8, 7:9] = L_ARM
        gt[8:, 3:5] = R_LEG
        gt[8:, 5:7] = L_LEG
        gt[0, :] = 255
        out[f"im{k}"] = gt
    return out


def _lip_root(root: Path, labels: dict[str, np.ndarray], split: str = "val") -> Path:
    """A flat LIP root holding only what scoring reads: the label PNGs (mode L) and the id list."""
    (root / f"{split}_images").mkdir(parents=True)
    (root / f"{split}_segmentations").mkdir(parents=True)
    for ident, gt in labels.items():
        Image.fromarray(gt, mode="L").save(root / f"{split}_segmentations" / f"{ident}.png")
    (root / f"{split}_id.txt").write_text("".join(f"{i}\n" for i in labels))
    return root


def _write(folder: Path, preds: dict[str, np.ndarray], how: str = "palette") -> Path:
    """Predictions as palette PNGs (write_label_png, the predict command's), mode-L id PNGs or RGB colour PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    for ident, p in preds.items():
        if how == "palette":
            write_label_png(folder / f"{ident}.png", p, LIP)
        elif how == "ids":
            Image.fromarray(p.astype(np.uint8), mode="L").save(folder / f"{ident}.png")
        else:
            Image.fromarray(LIP.palette_array[p]).save(folder / f"{ident}.png")
    return folder


def _perfect(labels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {i: np.where(gt == 255, BG, gt).astype(np.uint8) for i, gt in labels.items()}


@pytest.fixture()
def data(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    labels = _labels()
    return _lip_root(tmp_path / "lip", labels), labels


# ------------------------------------------------------------------------------------------ hand-made cases
def test_a_perfect_folder_scores_one(data, tmp_path):
    root, labels = data
    report = score.score_folder(_write(tmp_path / "pred", _perfect(labels)), root, "val", progress=False)
    s = report.scores
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"):
        assert s[key] == 1.0
    assert s["joint_error"] == 0.0 and s["num_images"] == 3
    assert all(v == 0.0 for v in s["left_right_confusion"].values() if v is not None)
    present = {BG, FACE, UPPER, L_ARM, R_ARM, L_LEG, R_LEG}
    assert s["absent_zero"]["mean_iou"] == pytest.approx(len(present) / K)  # zero rule: absent classes count 0
    assert report.protocol.subset == "all" and report.protocol.images == 3


def test_left_right_swapped_folder_has_the_hand_computed_confusion(data, tmp_path):
    """Arms swapped in every image; legs swapped in im0 and im2 but right in im1.

    Per image: 8 left-arm and 8 right-arm pixels; legs 2 x (4, 1, 8 rows) = 8, 2, 16 pixels per side.
    So arms: L->R = R->L = 24 / 24; legs: L->R = R->L = (8 + 16) / 26; Left-leg IoU = 2 / (26 + 26 - 2).
    """
    root, labels = data
    preds = {i: LIP.flip_lut[p] for i, p in _perfect(labels).items()}  # every mirror pair swapped
    legs = np.isin(preds["im1"], [L_LEG, R_LEG])
    preds["im1"] = np.where(legs, LIP.flip_lut[preds["im1"]], preds["im1"])  # im1's legs swapped back
    s = score.score_folder(_write(tmp_path / "pred", preds), root, "val", progress=False).scores
    assert {i: int((gt == L_LEG).sum()) for i, gt in labels.items()} == {"im0": 8, "im1": 2, "im2": 16}
    valid = sum(int((gt != 255).sum()) for gt in labels.values())
    conf = s["left_right_confusion"]
    assert conf["Left-arm->Right-arm"] == 1.0 and conf["Right-arm->Left-arm"] == 1.0
    assert conf["Left-leg->Right-leg"] == 24 / 26 and conf["Right-leg->Left-leg"] == 24 / 26
    assert conf["Left-shoe->Right-shoe"] is None and conf["Right-shoe->Left-shoe"] is None  # no shoes in the ground truth
    matrix = np.array(s["confusion_matrix"])
    assert (matrix[L_ARM, R_ARM], matrix[R_ARM, L_ARM], matrix[L_LEG, R_LEG], matrix[L_LEG, L_LEG]) == (24, 24, 24, 2)
    assert s["pixel_accuracy"] == (valid - 48 - 48) / valid
    assert s["iou"]["Left-arm"] == 0.0 and s["iou"]["Right-arm"] == 0.0 and s["iou"]["Left-leg"] == 2 / 50
    assert s["joint_error"] > 0.0  # the arm and leg joints sit on the wrong sides
    text = score.score_folder(tmp_path / "pred", root, "val", progress=False).format()
    assert "| Left-arm / Right-arm | 100.00 | 100.00 |" in text and "| Left-leg / Right-leg | 92.31 | 92.31 |" in text


@pytest.mark.parametrize("how", ["ids", "colour"])
def test_palette_id_and_colour_pngs_of_the_same_labels_score_identically(data, tmp_path, how):
    root, labels = data
    preds = {i: np.roll(p, 1, axis=1) for i, p in _perfect(labels).items()}  # imperfect, so the numbers say something
    a = score.score_folder(_write(tmp_path / "palette", preds, "palette"), root, "val", progress=False)
    b = score.score_folder(_write(tmp_path / how, preds, how), root, "val", progress=False)
    assert b.scores == a.scores and 0 < a.scores["mean_iou"] < 1


def test_rgba_colour_pngs_are_read_by_their_colour(data, tmp_path):
    root, labels = data
    folder = tmp_path / "rgba"
    folder.mkdir()
    for i, p in _perfect(labels).items():
        rgba = np.concatenate([LIP.palette_array[p], np.full((*p.shape, 1), 255, np.uint8)], axis=2)
        Image.fromarray(rgba, mode="RGBA").save(folder / f"{i}.png")
    assert score.score_folder(folder, root, "val", progress=False).scores["mean_iou"] == 1.0


def test_resize_nearest_is_the_floor_rule_of_torch_nearest():
    rng = np.random.default_rng(0)
    for src, dst in (((7, 9), (16, 13)), ((20, 17), (6, 5)), ((5, 5), (5, 5))):
        labels = rng.integers(0, K, src, dtype=np.uint8)
        ref = F.interpolate(torch.from_numpy(labels)[None, None].float(), size=dst, mode="nearest")[0, 0].byte().numpy()
        assert np.array_equal(score.resize_nearest(labels, dst), ref)


def test_resize_rules(data, tmp_path):
    root, labels = data
    small = {i: score.resize_nearest(p, (p.shape[0] // 2, p.shape[1] // 2)) for i, p in _perfect(labels).items()}
    folder = _write(tmp_path / "small", small)
    with pytest.raises(score.ScoreError) as err:
        score.score_folder(folder, root, "val", progress=False)
    assert {p.kind for p in err.value.problems} == {"size"} and len(err.value.problems) == 3
    up = score.score_folder(folder, root, "val", resize="nearest", progress=False)
    expected = {i: score.resize_nearest(p, labels[i].shape) for i, p in small.items()}
    same = score.score_folder(_write(tmp_path / "up", expected), root, "val", progress=False)
    assert up.scores == same.scores and up.protocol.resized == 3
    down = score.score_folder(folder, root, "val", resize="gt-nearest", progress=False)
    assert down.protocol.resized == 3 and "not the benchmark protocol" in down.format()
    assert down.scores["confusion_matrix"] != up.scores["confusion_matrix"]


# ------------------------------------------------------------------------------------------ subsets and options
def test_subsets_are_stated_and_other_predictions_are_not_errors(data, tmp_path):
    root, labels = data
    folder = _write(tmp_path / "pred", _perfect(labels))
    first = score.score_folder(folder, root, "val", max_images=2, progress=False)
    assert first.protocol.images == 2 and first.protocol.outside_subset == 1
    assert "subset of 2 of 3 images of split 'val' (first 2)" in first.format()
    ids = tmp_path / "ids.txt"
    ids.write_text("im2\nim0\n")
    listed = score.score_folder(folder, root, "val", ids_file=ids, progress=False)
    assert listed.protocol.images == 2 and f"(ids in {ids})" in listed.format()
    ids.write_text("im2\nnot_an_id\n")
    with pytest.raises(score.ScoreError) as err:
        score.score_folder(folder, root, "val", ids_file=ids, progress=False)
    assert [p.kind for p in err.value.problems] == ["unknown-id"] and "not_an_id" in str(err.value)


def test_absent_rules_differ_on_a_subset_and_the_report_says_so(data, tmp_path):
    root, labels = data
    preds = _perfect(labels)
    preds["im0"][preds["im0"] == FACE] = LIP.index("Hat")  # a class the ground truth never has
    report = score.score_folder(_write(tmp_path / "pred", preds), root, "val", progress=False)
    nan, zero = report.metrics("nan"), report.metrics("zero")
    assert nan["mean_accuracy"] > zero["mean_accuracy"] and nan["mean_iou"] > zero["mean_iou"]
    assert report.iou("nan")["Glove"] is None and report.iou("zero")["Glove"] == 0.0
    assert "the two absent rules differ here" in report.format()


def test_allow_missing_scores_missing_predictions_as_background(data, tmp_path):
    root, labels = data
    preds = _perfect(labels)
    folder = _write(tmp_path / "pred", {i: p for i, p in preds.items() if i != "im1"})
    report = score.score_folder(folder, root, "val", allow_missing=True, progress=False)
    explicit = score.score_folder(_write(tmp_path / "zeros", {**preds, "im1": np.zeros_like(preds["im1"])}), root, "val",
                                  progress=False)
    assert report.scores == explicit.scores and report.protocol.missing_as_background == 1
    assert "1 scored as all background (--allow-missing)" in report.format()


def test_predict_overlays_are_skipped_and_counted_and_nothing_is_written(data, tmp_path):
    root, labels = data
    folder = _write(tmp_path / "pred", _perfect(labels))
    for i in labels:
        Image.new("RGB", (4, 4)).save(folder / f"{i}_overlay.png")
    (folder / ".DS_Store").write_bytes(b"")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    report = score.score_folder(folder, root, "val", progress=False)
    assert report.protocol.skipped_overlays == 3 and report.protocol.hidden == 1
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == before


# ------------------------------------------------------------------------------------------ failure kinds
def _problems(folder: Path, root: Path, **options) -> list[score.Problem]:
    with pytest.raises(score.ScoreError) as err:
        score.score_folder(folder, root, "val", progress=False, **options)
    for p in err.value.problems:  # every message starts with its file, and the whole message lists it
        assert p.message.startswith(str(p.path)) and str(p.path) in str(err.value)
    return err.value.problems


def test_missing_prediction_names_the_file(data, tmp_path):
    root, labels = data
    folder = _write(tmp_path / "pred", {i: p for i, p in _perfect(labels).items() if i != "im1"})
    (problem,) = _problems(folder, root)
    assert problem.kind == "missing" and problem.path == folder / "im1.png"
    assert str(root / "val_segmentations" / "im1.png") in problem.message


def test_extra_files_name_the_file(data, tmp_path):
    root, labels = data
    folder = _write(tmp_path / "pred", _perfect(labels))
    (folder / "notes.txt").write_text("x")
    (folder / "im9.png").write_bytes(b"")
    (folder / "sub").mkdir()
    problems = _problems(folder, root)
    assert {(p.kind, p.path.name) for p in problems} == {("extra", "notes.txt"), ("extra", "im9.png"), ("extra", "sub")}
    assert any("a folder" in p.message for p in problems)


@pytest.mark.parametrize("content", [b"not a png at all", "truncated"])
def test_unreadable_prediction_names_the_file(data, tmp_path, content):
    root, labels = data
    folder = _write(tmp_path / "pred", _perfect(labels))
    target = folder / "im2.png"
    target.write_bytes(content if isinstance(content, bytes) else target.read_bytes()[:60])
    (problem,) = _problems(folder, root)
    assert problem.kind == "unreadable" and problem.path == target


def test_colour_not_in_the_palette_names_the_file_the_pixel_and_the_colour(data, tmp_path):
    root, labels = data
    preds = _perfect(labels)
    folder = _write(tmp_path / "pred", preds, "colour")
    rgb = LIP.palette_array[preds["im0"]].copy()
    rgb[2, 3] = (1, 2, 3)
    rgb[5, 6] = (1, 2, 3)
    Image.fromarray(rgb).save(folder / "im0.png")
    (problem,) = _problems(folder, root)
    assert problem.kind == "colour" and problem.path == folder / "im0.png"
    assert "pixel (x=3, y=2)" in problem.message and "(1, 2, 3)" in problem.message
    assert "2 pixel(s) in 1 colour(s)" in problem.message


def test_values_that_are_no_class_id_name_the_file(data, tmp_path):
    root, labels = data
    preds = _perfect(labels)
    preds["im1"][3, 3] = 25
    preds["im2"][3, 3] = 255
    problems = _problems(_write(tmp_path / "pred", preds, "ids"), root)
    assert [(p.kind, p.path.name) for p in problems] == [("values", "im1.png"), ("values", "im2.png")]
    assert "25" in problems[0].message and "255" in problems[1].message


def test_size_mismatch_names_the_file_and_both_sizes(data, tmp_path):
    root, labels = data
    preds = _perfect(labels)
    preds["im1"] = np.zeros((14, 9), np.uint8)  # the ground truth is 14x9 (WxH): transposed
    (problem,) = _problems(_write(tmp_path / "pred", preds), root)
    assert problem.kind == "size" and problem.path.name == "im1.png"
    assert "prediction is 9x14 (WxH)" in problem.message and "is 14x9 (WxH)" in problem.message
    assert "swapped" in problem.message and str(root / "val_segmentations" / "im1.png") in problem.message


def test_ground_truth_problems_name_the_file(data, tmp_path):
    root, labels = data
    (root / "val_segmentations" / "im0.png").write_bytes(b"broken")
    (problem,) = _problems(_write(tmp_path / "pred", _perfect(labels)), root)
    assert problem.kind == "ground-truth" and problem.path == root / "val_segmentations" / "im0.png"


def test_every_problem_is_listed_in_one_pass(data, tmp_path, capsys):
    root, labels = data
    preds = _perfect(labels)
    preds["im2"] = np.zeros((3, 3), np.uint8)
    folder = _write(tmp_path / "pred", {i: p for i, p in preds.items() if i != "im0"})
    (folder / "stray.jpg").write_bytes(b"x")
    (folder / "im1.png").write_bytes(b"garbage")
    kinds = [p.kind for p in _problems(folder, root)]
    assert sorted(kinds) == ["extra", "missing", "size", "unreadable"]
    assert main(["score", str(folder), "--data-root", str(root), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "4 problem(s) found before scoring; nothing was scored" in out
    for name in ("im0.png", "stray.jpg", "im1.png", "im2.png"):
        assert str(folder / name) in out
    assert "--allow-missing" in out and "--resize nearest" in out
    assert main(["score", str(tmp_path / "nowhere"), "--data-root", str(root), "--no-progress"]) == 1
    assert "does not exist" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ the command
def test_cli_report_json_and_csv(data, tmp_path, capsys):
    root, labels = data
    folder = _write(tmp_path / "pred", _perfect(labels))
    out_json, out_csv = tmp_path / "out" / "s.json", tmp_path / "out" / "s.csv"
    rc = main(["score", str(folder), "--data-root", str(root), "--max-images", "2", "--absent", "zero",
               "--json", str(out_json), "--csv", str(out_csv), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "subset of 2 of 3 images" in text and "| zero (SCHP/CE2P/HRNet) |" in text and "nan (LIP_SSL)" not in text
    assert "## Structure consistency" in text and "mean joint error" in text
    classes = [line.split("|")[2].strip() for line in text.splitlines() if line.startswith("| ") and
               line.split("|")[1].strip().isdigit()]
    assert classes == list(LIP.classes)  # the paper's class order
    stored = json.loads(out_json.read_text())
    assert stored["protocol"]["absent"] == ["zero"] and stored["protocol"]["images"] == 2
    assert stored["protocol"]["resize"] == "none" and stored["mean_iou"] == 1.0
    rows = out_csv.read_text().splitlines()
    assert rows[0] == "section,name,absent_rule,value" and "score,mean_iou,nan,1.0" in rows and "score,pixel_accuracy,zero,1.0" in rows
    assert "protocol,subset,,first 2" in rows and sorted(p.name for p in folder.iterdir()) == sorted(f"{i}.png" for i in labels)


def test_cli_rejects_bad_options(data, tmp_path, capsys):
    root, _ = data
    with pytest.raises(SystemExit):
        main(["score", str(tmp_path), "--data-root", str(root), "--resize", "bilinear"])
    with pytest.raises(SystemExit):
        main(["score", str(tmp_path), "--data-root", str(root), "--ids", "x", "--max-images", "2"])
    assert main(["score", str(tmp_path), "--data-root", str(tmp_path / "no_root"), "--no-progress"]) == 2


# ------------------------------------------------------------------------------------------ one code path with evaluate
def _predict_then_score(root: Path, split: str, tmp_path: Path, flip: bool) -> tuple[dict, dict]:
    images = sorted((root / f"{split}_images").glob("*.jpg"))
    pred = tmp_path / "pred"
    common = ["--checkpoint", str(SHIPPED), "--device", "cpu"] + (["--flip"] if flip else [])
    assert main(["predict", *common, *map(str, images), "--out", str(pred), "--input-height", "native"]) == 0
    assert main(["score", str(pred), "--data-root", str(root), "--split", split, "--json", str(tmp_path / "s.json"),
                 "--no-progress"]) == 0
    assert main(["evaluate", *common, "--data-root", str(root), "--split", split, "--out", str(tmp_path / "e.json"),
                 "--no-progress"]) == 0
    scored = json.loads((tmp_path / "s.json").read_text())
    protocol = scored.pop("protocol")
    assert protocol["skipped_overlays"] == len(images)  # predict's overlays sit beside the labels
    return scored, json.loads((tmp_path / "e.json").read_text())


@pytest.mark.parametrize("flip", [False, True])
def test_score_of_predict_output_equals_evaluate_exactly(tmp_path, flip):
    from lipkit.data.synth import make_synthlip

    root = make_synthlip(tmp_path / "synth", n_train=0, n_val=3, seed=0, size_range=(60, 90), workers=1, progress=False)
    scored, evaluated = _predict_then_score(root, "val", tmp_path, flip)
    assert scored == evaluated and scored["num_images"] == 3


@pytest.mark.parametrize("split", ["val", "train"])
def test_score_of_predict_output_equals_evaluate_on_the_real_samples(samples, tmp_path, split):
    scored, evaluated = _predict_then_score(samples / "lip", split, tmp_path, flip=False)
    assert scored == evaluated and scored["num_images"] == 1


def test_real_sample_labels_as_colour_pngs_score_one(samples, tmp_path):
    from lipkit.data import read_label

    gt_dir = samples / "lip" / "val_segmentations"
    folder = tmp_path / "colour"
    folder.mkdir()
    for path in gt_dir.glob("*.png"):
        Image.fromarray(LIP.palette_array[read_label(path, LIP)]).save(folder / path.name)
    report = score.score_folder(folder, samples / "lip", "val", progress=False)
    assert report.scores["mean_iou"] == 1.0 and report.scores["joint_error"] == 0.0


def test_notebook_06_declares_the_smoke_recipe_fields():
    """Notebook 06 takes the parameters of 02-05 (the recipe's fields in capitals, smoke values) and FIGURES_DIR."""
    import ast

    import papermill

    from lipkit import pipeline
    from lipkit.recipe import RECIPES, Recipe

    notebook = next(paths.NOTEBOOKS_DIR.glob("06_*.ipynb"))
    defaults = {k: ast.literal_eval(v["default"]) for k, v in papermill.inspect_notebook(str(notebook)).items()}
    assert set(defaults) == set(RECIPES["smoke"].parameters()) | {"FIGURES_DIR"}
    assert Recipe.from_parameters(defaults) == RECIPES["smoke"]
    for name, spec in pipeline.PROFILES.items():
        if spec.get("strict", True):
            assert "06" in spec["notebooks"], f"profile {name} has no entry for notebook 06"


# ------------------------------------------------------------------------------------------ sampling: random subsets
def _five(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """Five images (sizes and labels as ``_labels``'), each prediction wrong in its own way, so subsets differ."""
    three = list(_labels().values())
    labels = {f"im{k}": gt for k, gt in enumerate(three + [three[1].copy(), three[0].T.copy()])}
    preds = _perfect(labels)
    preds["im0"][preds["im0"] == FACE] = UPPER  # no face at all
    preds["im1"] = LIP.flip_lut[preds["im1"]]  # arms and legs swapped
    preds["im2"][8:, :] = BG  # legs missed
    preds["im3"][preds["im3"] == UPPER] = LIP.index("Coat")  # a class the ground truth never has
    root = _lip_root(tmp_path / "lip5", labels)
    return root, _write(tmp_path / "pred5", preds), list(labels)


def _brute_force(root: Path, folder: Path, ids: list[str], n: int, tmp_path: Path, absent: str) -> dict[tuple, float]:
    """mIoU of every subset of ``n`` ids, each scored on its own by score_folder through an ids file."""
    from itertools import combinations

    out = {}
    for combo in combinations(range(len(ids)), n):
        listed = tmp_path / f"ids_{'_'.join(map(str, combo))}.txt"
        listed.write_text("".join(f"{ids[k]}\n" for k in combo))
        report = score.score_folder(folder, root, "val", ids_file=listed, progress=False)
        out[combo] = report.metrics(absent)["mean_iou"]
    return out


def test_per_image_confusions_are_each_pairs_counts_and_sum_to_the_split(data, tmp_path):
    root, labels = data
    preds = {i: np.roll(p, 1, axis=1) for i, p in _perfect(labels).items()}
    report = score.score_folder(_write(tmp_path / "pred", preds), root, "val", per_image=True, progress=False)
    assert report.image_ids == tuple(labels) and report.image_confusions.shape == (3, K, K)
    for k, (ident, gt) in enumerate(labels.items()):
        expected = np.zeros((K, K), np.int64)
        keep = gt != 255
        np.add.at(expected, (gt[keep], preds[ident][keep]), 1)
        assert np.array_equal(report.image_confusions[k], expected)
    assert report.image_confusions.sum(axis=0).tolist() == report.scores["confusion_matrix"]
    assert score.score_folder(tmp_path / "pred", root, "val", progress=False).image_confusions is None


@pytest.mark.parametrize("absent", ["nan", "zero"])
def test_random_subsets_are_the_brute_force_subsets_of_a_tiny_folder(tmp_path, absent):
    """5 images, n = 2: each drawn subset's mIoU is what score_folder gives those 2 ids; 400 draws meet all 10."""
    root, folder, ids = _five(tmp_path)
    brute = _brute_force(root, folder, ids, 2, tmp_path, absent)
    assert len(brute) == 10 and len(set(brute.values())) >= 5  # the subsets really differ
    spread = subsets.subset_spread(folder, root, "val", n=2, repeats=400, seed=1, absent=absent)
    assert spread.subsets.shape == (400, 2) and all(len(set(row)) == 2 for row in spread.subsets.tolist())
    expected = np.array([brute[tuple(sorted(row))] for row in spread.subsets.tolist()])
    assert np.array_equal(spread.draws, expected)
    assert {tuple(sorted(row)) for row in spread.subsets.tolist()} == set(brute)
    assert spread.subset == brute[(0, 1)] and spread.subset_name == "first 2"
    assert spread.full == score.score_folder(folder, root, "val", progress=False).metrics(absent)["mean_iou"]
    assert spread.below == sum(v < brute[(0, 1)] for v in expected) / 400
    assert spread.as_far == sum(abs(v - spread.full) >= abs(brute[(0, 1)] - spread.full) for v in expected) / 400
    given = subsets.subset_spread(folder, root, "val", n=2, repeats=5, subset_ids=["im4", "im2"], absent=absent)
    assert given.subset == brute[(2, 4)] and given.subset_name == "2 given ids"


def test_subsets_of_every_image_all_score_the_full_split(tmp_path):
    root, folder, _ = _five(tmp_path)
    full = score.score_folder(folder, root, "val", progress=False).metrics("nan")["mean_iou"]
    spread = subsets.subset_spread(folder, root, "val", n=5, repeats=20, seed=0)
    assert spread.full == full and spread.subset == full and np.all(spread.draws == full)
    assert spread.interval() == (full, full) and spread.inside() and spread.as_far == 1.0 and spread.below == 0.0
    first3 = subsets.subset_spread(folder, root, "val", n=3, repeats=10, max_images=3)  # options reach score_folder
    assert first3.images == 3 and np.all(first3.draws == first3.full)


def test_the_same_seed_draws_the_same_subsets(tmp_path):
    root, folder, _ = _five(tmp_path)
    report = score.score_folder(folder, root, "val", per_image=True, progress=False)
    a, b = (subsets.spread_of_subsets(report.image_confusions, 3, repeats=30, seed=7) for _ in range(2))
    c = subsets.spread_of_subsets(report.image_confusions, 3, repeats=30, seed=8)
    assert np.array_equal(a.subsets, b.subsets) and np.array_equal(a.draws, b.draws)
    assert not np.array_equal(a.subsets, c.subsets)


def test_bad_subset_parameters_name_the_parameter(tmp_path):
    root, folder, _ = _five(tmp_path)
    matrices = score.score_folder(folder, root, "val", per_image=True, progress=False).image_confusions
    for kwargs, name in [({"n": 0}, "n=0"), ({"n": 6}, "n=6"), ({"n": 2, "repeats": 0}, "repeats=0"),
                         ({"n": 2, "absent": "none"}, "absent=")]:
        with pytest.raises(ValueError, match=name):
            subsets.spread_of_subsets(matrices, **kwargs)
    with pytest.raises(ValueError, match="subset"):
        subsets.spread_of_subsets(matrices, 2, subset=[1, 1])
    for kwargs, name in [({"n": 0}, "n=0"), ({"n": 6}, "n=6"), ({"n": 2, "repeats": 0}, "repeats=0"),
                         ({"n": 2, "subset_ids": ["im0", "nope"]}, "subset_ids")]:
        with pytest.raises(ValueError, match=name):
            subsets.subset_spread(folder, root, "val", **kwargs)


def test_subset_figure_draws_one_panel_per_spread(tmp_path):
    root, folder, _ = _five(tmp_path)
    spreads = [subsets.subset_spread(folder, root, "val", n=2, repeats=50, absent=rule) for rule in ("nan", "zero")]
    fig = subsets.subset_figure(spreads)
    assert len(fig.axes) == 2
    for ax, s in zip(fig.axes, spreads):
        red = [line for line in ax.get_lines() if line.get_color() == "tab:red"]
        assert len(red) == 1 and red[0].get_xdata()[0] == pytest.approx(100 * s.subset)


def test_protocol_figure_hatches_the_rows_that_score_another_sample():
    import pandas as pd

    table = pd.DataFrame({"mIoU": [30.0, 32.5, 33.0]}, index=["reference", "first 2 images", "flip test"])
    ax = score.protocol_figure(table, samples=iter(["first 2 images"])).axes[0]  # any iterable
    assert [bar.get_hatch() or "" for bar in ax.patches] == ["", "//", ""]
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["30.00", "32.50 (+2.50), another sample", "33.00 (+3.00)"]
