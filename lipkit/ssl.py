"""Self-supervised structure-sensitive learning (SSL): joints from parsing maps and the SSL loss.

Gong et al., CVPR 2017, section 4, and its release (Engineering-Course/LIP_SSL, Caffe fork
caffe_ssl, its structure-sensitive loss layer and training configs). No pose annotation is
used: a "joint" is the centre of a merged region of the parsing map (9 for LIP), computed for the
prediction (argmax of the logits) and for the ground truth on the logits' grid. Each joint becomes a
Gaussian heatmap and the joint error of an image is ``0.05 * 1/2 * sum (H_pred - H_gt)^2``.

Everything is vectorised over the batch: region centres come from one ``bincount`` over
(image, joint, column) keys and one over (image, joint, row) keys; the joint error uses the
separability of the Gaussian (sums over x and over y) instead of materialising heatmaps.

Loss modes of :class:`StructureSensitiveLoss`:

``"none"``      plain pixel-wise cross-entropy (ignore 255), averaged over the valid pixels of the batch.
``"paper"``     ``L_joint x L_parsing`` per image, L_joint held constant: every pixel's CE is multiplied
                by its image's joint error, summed over the batch and divided by the number of valid
                pixels of the batch (this is also how the released layer computes its *value*). The
                gradient w.r.t. image n's logits is therefore ``L_joint[n]`` times that of ``"none"``.
``"released"``  the value of ``"paper"`` with the gradient of ``"none"``. The released Caffe layer's
                backward pass ignores L_joint, so the joint term only changes the reported loss, not the
                parameter updates; this mode reproduces that exactly, so that the "paper" vs
                "released" difference can be measured rather than argued.
``"soft"``      a differentiable variant: ``CE + soft_weight * D`` where ``D`` is the mean over
                ground-truth-present joints of the squared distance between the predicted joint (the
                centroid of the group's softmax mass, i.e. the sum of its classes' probabilities, over
                non-ignored cells) and the ground-truth region centre (exact mean, not truncated), with
                x divided by the grid width and y by the grid height, so ``D`` lies in [0, 2]. The
                gradient flows through the softmax into every class of the group.

``weighting`` (modes ``"paper"`` and ``"released"``) says which per-image weight ``w[n]`` multiplies image
n's summed CE; the loss is always ``sum_n w[n] * CE_sum[n] / n_valid`` (n_valid: the valid pixels of the
batch), every weight held constant (no gradient through it), and ``"released"`` keeps CE's gradient
whatever the weighting. ``L[n]`` is image n's joint error, ``N`` the batch size:

``"image"``       ``w[n] = L[n]`` (default; the paper's weighting).
``"normalized"``  ``w[n] = L[n] / mean(L)``: the loss keeps CE's scale, only the relative weighting of the
                  images changes (a batch whose joint errors are all 0 gets weight 0, as the product
                  would; with N = 1 the weight is 1 otherwise). The old ``normalize_weights=True``.
``"batch_mean"``  ``w[n] = mean(L)`` for every image: plain CE times the batch's mean joint error, i.e. the
                  learning-rate change of ``"image"`` without its reweighting of images.
``"shuffled"``    ``w[n] = L[(n - 1) mod N]`` (``torch.roll(L, 1)``): the same weights, each on its
                  neighbour in the batch, so no longer tied to the image's own structure. Deterministic
                  (the batch order is already a seeded random order); with N = 1 it equals ``"image"``.

All four are computed over the batch the loss sees: under DDP, each process's share of the batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lipkit.labels import IGNORE_INDEX, LabelSet

Groups = tuple[tuple[int, ...], ...]

# The 9 joints of the release (LIP_SSL's joint layer). Ids 0, 3, 6, 8, 10 and 255 join no joint.
LIP_JOINT_GROUPS: Groups = (
    (1, 2, 4, 13),  # head: hat, hair, sunglasses, face
    (5, 7, 11),  # upper body: upper-clothes, coat, scarf
    (9, 12),  # lower body: pants, skirt
    (14,),  # left arm
    (15,),  # right arm
    (16,),  # left leg
    (17,),  # right leg
    (18,),  # left shoe
    (19,),  # right shoe
)
LIP_JOINT_NAMES: tuple[str, ...] = (
    "head", "upper-body", "lower-body", "left-arm", "right-arm", "left-leg", "right-leg", "left-shoe", "right-shoe",
)
# Ablation: the release's joints without the two shoe joints (small, often missing regions).
LIP_JOINT_GROUPS_NO_SHOES: Groups = LIP_JOINT_GROUPS[:7]
LIP_JOINT_NAMES_NO_SHOES: tuple[str, ...] = LIP_JOINT_NAMES[:7]
# ATR (18 classes) has no released joints: LIP's nine by analogy, on ATR's ids (dress, belt and bag
# join no joint, as LIP's glove, dress, socks and jumpsuits join none).
ATR_JOINT_GROUPS: Groups = (
    (1, 2, 3, 11),  # head: hat, hair, sunglasses, face
    (4, 17),  # upper body: upper-clothes, scarf
    (5, 6),  # lower body: skirt, pants
    (14,),  # left arm
    (15,),  # right arm
    (12,),  # left leg
    (13,),  # right leg
    (9,),  # left shoe
    (10,),  # right shoe
)
# PASCAL-Person-Part has no left/right classes: one joint per part (ids 1..6).
PASCAL_JOINT_GROUPS: Groups = ((1,), (2,), (3,), (4,), (5,), (6,))
PASCAL_JOINT_NAMES: tuple[str, ...] = ("head", "torso", "upper-arms", "lower-arms", "upper-legs", "lower-legs")

# CCP (lipkit.labels.CCP) has no left/right and one Skin class for face, arms and legs: LIP's head,
# upper- and lower-body joints on the same ids (Skin leaves the head: it is mostly limbs), then one
# joint for all skin and one for both shoes. Dress, glove, socks and jumpsuits join none, as in LIP.
CCP_JOINT_GROUPS: Groups = ((1, 2, 4), (5, 7, 11), (9, 12), (13,), (14,))
CCP_JOINT_NAMES: tuple[str, ...] = ("head", "upper-body", "lower-body", "skin", "shoes")

JOINT_GROUPS: dict[str, tuple[Groups, tuple[str, ...]]] = {
    "lip": (LIP_JOINT_GROUPS, LIP_JOINT_NAMES),
    "lip-no-shoes": (LIP_JOINT_GROUPS_NO_SHOES, LIP_JOINT_NAMES_NO_SHOES),
    "atr": (ATR_JOINT_GROUPS, LIP_JOINT_NAMES),
    "pascal": (PASCAL_JOINT_GROUPS, PASCAL_JOINT_NAMES),
    "ccp": (CCP_JOINT_GROUPS, CCP_JOINT_NAMES),
}
# The joint groups each label set (lipkit.labels names) can use, its default first. CIHP shares LIP's
# ids for every part that joins a joint (its id 10, torso-skin, joins none, as LIP's jumpsuits).
LABEL_SET_JOINTS: dict[str, tuple[str, ...]] = {
    "lip": ("lip", "lip-no-shoes"), "cihp": ("lip", "lip-no-shoes"), "atr": ("atr",), "pascal-person-part": ("pascal",),
    "ccp": ("ccp",),
}

JOINT_ERROR_SCALE = 0.05 * 0.5  # the release's loss weight (0.05) times the 1/2 of the squared error
_LUT_SIZE = 256  # label maps are 8-bit; 255 is ignore
_ONE_PASS_MAX_PIXELS = 1 << 18  # joint_error: above this, pred and gt are scanned separately
_CHECKED: set[Groups] = {g for g, _ in JOINT_GROUPS.values()}  # groups already validated


def get_joint_groups(groups: str | Sequence[Sequence[int]]) -> Groups:
    """Resolve a name from :data:`JOINT_GROUPS` or check an explicit tuple of id tuples."""
    if isinstance(groups, tuple) and groups in _CHECKED:
        return groups
    if isinstance(groups, str):
        try:
            return JOINT_GROUPS[groups.lower().replace("_", "-")][0]
        except KeyError:
            raise ValueError(f"unknown joint groups {groups!r}; choose one of {', '.join(JOINT_GROUPS)}") from None
    out = tuple(tuple(int(i) for i in g) for g in groups)
    if not out or any(not g for g in out):
        raise ValueError(f"groups must be a non-empty sequence of non-empty id tuples, got {groups!r}")
    flat = [i for g in out for i in g]
    if len(set(flat)) != len(flat):
        raise ValueError(f"groups must be disjoint (a class belongs to at most one joint), got {out}")
    if any(not 0 <= i < IGNORE_INDEX for i in flat):
        raise ValueError(f"group ids must lie in [0, {IGNORE_INDEX}), got {out}")
    if len(_CHECKED) < 256:
        _CHECKED.add(out)
    return out


def joint_groups_for(label_set: LabelSet | str) -> Groups:
    """The joint groups of a label set (:data:`LABEL_SET_JOINTS`); ValueError for a set without any."""
    name = label_set if isinstance(label_set, str) else label_set.name
    if name not in LABEL_SET_JOINTS:
        raise ValueError(f"label set {name!r} has no joint groups; known: {', '.join(LABEL_SET_JOINTS)}")
    return JOINT_GROUPS[LABEL_SET_JOINTS[name][0]][0]


def joint_names(groups: str | Sequence[Sequence[int]]) -> tuple[str, ...]:
    """Names of the joints of ``groups`` (``joint0``, ``joint1``... for unnamed custom groups)."""
    resolved = get_joint_groups(groups)
    for known, names in JOINT_GROUPS.values():
        if known == resolved:
            return names
    return tuple(f"joint{i}" for i in range(len(resolved)))


@lru_cache(maxsize=32)
def _group_lut(groups: Groups, device: torch.device) -> Tensor:
    """A 256-entry table: class id -> joint index, J for ids in no group."""
    lut = torch.full((_LUT_SIZE,), len(groups), dtype=torch.long)
    for j, ids in enumerate(groups):  # once per (groups, device); not per image
        lut[list(ids)] = j
    return lut.to(device)


@lru_cache(maxsize=64)
def _key_tables(groups: Groups, device: torch.device, n: int, h: int, w: int) -> tuple[Tensor, ...]:
    """Lookup tables and offsets so that a (image, joint, column) key is one gather plus one add.

    Column key ``(img * (J+1) + joint) * w + col`` and row key ``(img * (J+1) + joint) * h + row``;
    int32 when the key range allows (faster bincount), int64 otherwise.
    """
    j = len(groups)
    dtype = torch.int32 if n * (j + 1) * max(h, w) < 2**31 else torch.long
    lut = _group_lut(groups, device)
    img = torch.arange(n, device=device) * (j + 1)
    off_col = (img * w).view(n, 1, 1) + torch.arange(w, device=device).view(1, 1, w)
    off_row = (img * h).view(n, 1, 1) + torch.arange(h, device=device).view(1, h, 1)
    # Reductions of the histograms: [count, sum of x] over columns, [sum of y] over rows.
    w_col = torch.stack((torch.ones(w, device=device), torch.arange(w, device=device)), 1).double()
    w_row = torch.arange(h, device=device).double().view(h, 1)
    return (lut * w).to(dtype), (lut * h).to(dtype), off_col.to(dtype), off_row.to(dtype), w_col, w_row


def _check_labels(labels: Tensor, name: str) -> None:
    if not isinstance(labels, Tensor) or labels.dim() != 3:
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"{name} must be an (N, h, w) tensor of class ids, got {shape}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class ids, got dtype {labels.dtype}")


def _region_sums(labels: Tensor, groups: Groups) -> Tensor:
    """Per (image, joint): [pixel count, sum of columns, sum of rows] as exact float64, shape (N, J, 3)."""
    n, h, w = labels.shape
    j = len(groups)
    lut_w, lut_h, off_col, off_row, w_col, w_row = _key_tables(groups, labels.device, n, h, w)
    flat = labels.reshape(-1)
    if flat.dtype not in (torch.int32, torch.int64):
        flat = flat.long()
    if flat.device.type != "cpu":
        flat = flat.clamp(0, _LUT_SIZE - 1)  # an out-of-range gather would be a device-side assert
    try:
        col_key = lut_w.index_select(0, flat).view(n, h, w).add_(off_col)
        row_key = lut_h.index_select(0, flat).view(n, h, w).add_(off_row)
    except IndexError:
        raise ValueError(f"labels must hold ids in [0, {_LUT_SIZE}) (255 = ignore)") from None
    col_hist = torch.bincount(col_key.view(-1), minlength=n * (j + 1) * w).view(n, j + 1, w)[:, :j]
    row_hist = torch.bincount(row_key.view(-1), minlength=n * (j + 1) * h).view(n, j + 1, h)[:, :j]
    return torch.cat((col_hist.double() @ w_col, row_hist.double() @ w_row), dim=-1)


def parsing_to_joints(labels: Tensor, groups: str | Sequence[Sequence[int]] = LIP_JOINT_GROUPS) -> tuple[Tensor, Tensor]:
    """Joint positions from parsing maps ``labels`` (N, h, w), ids in [0, 255].

    Returns ``joints`` (N, J, 2) int64 as (x = column, y = row), the mean column and mean row of the
    group's pixels truncated to integers as in the release, and ``present`` (N, J) bool. An absent
    region gives the joint (0, 0) with ``present`` False.
    """
    _check_labels(labels, "labels")
    return _joints_from_sums(_region_sums(labels, get_joint_groups(groups)))


def _joints_from_sums(sums: Tensor) -> tuple[Tensor, Tensor]:
    count = sums[..., :1]
    # Exact integers below 2**53 and a quotient at least 1/count away from the next integer, so the
    # float floor is the integer truncation of the release.
    joints = torch.floor(sums[..., 1:] / count.clamp(min=1)).long()
    return joints, count[..., 0] > 0


def _peak(sigma: float) -> float:
    return 4.0 / (sigma * math.sqrt(2.0 * math.pi))


def _log_cut(dtype: torch.dtype) -> float:
    """log of the value below which a Gaussian factor is set to 0: 10 sqrt(tiny) (1e-18 in float32)."""
    return math.log(10.0 * math.sqrt(torch.finfo(dtype).tiny))


def _gaussian_of(e: Tensor, dtype: torch.dtype) -> Tensor:
    """exp(e) for exponents ``e`` <= 0, with the far tail (``e`` below ``_log_cut``) set to exactly 0.

    exp() of large negatives takes a slow path, and products of two tiny factors would be subnormal
    (slow on x86).
    """
    lo = _log_cut(dtype)
    drop = e < lo
    return torch.exp(e.clamp_(min=lo)).masked_fill_(drop, 0.0)


@lru_cache(maxsize=64)
def _gaussian_table(length: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """exp(-d^2 / (2 sigma^2)) for the integer distances d = 0, 1, ... (same arithmetic as the formula).

    At least ``length`` entries, and long enough that the last one is exactly 0 (below the cut), so
    a distance clamped to the last index reads the right value.
    """
    cut_distance = math.sqrt(-2.0 * sigma * sigma * _log_cut(dtype))
    d = torch.arange(max(length, int(cut_distance) + 3), device=device, dtype=dtype)
    table = _gaussian_of(d.square_().mul_(-0.5 / (sigma * sigma)), dtype)
    assert table[-1].item() == 0.0, "the Gaussian table must end below the cut"
    return table


def _gaussians_xy(joints: Tensor, h: int, w: int, sigma: float, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """1-D Gaussians exp(-(t - c)^2 / (2 sigma^2)) of the x and y of ``joints`` (N, J, 2): (N,J,w), (N,J,h).

    Integer joints (the hard joints of the release) read a cached table of the Gaussian at integer
    distances: one gather instead of the element-wise exp, bit-identical to it.
    """
    length = max(h, w)
    if not joints.is_floating_point():
        table = _gaussian_table(length, float(sigma), dtype, joints.device)
        t = torch.arange(length, device=joints.device)
        dist = (t - joints.unsqueeze(-1)).abs_().clamp_(max=len(table) - 1)  # (N, J, 2, L)
        g = table.index_select(0, dist.view(-1)).view(dist.shape)
    else:
        t = torch.arange(length, device=joints.device, dtype=dtype)
        g = _gaussian_of((t - joints.to(dtype).unsqueeze(-1)).square_().mul_(-0.5 / (sigma * sigma)), dtype)  # (N, J, 2, L)
    return g[..., 0, :w], g[..., 1, :h]


def joint_heatmaps(
    joints: Tensor,
    present: Tensor,
    size: tuple[int, int],
    sigma: float = 1.0,
    dtype: torch.dtype = torch.float32,
    out: Tensor | None = None,
) -> Tensor:
    """Gaussian heatmaps (N, J, h, w) of ``joints`` (N, J, 2) as (x, y) on an ``size = (h, w)`` grid.

    ``h(x, y) = 4 / (sigma sqrt(2 pi)) * exp(-((x - cx)^2 + (y - cy)^2) / (2 sigma^2))``, and an
    all-zero map where ``present`` is False. ``joints`` may be fractional (soft joints). Values below
    1e-18 of the peak are exactly 0, so a map is non-zero only in a window around its joint (19 x 19
    cells for sigma 1). On large CPU grids only those windows are written, into zero-initialised
    memory that the OS supplies lazily. ``out``: an (N, J, h, w) tensor to overwrite instead.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if joints.dim() != 3 or joints.shape[-1] != 2 or present.shape != joints.shape[:2]:
        raise ValueError(f"joints must be (N, J, 2) and present (N, J), got {tuple(joints.shape)} and {tuple(present.shape)}")
    h, w = int(size[0]), int(size[1])
    gx, gy = _gaussians_xy(joints, h, w, sigma, dtype)
    gy = gy * (present.to(dtype) * _peak(sigma)).unsqueeze(-1)  # amplitude folded into the small factor
    if out is not None:
        if tuple(out.shape) != (*joints.shape[:2], h, w) or out.dtype != dtype:
            raise ValueError(f"out must be a {dtype} tensor of shape {(*joints.shape[:2], h, w)}, got {out.dtype} {tuple(out.shape)}")
        return torch.mul(gy.unsqueeze(-1), gx.unsqueeze(-2), out=out)
    windowed = _windowed_heatmaps(gx, gy)
    return windowed if windowed is not None else gy.unsqueeze(-1) * gx.unsqueeze(-2)


