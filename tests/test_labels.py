import numpy as np
import pytest

from lipkit.labels import (
    ATR, CIHP, LIP, LIP_POSE_FLIP_PAIRS, LIP_POSE_FLIP_PERMUTATION, LIP_POSE_JOINTS,
    PASCAL_PERSON_PART, LabelSet, get_label_set,
)


def test_lip_names_and_ids_match_the_benchmark():
    assert LIP.num_classes == 20
    assert LIP.classes[0] == "Background" and LIP.classes[13] == "Face"
    assert LIP.classes[14:20] == ("Left-arm", "Right-arm", "Left-leg", "Right-leg", "Left-shoe", "Right-shoe")
    assert LIP.palette[5] == (255, 85, 0) and LIP.palette[19] == (255, 170, 0)
    assert LIP.ignore_index == 255


@pytest.mark.parametrize("ls", [LIP, CIHP, ATR, PASCAL_PERSON_PART])
def test_flip_permutation_is_an_involution(ls):
    perm = np.array(ls.flip_permutation)
    assert len(perm) == ls.num_classes
    np.testing.assert_array_equal(perm[perm], np.arange(ls.num_classes))
    assert ls.flip_lut[255] == 255
    assert ls.palette_array.shape == (ls.num_classes, 3) and ls.palette_array.dtype == np.uint8


def test_lip_mirror_pairs():
    assert [LIP.flip_permutation[i] for i in (14, 15, 16, 17, 18, 19, 13)] == [15, 14, 17, 16, 19, 18, 13]


def test_cihp_differs_from_lip_only_at_10():
    diffs = [i for i in range(20) if LIP.classes[i] != CIHP.classes[i]]
    assert diffs == [10] and CIHP.classes[10] == "Torso-skin"


def test_get_label_set_and_errors():
    assert get_label_set("LIP") is LIP
    assert get_label_set("pascal_person_part") is PASCAL_PERSON_PART
    with pytest.raises(ValueError, match="unknown label set 'coco'"):
        get_label_set("coco")
    with pytest.raises(ValueError, match="colours"):
        LabelSet("x", ("a", "b"), ((0, 0, 0),))
    with pytest.raises(ValueError, match="flip pair"):
        LabelSet("x", ("a", "b"), ((0, 0, 0), (1, 1, 1)), flip_pairs=((0, 2),))


def test_pose_joint_mirror_pairs_pair_left_with_right():
    assert len(LIP_POSE_JOINTS) == 16
    for a, b in LIP_POSE_FLIP_PAIRS:
        assert {LIP_POSE_JOINTS[a][0], LIP_POSE_JOINTS[b][0]} == {"R", "L"}
        assert LIP_POSE_JOINTS[a][1:] == LIP_POSE_JOINTS[b][1:]
    perm = np.array(LIP_POSE_FLIP_PERMUTATION)
    np.testing.assert_array_equal(perm[perm], np.arange(16))
