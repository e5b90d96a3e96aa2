"""The study summary recomputed from per-run files: paired by seed, intervals from lipkit.study_stats."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lipkit.evaluate import new_state, summarise
from lipkit.labels import LIP
from lipkit.metrics import scores_from_matrix
from lipkit.study import run_name, study_dir
from lipkit.study_stats import paired_t_interval
from lipkit.study_summary import class_differences, load_runs, paired_differences, summary_table, view_table


def _write_run(root, arm: str, seed: int, images: np.ndarray) -> dict:
    """A run folder as lipkit.study ships it, from per-image confusion matrices."""
    state = new_state(LIP)
    state.confusion.matrix = images.sum(axis=0)
    state.num_images, state.joint_error_sum = len(images), 0.5 * len(images)
    scores = summarise(state, LIP)
    scores["by_view"] = {"front": dict(scores)}
    folder = root / run_name(arm, seed)
    folder.mkdir(parents=True)
    (folder / "scores.json").write_text(json.dumps(scores))
    np.savez_compressed(folder / "images.npz", confusions=images.astype(np.uint32))
    return scores


def _images(rng, wrong: int) -> np.ndarray:
    """6 images of background + upper clothes + both arms; ``wrong`` left-arm pixels called right arm."""
    out = np.zeros((6, LIP.num_classes, LIP.num_classes), np.int64)
    for m in out:
        m[0, 0], m[5, 5] = 200 + rng.integers(0, 20), 100 + rng.integers(0, 20)
        m[14, 14], m[14, 15], m[15, 15] = 30 - wrong, wrong, 30
    return out


@pytest.fixture()
def study_root(tmp_path):
    rng = np.random.default_rng(0)
    for seed, extra in enumerate([2, 3, 1, 4]):  # the paper arm swaps `extra` more pixels per image
        base = _images(rng, 5)
        _write_run(tmp_path, "control", seed, base)
        paper = base.copy()
        paper[:, 14, 14] -= extra
        paper[:, 14, 15] += extra
        _write_run(tmp_path, "paper", seed, paper)
    _write_run(tmp_path, "released", 0, _images(np.random.default_rng(0), 5))  # one seed: no interval
    return tmp_path


def test_differences_are_paired_by_seed_and_intervals_follow_from_them(study_root):
    runs = load_runs(study_root)
    assert set(runs) == {("control", s) for s in range(4)} | {("paper", s) for s in range(4)} | {("released", 0)}
    diffs = paired_differences(runs, "L/R confusion")
    expected = []
    for s in range(4):
        a, c = runs[("paper", s)], runs[("control", s)]
        known = [[v for v in r["left_right_confusion"].values() if v is not None] for r in (a, c)]
        expected.append((s, 100 * (np.mean(known[0]) - np.mean(known[1]))))
    assert [s for s, _ in diffs["paper"]] == [s for s, _ in expected] == [0, 1, 2, 3]
    assert [d for _, d in diffs["paper"]] == pytest.approx([d for _, d in expected])
    # mean over the two directions of the arm pair: (extra / 30) / 2 of a side's pixels more, in points
    assert [d for _, d in diffs["paper"]] == pytest.approx([100 * e / 30 / 2 for e in (2, 3, 1, 4)])
    table = summary_table("L/R confusion", study_root, bootstrap=200)
    row = table.loc["paper"]
    iv = paired_t_interval([d for _, d in diffs["paper"]], level=row["level"])
    assert row["seeds"] == 4 and row["level"] == pytest.approx(0.95)  # Holm over one arm with an interval
    assert (row["lower"], row["upper"]) == pytest.approx((iv.lower, iv.upper))
    assert row["lower"] > 0 and "higher than the control" in row["verdict"]
    assert row["images lower"] > 0  # every image has more swaps: the bootstrap over images agrees
    assert table.loc["released", "seeds"] == 1 and np.isnan(table.loc["released", "lower"])
    assert "no interval" in table.loc["released", "verdict"]


def test_views_are_paired_like_the_split(study_root):
    runs = load_runs(study_root)
    assert paired_differences(runs, "mIoU", view="front") == paired_differences(runs, "mIoU")


def test_view_and_class_tables_pair_by_seed(study_root):
    runs = load_runs(study_root)
    views = view_table(runs, "L/R confusion")
    assert list(views["arm"]) == ["paper"] and list(views["view"]) == ["front"] and views["seeds"].iloc[0] == 4
    assert views["mean diff"].iloc[0] == pytest.approx(np.mean([100 * e / 30 / 2 for e in (2, 3, 1, 4)]))
    classes = class_differences(runs, "paper")
    # the left arm loses `extra` of its 30 true pixels to the right arm: IoU 25/(30+..) - (25-extra)/(30+..)
    per_seed = []
    for s in range(4):
        c, a = (np.asarray(runs[(arm, s)]["confusion_matrix"]) for arm in ("control", "paper"))
        iou = lambda m, k: m[k, k] / (m[k, :].sum() + m[:, k].sum() - m[k, k])  # noqa: E731
        per_seed.append(100 * (iou(a, 14) - iou(c, 14)))
    assert classes.loc["Left-arm", "mean diff"] == pytest.approx(np.mean(per_seed)) and np.mean(per_seed) < 0
    assert classes.loc["Upper-clothes", "mean diff"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        class_differences(runs, "released")


def test_the_shipped_summary_follows_from_the_shipped_confusion_matrices():
    """Each shipped run's scores.json agrees with its own confusion matrix and per-image matrices, and the summary's
    paired means are recomputed here from those matrices alone (LIP_SSL's mIoU rule, seeds paired by hand)."""
    runs = load_runs()
    assert runs, "results/ssl_study has no finished runs: python -m lipkit study"
    miou = {}
    for (arm, seed), scores in runs.items():
        matrix = np.asarray(scores["confusion_matrix"])
        with np.load(study_dir() / run_name(arm, seed) / "images.npz") as data:
            np.testing.assert_array_equal(data["confusions"].astype(np.int64).sum(axis=0), matrix)
        miou[(arm, seed)] = 100 * scores_from_matrix(matrix, label_set=LIP).mean_iou
        assert miou[(arm, seed)] == pytest.approx(100 * scores["mean_iou"], abs=1e-9)
    table = summary_table("mIoU", bootstrap=0)
    paired = [a for a in table.index if a not in ("control", "attention_control")]
    assert paired, "no arm is paired with its control yet"
    for arm in paired:
        control = "attention_control" if arm.startswith("attention") else "control"
        diffs = [miou[(arm, s)] - miou[(control, s)] for (a, s) in sorted(runs) if a == arm and (control, s) in runs]
        assert table.loc[arm, "seeds"] == len(diffs)
        assert table.loc[arm, "mean diff"] == pytest.approx(np.mean(diffs), abs=1e-9)