_WINDOW_MIN_ELEMENTS = 1 << 20  # below ~4 MB the dense outer product is faster than indexing
_NUMPY_DTYPES = {torch.float16: "float16", torch.float32: "float32", torch.float64: "float64"}


def _support(g: Tensor) -> tuple[Tensor, Tensor]:
    """First and last index of the non-zero entries of each 1-D Gaussian in ``g`` (..., L); (0, 0) if none."""
    nonzero = g != 0
    as_int = nonzero.to(torch.uint8)  # argmax of the first 1 (argmax takes no bool)
    first = as_int.argmax(-1)
    last = (g.shape[-1] - 1) - as_int.flip(-1).argmax(-1)
    return first, torch.where(nonzero.any(-1), last, first)


def _windowed_heatmaps(gx: Tensor, gy: Tensor) -> Tensor | None:
    """The outer products ``gy x gx`` written only inside each map's non-zero window.

    None (use the dense product) off the CPU, under autograd, for small results and for windows that
    cover much of the grid. The result is backed by ``numpy.zeros`` (calloc): untouched pages are
    never written, which on a 384 x 384 grid saves most of the time of a dense write.
    """
    n, j, w = gx.shape
    h = gy.shape[-1]
    if (gx.device.type != "cpu" or gx.dtype not in _NUMPY_DTYPES or n * j * h * w < _WINDOW_MIN_ELEMENTS
            or (torch.is_grad_enabled() and (gx.requires_grad or gy.requires_grad))):
        return None
    x0, x1 = _support(gx)
    y0, y1 = _support(gy)
    win_w = int((x1 - x0).max()) + 1
    win_h = int((y1 - y0).max()) + 1
    if 8 * win_w * win_h > h * w:
        return None
    # Shift windows that would cross the far border back inside; they still cover the support.
    cols = x0.clamp(max=w - win_w).unsqueeze(-1) + torch.arange(win_w)  # (N, J, win_w)
    rows = y0.clamp(max=h - win_h).unsqueeze(-1) + torch.arange(win_h)  # (N, J, win_h)
    values = gy.gather(-1, rows).unsqueeze(-1) * gx.gather(-1, cols).unsqueeze(-2)  # (N, J, win_h, win_w)
    plane = (torch.arange(n * j) * (h * w)).view(n, j, 1, 1)
    index = plane + rows.unsqueeze(-1) * w + cols.unsqueeze(-2)
    result = torch.from_numpy(np.zeros((n, j, h, w), dtype=_NUMPY_DTYPES[gx.dtype]))
    result.view(-1).index_put_((index.view(-1),), values.reshape(-1))
    return result


