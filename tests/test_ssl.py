"""SSL joints, heatmaps, joint error and loss modes against naive per-image references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lipkit.ssl import (
    JOINT_GROUPS,
    LIP_JOINT_GROUPS,
    LIP_JOINT_GROUPS_NO_SHOES,
    PASCAL_JOINT_GROUPS,
    StructureSensitiveLoss,
    get_joint_groups,
    joint_error,
    joint_heatmaps,
    joint_names,
    multi_output_loss,
    grid_positions,
    labels_on_grid,
    parsing_to_joints,
)


# ---------------------------------------------------------------- naive references (one image, one joint)
def naive_joints(label: np.ndarray, groups):
    joints, present = [], []
    for ids in groups:
        ys, xs = np.nonzero(np.isin(label, ids))
        if len(xs) == 0:
            joints.append((0, 0))
            present.append(False)
        else:
            joints.append((int(xs.sum() / len(xs)), int(ys.sum() / len(ys))))  # int() truncates
            present.append(True)
    return joints, present


def naive_heatmap(cx, cy, present, h, w, sigma):
    hm = np.zeros((h, w))
    if not present:
        return hm
    peak = 4 / (sigma * math.sqrt(2 * math.pi))
    for y in range(h):
        for x in range(w):
            hm[y, x] = peak * math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    return hm


def naive_joint_error(pred, gt, groups, sigma):
    h, w = gt.shape
    jp, pp = naive_joints(pred, groups)
    jg, pg = naive_joints(gt, groups)
    total = 0.0
    for (xp, yp), a, (xg, yg), b in zip(jp, pp, jg, pg):
        total += ((naive_heatmap(xp, yp, a, h, w, sigma) - naive_heatmap(xg, yg, b, h, w, sigma)) ** 2).sum()
    return 0.05 * 0.5 * total


def random_parsing(gen, n, h, w):
    """Blocky random label maps (regions, some classes missing, some 255)."""
    coarse = torch.randint(0, 20, (n, 1, h // 4 + 1, w // 4 + 1), generator=gen).float()
    lab = F.interpolate(coarse, size=(h, w), mode="nearest")[:, 0].long()
    lab[torch.rand(lab.shape, generator=gen) < 0.03] = 255
    return lab


# ---------------------------------------------------------------- joints
@pytest.mark.parametrize("groups", [LIP_JOINT_GROUPS, LIP_JOINT_GROUPS_NO_SHOES, PASCAL_JOINT_GROUPS])
def test_joints_match_naive_reference(groups):
    gen = torch.Generator().manual_seed(0)
    k = 20 if groups is not PASCAL_JOINT_GROUPS else 7
    lab = random_parsing(gen, 4, 23, 17) % k
    lab[0] = 0  # an image with no joint at all
    joints, present = parsing_to_joints(lab, groups)
    assert joints.shape == (4, len(groups), 2) and joints.dtype == torch.long
    assert present.dtype == torch.bool
    for i in range(4):
        ref_j, ref_p = naive_joints(lab[i].numpy(), groups)
        assert joints[i].tolist() == [list(j) for j in ref_j]
        assert present[i].tolist() == ref_p
    assert not present[0].any() and joints[0].abs().sum() == 0


def test_joint_truncation_and_hand_case():
    lab = torch.zeros(1, 4, 6, dtype=torch.long)
    lab[0, 0, 0] = 13  # face pixel at (x=0, y=0)
    lab[0, 3, 5] = 2  # hair pixel at (x=5, y=3): head centre (2.5, 1.5) -> truncated (2, 1)
    lab[0, 1, 1] = lab[0, 1, 2] = lab[0, 2, 2] = 15  # right arm: mean x 5/3 -> 1, mean y 4/3 -> 1
    lab[0, 2, 3] = 255
    joints, present = parsing_to_joints(lab)
    assert joints[0, 0].tolist() == [2, 1]
    assert joints[0, 4].tolist() == [1, 1]
    assert present[0].tolist() == [True, False, False, False, True, False, False, False, False]


def test_uint8_labels_and_bad_input():
    lab = torch.full((1, 5, 5), 14, dtype=torch.uint8)
    joints, present = parsing_to_joints(lab)
    assert joints[0, 3].tolist() == [2, 2] and present[0, 3]
    with pytest.raises(ValueError, match="labels"):
        parsing_to_joints(torch.zeros(5, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="disjoint"):
        get_joint_groups(((1, 2), (2, 3)))
    with pytest.raises(ValueError, match="unknown joint groups"):
        get_joint_groups("coco")
    assert get_joint_groups("pascal") == PASCAL_JOINT_GROUPS
    assert joint_names("lip")[3] == "left-arm" and len(joint_names(LIP_JOINT_GROUPS)) == 9
    assert set(JOINT_GROUPS) == {"lip", "lip-no-shoes", "atr", "pascal", "ccp"}


def test_lip_groups_are_the_released_ones():
    assert LIP_JOINT_GROUPS[:3] == ((1, 2, 4, 13), (5, 7, 11), (9, 12))
    assert [g[0] for g in LIP_JOINT_GROUPS[3:]] == [14, 15, 16, 17, 18, 19]
    used = {i for g in LIP_JOINT_GROUPS for i in g}
    assert used.isdisjoint({0, 3, 6, 8, 10})


# ---------------------------------------------------------------- heatmaps
def test_heatmap_peak_hand_value():
    joints = torch.tensor([[[3, 2], [0, 0]]])
    present = torch.tensor([[True, False]])
    hm = joint_heatmaps(joints, present, (5, 7), sigma=2.0)
    assert hm.shape == (1, 2, 5, 7)
    assert hm[0, 0, 2, 3].item() == pytest.approx(4 / (2 * math.sqrt(2 * math.pi)))  # 0.7979
    assert hm[0, 0, 2, 4].item() == pytest.approx(0.797885 * math.exp(-1 / 8), rel=1e-5)
    assert hm[0, 0].argmax().item() == 2 * 7 + 3
    assert hm[0, 1].abs().sum() == 0  # absent -> all-zero map
    assert joint_heatmaps(joints, present, (5, 7))[0, 0, 2, 3].item() == pytest.approx(1.595769, rel=1e-6)


def test_heatmaps_match_naive_reference():
    gen = torch.Generator().manual_seed(1)
    lab = random_parsing(gen, 3, 13, 11)
    joints, present = parsing_to_joints(lab)
    for sigma in (1.0, 1.7):
        hm = joint_heatmaps(joints, present, (13, 11), sigma=sigma)
        for i in range(3):
            for j in range(9):
                ref = naive_heatmap(*joints[i, j].tolist(), bool(present[i, j]), 13, 11, sigma)
                np.testing.assert_allclose(hm[i, j].numpy(), ref, rtol=1e-5, atol=1e-7)


def test_heatmaps_out_buffer_and_far_tail():
    joints = torch.tensor([[[0, 0], [30, 5]]])
    present = torch.tensor([[True, True]])
    buf = torch.full((1, 2, 8, 40), 7.0)
    res = joint_heatmaps(joints, present, (8, 40), out=buf)
    assert res.data_ptr() == buf.data_ptr()
    torch.testing.assert_close(buf, joint_heatmaps(joints, present, (8, 40)))
    assert buf[0, 0, 0, 39].item() == 0.0  # exp(-760): exactly zero, never subnormal
    assert buf[0, 0, 0, 5].item() == pytest.approx(1.595769 * math.exp(-12.5), rel=1e-5)
    with pytest.raises(ValueError, match="out"):
        joint_heatmaps(joints, present, (8, 40), out=torch.empty(1, 2, 8, 8))


def test_integer_joints_give_the_same_heatmaps_as_the_same_joints_in_float():
    """Integer joints read a cached table of the Gaussian; float joints evaluate the formula. The two
    must agree bit for bit, also for joints far outside the grid and a sigma wider than the grid."""
    joints = torch.tensor([[[0, 0], [40, 12], [-500, 3000], [7, -9], [20, 6]]])
    present = torch.ones(1, 5, dtype=torch.bool)
    for dtype in (torch.float32, torch.float64):
        for sigma in (0.3, 1.0, 2.5, 60.0):
            as_int = joint_heatmaps(joints, present, (13, 41), sigma=sigma, dtype=dtype)
            as_float = joint_heatmaps(joints.to(dtype), present, (13, 41), sigma=sigma, dtype=dtype)
            assert torch.equal(as_int, as_float), (dtype, sigma)
    # The last case (float64, sigma 60): the far joint lies beyond the cut, the others cover the grid.
    assert as_int[0, 2].abs().sum() == 0 and (as_int[0, 4] > 0).all()
    peak = 4 / (60.0 * math.sqrt(2 * math.pi))
    assert as_int[0, 1, 0, 0].item() == pytest.approx(peak * math.exp(-(40**2 + 12**2) / (2 * 60.0**2)), rel=1e-12)


def test_large_grid_heatmaps_written_in_windows_match_dense_and_naive():
    """Above ~1M cells lipkit writes only each map's non-zero window; the maps must equal the dense
    outer product (the ``out=`` path) bit for bit, and the naive formula, including joints at the
    borders, fractional joints, absent joints and a sigma too large for windows."""
    n, size = 4, (260, 1100)  # 4 * 4 * 260 * 1100 > 2**20 cells: the windowed path
    joints = torch.tensor([[[0.0, 0.0], [1099.0, 259.0], [550.5, 130.25], [3.0, 250.0]]]).repeat(n, 1, 1)
    joints[1:, 2] += torch.tensor([[7.0, -3.0], [-100.0, 20.0], [400.0, 100.0]])
    present = torch.tensor([[True, True, True, False]]).repeat(n, 1)
    present[2, 1] = False
    for sigma in (1.0, 2.5, 60.0):
        hm = joint_heatmaps(joints, present, size, sigma=sigma)
        dense = joint_heatmaps(joints, present, size, sigma=sigma, out=torch.empty(n, 4, *size))
        assert torch.equal(hm, dense), sigma
        assert hm[:, 3].abs().sum() == 0 and hm[2, 1].abs().sum() == 0
        for i, j in ((0, 0), (0, 1), (3, 2)):
            cx, cy = joints[i, j].tolist()
            y, x = int(round(cy)), int(round(cx))
            peak = 4 / (sigma * math.sqrt(2 * math.pi))
            for dy, dx in ((0, 0), (1, -1), (-2, 3)):
                yy, xx = min(max(y + dy, 0), size[0] - 1), min(max(x + dx, 0), size[1] - 1)
                expected = peak * math.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
                assert hm[i, j, yy, xx].item() == pytest.approx(expected, rel=1e-5), (sigma, i, j, dy, dx)


# ---------------------------------------------------------------- joint error
def test_joint_error_matches_naive_reference():
    gen = torch.Generator().manual_seed(2)
    gt = random_parsing(gen, 4, 21, 15)
    pred = random_parsing(gen, 4, 21, 15)
    pred[1] = gt[1]
    err = joint_error(pred, gt, sigma=1.0)
    assert err.shape == (4,) and err.dtype == torch.float32
    for i in range(4):
        ref = naive_joint_error(pred[i].numpy(), gt[i].numpy(), LIP_JOINT_GROUPS, 1.0)
        assert err[i].item() == pytest.approx(ref, rel=1e-5, abs=1e-7)
    assert err[1].item() == 0.0  # pred == gt


def test_joint_error_large_batch_equals_per_image():
    """A batch above 2**18 cells scans pred and gt separately; each image alone takes the one-pass
    path (checked against the naive reference above). Both must give the same numbers."""
    gen = torch.Generator().manual_seed(5)
    gt = random_parsing(gen, 3, 384, 300)  # 345,600 cells per batch, 115,200 per image
    pred = random_parsing(gen, 3, 384, 300).to(torch.int32)
    batch = joint_error(pred, gt)
    one_by_one = torch.cat([joint_error(pred[i:i + 1], gt[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, one_by_one, rtol=1e-6, atol=0.0)
    assert (batch > 0).all()


def test_joint_error_zero_for_identical_and_left_right_swap_raises_it():
    lab = torch.zeros(2, 20, 20, dtype=torch.long)
    lab[:, 2:5, 8:12] = 13  # head
    lab[:, 6:12, 6:14] = 5  # upper body
    lab[:, 6:12, 2:5] = 14  # left arm on the image's left
    lab[:, 6:12, 15:18] = 15  # right arm on the image's right
    assert joint_error(lab, lab).tolist() == [0.0, 0.0]
    swapped = lab.clone()
    swapped[lab == 14], swapped[lab == 15] = 15, 14
    err = joint_error(swapped, lab)
    assert (err > 0).all()
    # two arm joints each 12 cells apart: both heatmaps fully separated -> 2 joints x 2 maps x energy
    energy = (naive_heatmap(5, 5, True, 20, 20, 1.0) ** 2).sum()
    assert err[0].item() == pytest.approx(0.025 * 4 * energy, rel=1e-3)
    # a missing region (predicted absent) also counts
    missing = lab.clone()
    missing[lab == 13] = 0
    assert (joint_error(missing, lab) > 0).all()


def test_grid_positions_hand_worked():
    # 321 crop, 41 cells: pixels 0, 8, ..., 320 (the release's label_shrink8; cell i is centred on 8i)
    assert grid_positions(321, 41).tolist() == [8 * i for i in range(41)]
    # 8 px onto 3 cells: i * 7 / 2 = 0, 3.5, 7 -> 0, 4 (half up), 7
    assert grid_positions(8, 3).tolist() == [0, 4, 7]
    # 96 px onto 12 cells: i * 95 / 11 = 0, 8.64, 17.27, 25.9, ... rounded
    assert grid_positions(96, 12).tolist() == [round(i * 95 / 11) for i in range(12)]
    assert grid_positions(10, 1).tolist() == [0]
    assert grid_positions(7, 7).tolist() == list(range(7))


def test_labels_on_grid_of_321_crop_is_every_8th_pixel():
    gen = torch.Generator().manual_seed(3)
    t = torch.randint(0, 256, (2, 321, 321), generator=gen)
    assert torch.equal(labels_on_grid(t, (41, 41)), t[:, ::8, ::8])
    # rectangular, not a multiple of 8 + 1: brute force over the rule
    t = torch.randint(0, 20, (1, 37, 29), generator=gen)
    out = labels_on_grid(t, (5, 4))
    for i in range(5):
        for j in range(4):
            y = math.floor(i * 36 / 4 + 0.5)
            x = math.floor(j * 28 / 3 + 0.5)
            assert out[0, i, j] == t[0, y, x]


def test_perfect_prediction_on_the_grid_has_zero_joint_error():
    # A 321 crop whose regions are not aligned with the 8 px grid: a prediction that equals the
    # labels on the network's grid must score 0 (floor(i * H / h) sampling scores it > 0).
    gen = torch.Generator().manual_seed(11)
    target = random_parsing(gen, 3, 321, 321)
    small = labels_on_grid(target, (41, 41))
    pred = small.masked_fill(small == 255, 0)  # ignore cells and background join no joint
    logits = F.one_hot(pred, 20).permute(0, 3, 1, 2).float() * 10
    out = StructureSensitiveLoss("paper")(logits, target)
    assert out.joint_error.item() == 0.0
    nearest = target.index_select(1, torch.arange(41) * 321 // 41).index_select(2, torch.arange(41) * 321 // 41)
    assert (joint_error(small, nearest) > 0).any()  # the old rule moves ground-truth joints


def test_ce_on_grid_is_cross_entropy_against_sampled_labels():
    gen = torch.Generator().manual_seed(12)
    logits = torch.randn(2, 20, 5, 4, generator=gen)
    target = random_parsing(gen, 2, 33, 25)
    out = StructureSensitiveLoss("none", ce_on="grid")(logits, target)
    small = target[:, ::8, ::8]  # 33 -> 5 cells and 25 -> 4 cells are both exact multiples of 8
    assert torch.equal(labels_on_grid(target, (5, 4)), small)
    assert out.ce.item() == pytest.approx(F.cross_entropy(logits, small, ignore_index=255).item(), rel=1e-6)
    paper = StructureSensitiveLoss("paper", ce_on="grid")(logits, target)
    w = joint_error(logits.argmax(1), small)
    pix = F.cross_entropy(logits, small, ignore_index=255, reduction="none")
    assert paper.loss.item() == pytest.approx(((pix * w.view(-1, 1, 1)).sum() / (small != 255).sum()).item(), rel=1e-5)
    with pytest.raises(ValueError, match="ce_on"):
        StructureSensitiveLoss("none", ce_on="label")


def test_real_sample_perfect_grid_prediction_scores_zero(samples):
    from PIL import Image

    root = samples / "lip"
    moved = []
    for split in ("train", "val"):
        for ident in (root / f"{split}_id.txt").read_text().split():
            label = Image.open(root / f"{split}_segmentations" / f"{ident}.png")
            crop = torch.from_numpy(np.array(label.resize((321, 321), Image.NEAREST))).long()[None]  # a 321 crop
            small = labels_on_grid(crop, (41, 41))
            assert torch.equal(small, crop[:, ::8, ::8])
            assert joint_error(small, small).item() == 0.0  # perfect on the network's grid
            floor_idx = torch.arange(41) * 321 // 41  # the old floor(i * H / h) rule
            nearest = crop.index_select(1, floor_idx).index_select(2, floor_idx)
            moved.append(joint_error(small, nearest).item())
    assert max(moved) > 0.1  # that rule moves real ground-truth joints: a perfect prediction is penalised


# ---------------------------------------------------------------- loss modes
def _data(seed=4, n=3, k=20, h=6, w=5, big=(23, 19)):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, h, w, generator=gen, requires_grad=True)
    target = random_parsing(gen, n, *big)
    return logits, target


def _grad(loss_fn, logits, target):
    return torch.autograd.grad(loss_fn(logits, target).loss, logits)[0]


def test_none_is_cross_entropy_on_upsampled_logits():
    logits, target = _data()
    out = StructureSensitiveLoss("none")(logits, target)
    up = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    ref = F.cross_entropy(up, target, ignore_index=255)
    assert out.loss.item() == pytest.approx(ref.item(), rel=1e-6)
    assert out.ce.item() == pytest.approx(ref.item(), rel=1e-6) and not out.ce.requires_grad
    small = labels_on_grid(target, logits.shape[-2:])
    assert out.joint_error.item() == pytest.approx(joint_error(logits.argmax(1), small).mean().item())


def test_paper_value_and_gradient_are_weighted_per_image():
    logits, target = _data()
    none, paper = StructureSensitiveLoss("none"), StructureSensitiveLoss("paper")
    small = labels_on_grid(target, logits.shape[-2:])
    w = joint_error(logits.argmax(1), small)
    assert (w > 0).all()
    up = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    pix = F.cross_entropy(up, target, ignore_index=255, reduction="none")
    expected = (pix * w.view(-1, 1, 1)).sum() / (target != 255).sum()
    assert paper(logits, target).loss.item() == pytest.approx(expected.item(), rel=1e-5)
    g_none, g_paper = _grad(none, logits, target), _grad(paper, logits, target)
    for i in range(len(w)):
        torch.testing.assert_close(g_paper[i], w[i] * g_none[i], rtol=1e-5, atol=1e-8)
    # per-image view: image i's loss alone, weighted, has the gradient of image i's CE times w_i
    for i in range(len(w)):
        gi = torch.autograd.grad(paper(logits[i : i + 1], target[i : i + 1]).loss, logits)[0][i]
        gn = torch.autograd.grad(none(logits[i : i + 1], target[i : i + 1]).loss, logits)[0][i]
        torch.testing.assert_close(gi, w[i] * gn, rtol=1e-5, atol=1e-8)


def test_released_has_paper_value_and_none_gradient():
    logits, target = _data(seed=5)
    paper, released, none = (StructureSensitiveLoss(m) for m in ("paper", "released", "none"))
    assert released(logits, target).loss.item() == pytest.approx(paper(logits, target).loss.item(), rel=1e-6)
    g_rel, g_none, g_paper = (_grad(f, logits, target) for f in (released, none, paper))
    torch.testing.assert_close(g_rel, g_none)
    assert not torch.allclose(g_rel, g_paper)


def test_normalize_weights_keeps_ce_scale():
    logits, target = _data(seed=6)
    a = StructureSensitiveLoss("paper", normalize_weights=True)(logits, target)
    small = labels_on_grid(target, logits.shape[-2:])
    w = joint_error(logits.argmax(1), small)
    w = w / w.mean()
    up = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    pix = F.cross_entropy(up, target, ignore_index=255, reduction="none")
    assert a.loss.item() == pytest.approx(((pix * w.view(-1, 1, 1)).sum() / (target != 255).sum()).item(), rel=1e-5)
    one = StructureSensitiveLoss("paper", normalize_weights=True)(logits[:1], target[:1])
    ce1 = StructureSensitiveLoss("none")(logits[:1], target[:1])
    assert one.loss.item() == pytest.approx(ce1.loss.item(), rel=1e-6)  # batch of one: weight 1


def _weighting_case(seed=11, n=4):
    """A batch with known, pairwise different per-image joint errors ``w`` and per-image CE sums."""
    logits, target = _data(seed=seed, n=n)
    w = joint_error(logits.argmax(1), labels_on_grid(target, logits.shape[-2:])).double()
    assert len(set(w.tolist())) == n and (w > 0).all()
    up = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    ce_img = F.cross_entropy(up, target, ignore_index=255, reduction="none").sum(dim=(1, 2)).double()
    return logits, target, w, ce_img, int((target != 255).sum())


def test_weightings_values_computed_by_hand():
    logits, target, w, ce_img, n_valid = _weighting_case()
    m = float(w.mean())
    expected_weights = {
        "image": w.tolist(),
        "normalized": [x / m for x in w.tolist()],
        "batch_mean": [m] * 4,
        "shuffled": [w[3].item(), w[0].item(), w[1].item(), w[2].item()],  # image i takes image i-1's weight
    }
    for weighting, weights in expected_weights.items():
        expected = sum(c * x for c, x in zip(ce_img.tolist(), weights)) / n_valid
        for mode in ("paper", "released"):
            out = StructureSensitiveLoss(mode, weighting=weighting)(logits, target)
            assert out.loss.item() == pytest.approx(expected, rel=1e-5), (mode, weighting)
            assert out.ce.item() == pytest.approx(ce_img.sum().item() / n_valid, rel=1e-6)
    shuffled = StructureSensitiveLoss("paper", weighting="shuffled")(logits, target).loss
    assert shuffled.item() == pytest.approx(((ce_img * torch.roll(w, 1)).sum() / n_valid).item(), rel=1e-5)
    # the default is the paper's weighting, and normalize_weights=True is weighting "normalized", bit for bit
    default, image = StructureSensitiveLoss("paper"), StructureSensitiveLoss("paper", weighting="image")
    assert default.weighting == "image" and torch.equal(default(logits, target).loss, image(logits, target).loss)
    old = StructureSensitiveLoss("paper", normalize_weights=True)
    new = StructureSensitiveLoss("paper", weighting="normalized")
    assert old.weighting == "normalized" and new.normalize_weights
    assert torch.equal(old(logits, target).loss, new(logits, target).loss)


def test_weightings_gradients():
    logits, target, w, _, _ = _weighting_case(seed=12)
    up = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    plain_ce = F.cross_entropy(up, target, ignore_index=255)
    g_ce = torch.autograd.grad(plain_ce, logits, retain_graph=True)[0]
    # batch_mean: the gradient of plain CE times the (constant) batch mean of the joint errors
    g_scaled = torch.autograd.grad(plain_ce * w.mean().float(), logits)[0]
    g_mean = _grad(StructureSensitiveLoss("paper", weighting="batch_mean"), logits, target)
    torch.testing.assert_close(g_mean, g_scaled, rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(g_mean, w.mean().float() * g_ce, rtol=1e-5, atol=1e-9)
    # shuffled: image i's gradient is CE's times its neighbour's weight
    g_shuf = _grad(StructureSensitiveLoss("paper", weighting="shuffled"), logits, target)
    for i in range(4):
        torch.testing.assert_close(g_shuf[i], w[i - 1].float() * g_ce[i], rtol=1e-5, atol=1e-9)
    # image and normalized keep their per-image gradients
    g_img = _grad(StructureSensitiveLoss("paper", weighting="image"), logits, target)
    g_norm = _grad(StructureSensitiveLoss("paper", weighting="normalized"), logits, target)
    for i in range(4):
        torch.testing.assert_close(g_img[i], w[i].float() * g_ce[i], rtol=1e-5, atol=1e-9)
        torch.testing.assert_close(g_norm[i], (w[i] / w.mean()).float() * g_ce[i], rtol=1e-5, atol=1e-9)
    # released: exactly CE's gradient (that of mode "none", bit for bit), whatever the weighting
    g_none = _grad(StructureSensitiveLoss("none"), logits, target)
    torch.testing.assert_close(g_none, g_ce)
    for weighting in ("image", "normalized", "batch_mean", "shuffled"):
        g_rel = _grad(StructureSensitiveLoss("released", weighting=weighting), logits, target)
        assert torch.equal(g_rel, g_none), weighting


def test_weightings_with_one_image_and_bad_settings():
    logits, target = _data(seed=13, n=1)
    paper = StructureSensitiveLoss("paper")(logits, target).loss
    for weighting in ("shuffled", "batch_mean"):  # one image: its own weight, as the paper's
        assert torch.equal(StructureSensitiveLoss("paper", weighting=weighting)(logits, target).loss, paper)
    with pytest.raises(ValueError, match="weighting must be one of"):
        StructureSensitiveLoss("paper", weighting="random")
    with pytest.raises(ValueError, match="normalize_weights=True means weighting 'normalized'"):
        StructureSensitiveLoss("paper", weighting="shuffled", normalize_weights=True)
    none = StructureSensitiveLoss("none")(logits, target).loss  # modes without per-image weights ignore it
    assert torch.equal(StructureSensitiveLoss("none", weighting="shuffled")(logits, target).loss, none)
    soft = StructureSensitiveLoss("soft")(logits, target).loss
    assert torch.equal(StructureSensitiveLoss("soft", weighting="batch_mean")(logits, target).loss, soft)


def test_soft_has_gradient_through_joint_term():
    logits, target = _data(seed=7)
    g0 = _grad(StructureSensitiveLoss("soft", soft_weight=0.0), logits, target)
    g1 = _grad(StructureSensitiveLoss("soft", soft_weight=1.0), logits, target)
    torch.testing.assert_close(g0, _grad(StructureSensitiveLoss("none"), logits, target))
    assert (g1 - g0).abs().max() > 1e-4
    soft = StructureSensitiveLoss("soft", soft_weight=2.0)(logits, target)
    assert soft.loss.item() > soft.ce.item()


def test_soft_term_small_when_prediction_matches():
    gen = torch.Generator().manual_seed(8)
    target = random_parsing(gen, 2, 16, 16)
    target[target == 255] = 0
    confident = F.one_hot(target, 20).permute(0, 3, 1, 2).float() * 30.0
    wrong = confident.flip(-1)
    f = StructureSensitiveLoss("soft", soft_weight=1.0)
    good, bad = f(confident, target), f(wrong, target)
    assert good.loss - good.ce < 1e-6
    assert bad.loss - bad.ce > 1e-3


def test_multi_output_sums_fused_and_scales():
    logits, target = _data(seed=9)
    s1 = (logits * 0.5).detach()
    s2 = (logits + 1.0).detach().flip(-1)
    f = StructureSensitiveLoss("paper")
    out = f({"out": logits, "scales": (s1, s2), "attention": None}, target)
    parts = [f(x, target) for x in (logits, s1, s2)]
    assert out.loss.item() == pytest.approx(sum(p.loss.item() for p in parts), rel=1e-6)
    assert out.ce.item() == pytest.approx(sum(p.ce.item() for p in parts), rel=1e-6)
    assert out.joint_error.item() == pytest.approx(parts[0].joint_error.item())
    assert multi_output_loss(f, {"out": logits}, target).loss.item() == pytest.approx(parts[0].loss.item())


def test_loss_input_errors():
    f = StructureSensitiveLoss("paper")
    with pytest.raises(ValueError, match="mode"):
        StructureSensitiveLoss("joint")
    with pytest.raises(ValueError, match="logits"):
        f(torch.zeros(2, 20, 4), torch.zeros(2, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="target"):
        f(torch.zeros(2, 20, 4, 4), torch.zeros(3, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="groups"):
        f(torch.zeros(1, 7, 4, 4), torch.zeros(1, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="'out'"):
        f({"fused": torch.zeros(1, 20, 4, 4)}, torch.zeros(1, 8, 8, dtype=torch.long))
    pascal = StructureSensitiveLoss("paper", groups="pascal")
    assert torch.isfinite(pascal(torch.randn(1, 7, 4, 4), torch.randint(0, 7, (1, 8, 8))).loss)


def test_all_ignored_target_is_finite():
    logits = torch.randn(2, 20, 4, 4, requires_grad=True)
    target = torch.full((2, 8, 8), 255, dtype=torch.long)
    for mode in ("none", "paper", "released", "soft"):
        out = StructureSensitiveLoss(mode)(logits, target)
        assert torch.isfinite(out.loss) and out.loss.item() == 0.0
