"""ConfusionMatrix and scores against brute-force loops and hand-computed cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lipkit.labels import LIP, PASCAL_PERSON_PART
from lipkit.metrics import ConfusionMatrix, left_right_confusion, scores_from_matrix


def brute_matrix(pred, target, k, ignore=255):
    m = np.zeros((k, k), dtype=np.int64)
    for p, t in zip(np.ravel(pred).tolist(), np.ravel(target).tolist()):
        if t == ignore:
            continue
        m[t, p] += 1
    return m


def brute_scores(m, absent):
    """Loop-based reference of every score."""
    k = len(m)
    acc, iou = [], []
    for i in range(k):
        row = sum(m[i, j] for j in range(k))
        col = sum(m[j, i] for j in range(k))
        union = row + col - m[i, i]
        if absent == "zero":
            acc.append(m[i, i] / max(1, row))
            iou.append(m[i, i] / max(1, union))
        else:
            acc.append(m[i, i] / row if row else math.nan)
            iou.append(m[i, i] / union if union else math.nan)
    total = m.sum()
    kept_acc = [a for a in acc if not math.isnan(a)]
    kept_iou = [a for a in iou if not math.isnan(a)]
    fw = sum(m[i].sum() / total * iou[i] for i in range(k) if m[i].sum() > 0)
    return {
        "pixel_accuracy": sum(m[i, i] for i in range(k)) / total,
        "mean_accuracy": sum(kept_acc) / len(kept_acc),
        "mean_iou": sum(kept_iou) / len(kept_iou),
        "frequency_weighted_iou": fw,
        "iou": iou,
        "accuracy": acc,
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("absent", ["nan", "zero"])
def test_random_against_brute_force(seed, absent):
    rng = np.random.default_rng(seed)
    k = 7
    target = rng.integers(0, k - 2, size=(3, 17, 13)).astype(np.uint8)  # classes 5, 6 absent from GT
    target[rng.random(target.shape) < 0.1] = 255
    pred = rng.integers(0, k - 1, size=target.shape)  # class 6 never predicted: 0/0 for class 6
    cm = ConfusionMatrix(k).update(pred, target)
    ref = brute_matrix(pred, target, k)
    np.testing.assert_array_equal(cm.matrix, ref)
    assert cm.matrix.dtype == np.int64
    s = cm.compute(absent)
    r = brute_scores(ref, absent)
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"):
        assert getattr(s, key) == pytest.approx(r[key]), key
    np.testing.assert_allclose(s.iou, r["iou"], equal_nan=True)
    np.testing.assert_allclose(s.accuracy, r["accuracy"], equal_nan=True)
    assert s.absent_rule == absent


def test_torch_and_numpy_inputs_agree_and_any_shape():
    rng = np.random.default_rng(3)
    t = rng.integers(0, 20, size=(2, 31, 29))
    p = rng.integers(0, 20, size=(2, 31, 29))
    a = ConfusionMatrix(20).update(p, t)
    b = ConfusionMatrix(20).update(torch.from_numpy(p), torch.from_numpy(t).to(torch.uint8))
    c = ConfusionMatrix(20).update(p.ravel(), t.ravel().astype(np.int32))
    np.testing.assert_array_equal(a.matrix, b.matrix)
    np.testing.assert_array_equal(a.matrix, c.matrix)
    np.testing.assert_array_equal(a.matrix, brute_matrix(p, t, 20))


def test_hand_computed_both_rules():
    # GT:   0 0 1 1 255 ; pred: 0 1 1 1 2   -> class 2 predicted only on an ignored pixel.
    target = np.array([0, 0, 1, 1, 255, 3])
    pred = np.array([0, 1, 1, 1, 2, 0])
    cm = ConfusionMatrix(4).update(pred, target)
    # rows GT: 0 -> [1,1,0,0], 1 -> [0,2,0,0], 2 -> none, 3 -> [1,0,0,0]
    expected = np.array([[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(cm.matrix, expected)
    nan = cm.compute("nan")
    assert nan.pixel_accuracy == pytest.approx(3 / 5)
    # class acc: 1/2, 2/2, nan, 0/1 -> mean over present = 0.5
    np.testing.assert_allclose(nan.accuracy, [0.5, 1.0, np.nan, 0.0], equal_nan=True)
    assert nan.mean_accuracy == pytest.approx(0.5)
    # IoU: class0 1/(2+2-1)=1/3; class1 2/(2+3-2)=2/3; class2 0/0; class3 0/(1+0-0)=0
    np.testing.assert_allclose(nan.iou, [1 / 3, 2 / 3, np.nan, 0.0], equal_nan=True)
    assert nan.mean_iou == pytest.approx(1 / 3)
    assert nan.frequency_weighted_iou == pytest.approx(2 / 5 * 1 / 3 + 2 / 5 * 2 / 3)
    zero = cm.compute("zero")
    np.testing.assert_allclose(zero.iou, [1 / 3, 2 / 3, 0.0, 0.0])
    assert zero.mean_iou == pytest.approx(1 / 4)
    assert zero.mean_accuracy == pytest.approx(1.5 / 4)
    assert zero.pixel_accuracy == pytest.approx(3 / 5)
    assert zero.frequency_weighted_iou == pytest.approx(nan.frequency_weighted_iou)


def test_perfect_prediction_and_invariants():
    rng = np.random.default_rng(4)
    t = rng.integers(0, 20, size=(50, 40))
    s = ConfusionMatrix(20).update(t, t).compute()
    assert s.pixel_accuracy == 1.0 and s.mean_iou == 1.0 and s.mean_accuracy == 1.0
    assert s.frequency_weighted_iou == pytest.approx(1.0)
    p = rng.integers(0, 20, size=(50, 40))
    cm = ConfusionMatrix(20).update(p, t)
    assert cm.matrix.sum() == t.size
    s = cm.compute()
    assert np.all((s.iou >= 0) & (s.iou <= s.accuracy + 1e-12))  # IoU never exceeds class accuracy
    assert 0 <= s.mean_iou <= 1


def test_merge_equals_update_on_concatenation():
    rng = np.random.default_rng(5)
    parts = [(rng.integers(0, 20, (2, 9, 11)), rng.integers(0, 20, (2, 9, 11))) for _ in range(3)]
    whole = ConfusionMatrix(20).update(
        np.concatenate([p for p, _ in parts]), np.concatenate([t for _, t in parts])
    )
    cms = [ConfusionMatrix(20).update(p, t) for p, t in parts]
    added = cms[0] + cms[1] + cms[2]
    np.testing.assert_array_equal(added.matrix, whole.matrix)
    merged = cms[0].copy().merge(cms[1]).merge(cms[2])
    np.testing.assert_array_equal(merged.matrix, whole.matrix)
    assert cms[0].matrix.sum() == parts[0][0].size  # + left its operands alone
    with pytest.raises(ValueError, match="classes"):
        cms[0].merge(ConfusionMatrix(7))


def test_all_reduce_without_distributed_is_noop():
    cm = ConfusionMatrix(3).update(np.array([0, 1]), np.array([0, 2]))
    before = cm.matrix.copy()
    np.testing.assert_array_equal(cm.all_reduce().matrix, before)


def test_bad_values_name_the_parameter():
    cm = ConfusionMatrix(5)
    with pytest.raises(ValueError, match="pred"):
        cm.update(np.array([0, 5]), np.array([0, 1]))
    with pytest.raises(ValueError, match="pred"):
        cm.update(np.array([0, -1]), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"target.*\[7\]"):
        cm.update(np.array([0, 1]), np.array([0, 7]))
    with pytest.raises(ValueError, match="target"):
        cm.update(np.array([0, 1]), np.array([-3, 1]))
    with pytest.raises(ValueError, match="shape"):
        cm.update(np.zeros((2, 3), int), np.zeros((3, 2), int))
    with pytest.raises(TypeError, match="argmax"):
        cm.update(np.zeros((2, 3)), np.zeros((2, 3), int))
    assert cm.matrix.sum() == 0  # failed updates leave no partial counts
    with pytest.raises(ValueError, match="absent"):
        cm.compute("skip")


def test_other_ignore_index():
    cm = ConfusionMatrix(3, ignore_index=-1).update(np.array([0, 1, 2]), np.array([0, -1, 2]))
    np.testing.assert_array_equal(cm.matrix, np.diag([1, 0, 1]))


def test_to_dict_is_json_with_class_names():
    t = np.array([0, 1, 1])
    s = ConfusionMatrix(LIP.num_classes).update(t, t).compute("nan", label_set=LIP)
    d = json.loads(json.dumps(s.to_dict(), allow_nan=False))
    assert d["iou"]["Background"] == 1.0 and d["iou"]["Right-shoe"] is None
    assert d["absent_rule"] == "nan" and d["num_pixels"] == 3
    table = s.table(LIP)
    assert list(table["class"]) == list(LIP.classes)
    plain = ConfusionMatrix(3).update(np.array([0]), np.array([0])).compute("zero").to_dict()
    assert plain["iou"] == [1.0, 0.0, 0.0]


def test_left_right_confusion():
    k = LIP.num_classes
    m = np.zeros((k, k), dtype=np.int64)
    m[14, 14], m[14, 15] = 6, 2  # a quarter of left-arm pixels predicted as right-arm
    m[15, 15], m[15, 14], m[15, 0] = 1, 3, 1
    m[16, 17] = 4
    lr = left_right_confusion(m, LIP)
    assert lr["Left-arm->Right-arm"] == pytest.approx(0.25)
    assert lr["Right-arm->Left-arm"] == pytest.approx(0.6)
    assert lr["Left-leg->Right-leg"] == pytest.approx(1.0)
    assert math.isnan(lr["Right-leg->Left-leg"])
    assert math.isnan(lr["Left-shoe->Right-shoe"])
    assert len(lr) == 6
    cm = ConfusionMatrix(k)
    cm.matrix = m
    assert left_right_confusion(cm, LIP)["Left-arm->Right-arm"] == pytest.approx(0.25)
    assert left_right_confusion(np.eye(7, dtype=np.int64), PASCAL_PERSON_PART) == {}
    with pytest.raises(ValueError, match="classes"):
        left_right_confusion(np.eye(5), LIP)


def test_scores_from_matrix_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        scores_from_matrix(np.zeros((2, 3)))


def test_strided_and_signed_inputs():
    rng = np.random.default_rng(6)
    t = rng.integers(0, 6, size=(8, 12)).astype(np.int16)[:, ::3]
    p = rng.integers(0, 6, size=(8, 12)).astype(np.int8)[:, 1::3]
    cm = ConfusionMatrix(6).update(p, t)
    np.testing.assert_array_equal(cm.matrix, brute_matrix(p, t, 6))
    with pytest.raises(ValueError, match="pred"):
        cm.update(-p - 1, t)  # negatives of a signed type are caught