def joint_error(
    pred_labels: Tensor,
    gt_labels: Tensor,
    groups: str | Sequence[Sequence[int]] = LIP_JOINT_GROUPS,
    sigma: float = 1.0,
) -> Tensor:
    """Per-image joint error (N,) float32: ``0.05 * 1/2 * sum over joints and cells (H_pred - H_gt)^2``.

    Both label maps are (N, h, w) on the same grid (the logits' grid in the loss). Computed without
    building heatmaps: with ``H = a * gy(y) * gx(x)``, ``sum_cells H_p H_q = a_p a_q (gx_p . gx_q)(gy_p . gy_q)``.
    """
    _check_labels(pred_labels, "pred_labels")
    _check_labels(gt_labels, "gt_labels")
    if pred_labels.shape != gt_labels.shape:
        raise ValueError(f"pred_labels {tuple(pred_labels.shape)} and gt_labels {tuple(gt_labels.shape)} differ in shape")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    n, h, w = gt_labels.shape
    resolved = get_joint_groups(groups)
    if gt_labels.numel() <= _ONE_PASS_MAX_PIXELS:  # one pass over both: fewer small ops
        sums = _region_sums(torch.cat((pred_labels, gt_labels.to(pred_labels.dtype))), resolved)
    else:  # two passes: no copy of two large label batches
        sums = torch.cat((_region_sums(pred_labels, resolved), _region_sums(gt_labels, resolved)))
    joints, present = _joints_from_sums(sums)
    gx, gy = _gaussians_xy(joints, h, w, sigma, torch.float64)  # (2N, J, w), (2N, J, h)
    a = present.double()  # amplitude / peak (0 when absent)
    dots = torch.stack(
        ((gx[:n] * gx[:n]).sum(-1) * (gy[:n] * gy[:n]).sum(-1) * a[:n],
         (gx[n:] * gx[n:]).sum(-1) * (gy[n:] * gy[n:]).sum(-1) * a[n:],
         (gx[:n] * gx[n:]).sum(-1) * (gy[:n] * gy[n:]).sum(-1) * (-2.0 * a[:n] * a[n:])),
    ).sum(0)  # sum over cells of (H_pred - H_gt)^2 / peak^2, per joint
    return (JOINT_ERROR_SCALE * _peak(sigma) ** 2 * dots.clamp(min=0.0).sum(-1)).to(torch.float32)


def grid_positions(src: int, dst: int) -> Tensor:
    """Source index of each of ``dst`` grid cells along an axis of ``src`` pixels (align-corners rule).

    Cell i takes pixel ``round(i * (src - 1) / (dst - 1))`` (halves rounded up), the release's
    ``label_shrink8`` Interp layer: for a 321 crop and its 41x41 logits that is exactly pixels
    0, 8, ..., 320, where the network's cell i is centred. One cell takes pixel 0.
    """
    if dst < 1 or src < 1:
        raise ValueError(f"grid_positions: sizes must be >= 1, got src={src}, dst={dst}")
    if dst == 1:
        return torch.zeros(1, dtype=torch.long)
    # Integer arithmetic, so 8i for 321 -> 41 is exact: floor((2 i (src-1) + (dst-1)) / (2 (dst-1))).
    i = torch.arange(dst, dtype=torch.long)
    return (2 * i * (src - 1) + (dst - 1)) // (2 * (dst - 1))


def labels_on_grid(target: Tensor, size: tuple[int, int]) -> Tensor:
    """``target`` (..., H, W) of class ids sampled onto the logits' grid ``size`` (see :func:`grid_positions`).

    Used everywhere a label map meets the network's output grid: SSL joints, CE on the grid
    (``ce_on="grid"``) and evaluation's joint error.
    """
    H, W = target.shape[-2:]
    h, w = int(size[0]), int(size[1])
    if (h, w) == (H, W):
        return target
    rows = grid_positions(H, h).to(target.device)
    cols = grid_positions(W, w).to(target.device)
    return target.index_select(-2, rows).index_select(-1, cols)


class LossOutput(NamedTuple):
    """``loss`` to backpropagate; ``ce`` and ``joint_error`` detached batch means for logging."""

    loss: Tensor
    ce: Tensor
    joint_error: Tensor


MODES = ("none", "paper", "released", "soft")
WEIGHTINGS = ("image", "normalized", "batch_mean", "shuffled")  # per-image weights of "paper"/"released"
CE_ON = ("crop", "grid")  # where the parsing cross-entropy is computed (see StructureSensitiveLoss)


class StructureSensitiveLoss(nn.Module):
    """Cross-entropy with the structure-sensitive term of LIP (see the module docstring for modes).

    ``loss_fn(logits, target)``: ``logits`` (N, K, h, w) at the output stride, ``target`` (N, H, W)
    int64 at full resolution. Joints always use the target sampled onto the logits' grid
    (:func:`labels_on_grid`, the release's align-corners rule) and the argmax of the logits there.
    ``ce_on`` says where the cross-entropy (ignoring ``ignore_index``) is computed: ``"crop"``
    (default) on logits bilinearly upsampled to (H, W) (align_corners=False), or ``"grid"`` on the
    logits' own grid against the sampled labels, as the release does (its ``label_shrink8``). A dict ``{"out": fused, "scales": (...)}`` is accepted too and handled by
    :func:`multi_output_loss` (one loss per output, summed, as the release's four loss layers).

    ``weighting`` (modes "paper"/"released"): the per-image weights, one of :data:`WEIGHTINGS` (see
    the module docstring); modes "none" and "soft" weight no image and ignore it (so one set of keyword
    arguments serves every mode, as in ``lipkit.experiments.loss_gradients``; ``TrainConfig.validate``
    refuses such a config). ``normalize_weights=True`` is the older spelling of ``weighting="normalized"`` (with any
    other weighting than "image" or "normalized" it is refused). ``track_joint_error=False`` skips the
    joint error in mode "none" (then ``joint_error`` is NaN).
    """

    def __init__(
        self,
        mode: str = "none",
        groups: str | Sequence[Sequence[int]] = LIP_JOINT_GROUPS,
        sigma: float = 1.0,
        soft_weight: float = 1.0,
        ignore_index: int = IGNORE_INDEX,
        normalize_weights: bool = False,
        track_joint_error: bool = True,
        ce_on: str = "crop",
        weighting: str = "image",
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if ce_on not in CE_ON:
            raise ValueError(f"ce_on must be one of {CE_ON}, got {ce_on!r}")
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if soft_weight < 0:
            raise ValueError(f"soft_weight must be >= 0, got {soft_weight}")
        weighting = resolve_weighting(weighting, normalize_weights)
        self.mode = mode
        self.groups = get_joint_groups(groups)
        self.sigma = float(sigma)
        self.soft_weight = float(soft_weight)
        self.ignore_index = int(ignore_index)
        self.weighting = weighting
        self.normalize_weights = weighting == "normalized"  # the older attribute, kept for readers of it
        self.track_joint_error = bool(track_joint_error)
        self.ce_on = ce_on
        self._max_id = max(i for g in self.groups for i in g)

    def extra_repr(self) -> str:
        return (
            f"mode={self.mode!r}, joints={len(self.groups)}, sigma={self.sigma}, soft_weight={self.soft_weight}, "
            f"weighting={self.weighting!r}, ce_on={self.ce_on!r}"
        )

    def ce_target(self, target: Tensor, grid: tuple[int, int]) -> Tensor:
        """The labels the cross-entropy compares with: ``target`` itself, or sampled onto ``grid``."""
        return labels_on_grid(target, grid) if self.ce_on == "grid" else target

    def forward(self, logits: Tensor | Mapping[str, object], target: Tensor) -> LossOutput:
        if isinstance(logits, Mapping):
            return multi_output_loss(self, logits, target)
        if not isinstance(logits, Tensor) or logits.dim() != 4:
            raise ValueError(f"logits must be an (N, K, h, w) tensor, got {getattr(logits, 'shape', type(logits))}")
        if not isinstance(target, Tensor) or target.dim() != 3 or target.shape[0] != logits.shape[0]:
            raise ValueError(
                f"target must be an (N, H, W) tensor with N = {logits.shape[0]} matching logits, "
                f"got {getattr(target, 'shape', type(target))}"
            )
        logits = logits.float()  # bf16 autocast outputs: the loss is computed in float32
        n, k, h, w = logits.shape
        if self._max_id >= k:
            raise ValueError(f"groups use class id {self._max_id} but logits have only {k} classes; pass matching groups")
        target = target.long()
        small = labels_on_grid(target, (h, w))
        ce_target = small if self.ce_on == "grid" else target
        big = ce_target.shape[-2:]
        up = logits if (h, w) == tuple(big) else F.interpolate(logits, size=big, mode="bilinear", align_corners=False)
        ce_pix = F.cross_entropy(up, ce_target, ignore_index=self.ignore_index, reduction="none")
        n_valid = (ce_target != self.ignore_index).sum().clamp(min=1)
        ce_img = ce_pix.sum(dim=(1, 2))  # (N,) summed CE of each image
        ce = ce_img.sum() / n_valid

        need_joints = self.mode != "none" or self.track_joint_error
        jerr = None
        if need_joints:
            with torch.no_grad():
                jerr = joint_error(logits.argmax(dim=1), small, self.groups, self.sigma)

        if self.mode == "none":
            loss = ce
        elif self.mode in ("paper", "released"):
            weights = image_weights(jerr.to(ce_img.dtype), self.weighting)
            weighted = (ce_img * weights).sum() / n_valid
            # "released": value of the weighted loss, gradient of plain CE (ce - ce.detach() is exactly 0).
            loss = weighted if self.mode == "paper" else weighted.detach() + (ce - ce.detach())
        else:
            loss = ce + self.soft_weight * soft_joint_distance(logits, small, self.groups, self.ignore_index)
        je = jerr.mean() if jerr is not None else torch.full((), math.nan, device=logits.device)
        return LossOutput(loss, ce.detach(), je.detach())


def resolve_weighting(weighting: str, normalize_weights: bool = False) -> str:
    """The weighting meant by ``weighting`` and the older flag ``normalize_weights`` (True = "normalized").

    ValueError for an unknown weighting or a flag set against another weighting than "image"/"normalized".
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if normalize_weights:
        if weighting not in ("image", "normalized"):
            raise ValueError(f"normalize_weights=True means weighting 'normalized', but weighting={weighting!r}: "
                             "set only weighting")
        return "normalized"
    return weighting


def image_weights(joint_errors: Tensor, weighting: str = "image") -> Tensor:
    """The per-image weights (N,) of modes "paper"/"released" from the batch's joint errors (module docstring)."""
    if weighting == "image":
        return joint_errors
    mean = joint_errors.mean()
    if weighting == "normalized":
        return joint_errors / mean if mean > 0 else torch.zeros_like(joint_errors)
    if weighting == "batch_mean":
        return mean.expand_as(joint_errors)
    if weighting == "shuffled":
        return torch.roll(joint_errors, 1)
    raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")


def soft_joint_distance(
    logits: Tensor,
    gt_small: Tensor,
    groups: str | Sequence[Sequence[int]] = LIP_JOINT_GROUPS,
    ignore_index: int = IGNORE_INDEX,
    eps: float = 1e-6,
) -> Tensor:
    """Differentiable joint term of mode "soft" (scalar): see the module docstring.

    ``logits`` (N, K, h, w); ``gt_small`` (N, h, w) ground truth on the same grid.
    """
    groups = get_joint_groups(groups)
    n, k, h, w = logits.shape
    dev, dt = logits.device, torch.float32
    lut = _group_lut(groups, dev)[:k]
    member = F.one_hot(lut, len(groups) + 1)[:, : len(groups)].t().to(dt)  # (J, K)
    valid = (gt_small != ignore_index).to(dt).unsqueeze(1)  # (N, 1, h, w)
    probs = torch.softmax(logits.to(dt), dim=1)
    mass = torch.einsum("jk,nkhw->njhw", member, probs) * valid  # (N, J, h, w)
    total = mass.sum(dim=(2, 3)) + eps
    xs = torch.arange(w, device=dev, dtype=dt)
    ys = torch.arange(h, device=dev, dtype=dt)
    px = (mass.sum(2) * xs).sum(-1) / total
    py = (mass.sum(3) * ys).sum(-1) / total
    with torch.no_grad():
        sums = _region_sums(gt_small, groups)
        present = sums[..., 0] > 0
        centres = (sums[..., 1:] / sums[..., :1].clamp(min=1)).to(dt)  # exact means, not truncated
        gx, gy = centres[..., 0], centres[..., 1]
    d = ((px - gx) / w) ** 2 + ((py - gy) / h) ** 2
    return (d * present).sum() / present.sum().clamp(min=1)


def multi_output_loss(loss_fn: nn.Module, outputs: Tensor | Mapping[str, object], target: Tensor) -> LossOutput:
    """Sum ``loss_fn`` over a model's fused output and each per-scale output (the release's 4 losses).

    ``outputs`` is a logits tensor or a dict with ``"out"`` and optionally ``"scales"``. Each output
    gets its own loss (its own predicted joints), as each loss layer of the release does. Returned
    ``loss`` and ``ce`` (float64) are sums over outputs; ``joint_error`` is that of the fused output.
    """
    if isinstance(outputs, Tensor):
        return loss_fn(outputs, target)
    if not isinstance(outputs, Mapping) or "out" not in outputs:
        raise ValueError(f"outputs must be a logits tensor or a dict with key 'out', got {type(outputs).__name__}")
    parts = [loss_fn(outputs["out"], target)]
    parts += [loss_fn(s, target) for s in outputs.get("scales", ()) or ()]
    loss, ce = parts[0].loss, parts[0].ce.double()
    for p in parts[1:]:  # summed in output order (a fixed order keeps logged values bit-exact)
        loss, ce = loss + p.loss, ce + p.ce.double()
    return LossOutput(loss=loss, ce=ce, joint_error=parts[0].joint_error)


__all__ = [
    "LIP_JOINT_GROUPS", "LIP_JOINT_NAMES", "LIP_JOINT_GROUPS_NO_SHOES", "LIP_JOINT_NAMES_NO_SHOES",
    "ATR_JOINT_GROUPS", "PASCAL_JOINT_GROUPS", "PASCAL_JOINT_NAMES", "JOINT_GROUPS", "LABEL_SET_JOINTS", "JOINT_ERROR_SCALE", "MODES", "WEIGHTINGS",
    "get_joint_groups", "joint_groups_for", "joint_names", "parsing_to_joints", "joint_heatmaps", "joint_error",
    "CE_ON", "image_weights", "resolve_weighting", "grid_positions", "labels_on_grid", "soft_joint_distance", "LossOutput", "StructureSensitiveLoss", "multi_output_loss",
]
