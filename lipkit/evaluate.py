"""Inference and scoring by the LIP protocol: logits at the original size, flip and multi-scale tests.

This module owns prediction (``predict_logits``, ``predict_labels``) and scoring of a model on a
dataset (``accumulate`` -> ``summarise``, or ``evaluate`` for both); the command lines that use them
live in ``lipkit.cli``, the counting in ``lipkit.metrics``. ``add_image`` is the one per-image scoring
step: ``accumulate`` feeds it a model's argmax, ``lipkit.score`` a folder of prediction PNGs.

``predict_logits`` turns a normalised image into logits at the image's original resolution: each scale's
input is a bilinear resize of the image, each output's logits are bilinearly resized back
(``align_corners=False``) and averaged. The flip test adds the logits of the mirrored image,
mirrored back and with the left/right channels swapped (``label_set.flip_permutation``), so a
left arm seen in the mirror votes for "left arm" in the original (the flip test of LIP_SSL, CE2P and SCHP).

``evaluate`` scores a model on a dataset one image at a time at its original size (LIP images
vary in size): one confusion matrix over the split (ground-truth 255 excluded), scores under both
absent-class rules, per-class IoU, left/right confusion, and the mean joint error of predictions
against the ground truth. The joint error is computed on a fixed ``joint_grid`` x ``joint_grid``
grid (default 41, the released grid of a 321 crop at stride 8) onto which both label maps are
sampled with the release's align-corners rule (``lipkit.ssl.labels_on_grid``), so values are comparable across image sizes and models of any output stride.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lipkit import ssl
from lipkit.data.transforms import normalized_tensor
from lipkit.labels import LIP, LabelSet, get_label_set
from lipkit.metrics import ConfusionMatrix, left_right_confusion


def model_logits(output: Any) -> torch.Tensor:
    """The fused logits of a model's output (a dict with ``"out"``, or a tensor)."""
    if isinstance(output, dict):
        return output["out"]
    if isinstance(output, torch.Tensor):
        return output
    raise TypeError(f"model returned {type(output).__name__}; expected a tensor or a dict with key 'out'")


def check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    scales = tuple(float(s) for s in scales)
    if not scales or any(not s > 0 for s in scales):
        raise ValueError(f"scales must be a non-empty list of positive numbers, got {scales!r}")
    return scales


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module,
    image: torch.Tensor,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    label_set: LabelSet = LIP,
) -> torch.Tensor:
    """Logits ``(N, K, H, W)`` (or ``(K, H, W)`` for one image) at the input's own resolution.

    ``image`` is a normalised float tensor ``(3, H, W)`` or ``(N, 3, H, W)`` on the model's device.
    Multi-scale: the average over ``scales`` of the logits of the bilinearly rescaled input, each
    resized back to ``(H, W)``. ``flip=True`` also averages the mirrored input's logits, mirrored
    back with the mirror classes swapped. The model is used as given (call ``model.eval()``).
    """
    single = image.dim() == 3
    if single:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (3,H,W) or (N,3,H,W), got shape {tuple(image.shape)}")
    scales = check_scales(scales)
    height, width = image.shape[-2:]
    perm = torch.as_tensor(label_set.flip_permutation, device=image.device)
    total: torch.Tensor | None = None
    count = 0
    for s in scales:
        size = (max(1, round(height * s)), max(1, round(width * s)))
        x = image if size == (height, width) else F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        inputs = [x, x.flip(-1)] if flip else [x]
        for k, xi in enumerate(inputs):
            logits = model_logits(model(xi)).float()
            if logits.shape[1] != label_set.num_classes:
                raise ValueError(
                    f"model gives {logits.shape[1]} channels but label set {label_set.name!r} has {label_set.num_classes} classes"
                )
            if k == 1:  # mirrored input: mirror back, then channel c takes the mirror class's score
                logits = logits.flip(-1).index_select(1, perm)
            if logits.shape[-2:] != (height, width):
                logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
            total = logits if total is None else total + logits
            count += 1
    assert total is not None
    out = total / count
    return out[0] if single else out


def _image_tensor(image: Any) -> torch.Tensor:
    """A normalised (3,H,W) float tensor from a uint8 (H,W,3) array or an already normalised tensor."""
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image tensor must be (3,H,W), got {tuple(image.shape)}")
        return image.float()
    return normalized_tensor(image)


@torch.no_grad()
def predict_labels(model: torch.nn.Module, image: Any, scales: Sequence[float] = (1.0,), flip: bool = False,
                   label_set: LabelSet = LIP) -> np.ndarray:
    """The argmax label map (uint8, the image's size) of ``predict_logits`` for one image.

    ``image``: a uint8 (H, W, 3) array or a normalised (3, H, W) tensor. Puts ``model`` in eval mode.
    """
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    logits = predict_logits(model, _image_tensor(image).to(device), scales=scales, flip=flip, label_set=label_set)
    return logits.argmax(0).to(torch.uint8).cpu().numpy()


def _label_tensor(label: Any) -> torch.Tensor:
    if isinstance(label, torch.Tensor):
        return label.long()
    return torch.tensor(np.asarray(label)).long()


@dataclass
class EvalState:
    """What an evaluation accumulates; mergeable across shards (DDP ranks) before scoring."""

    confusion: ConfusionMatrix
    joint_error_sum: float = 0.0
    num_images: int = 0
    keep_images: bool = False  # also record each image's own confusion matrix and joint error (below)
    image_ids: list = field(default_factory=list)
    image_confusions: list = field(default_factory=list)  # (K, K) int64 each; they sum to ``confusion``
    image_joint_errors: list = field(default_factory=list)  # float each, or None without joint groups

    def all_reduce(self) -> None:
        """Sum the state over all ranks of the default process group (in place)."""
        import torch.distributed as dist

        self.confusion.all_reduce()
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
        extra = torch.tensor([self.joint_error_sum, float(self.num_images)], dtype=torch.float64, device=device)
        dist.all_reduce(extra)
        self.joint_error_sum = float(extra[0])
        self.num_images = int(round(float(extra[1])))


def joint_groups_or_none(label_set: LabelSet) -> ssl.Groups | None:
    """The label set's joint groups (``lipkit.ssl.joint_groups_for``), None for a set without any."""
    return ssl.joint_groups_for(label_set) if label_set.name in ssl.LABEL_SET_JOINTS else None


def new_state(label_set: LabelSet = LIP, keep_images: bool = False) -> EvalState:
    """An empty :class:`EvalState` for ``label_set`` (its classes and ignore value).

    ``keep_images`` records every image's confusion matrix and joint error too: what a bootstrap over
    images, a random subset or a per-view breakdown needs without scoring the images again.
    """
    return EvalState(ConfusionMatrix(label_set.num_classes, label_set.ignore_index), keep_images=keep_images)


def _on_joint_grid(labels: Any, grid: int) -> torch.Tensor:
    """A (H, W) label map sampled onto the ``grid`` x ``grid`` joint grid (``ssl.labels_on_grid``'s cells).

    Numpy maps are sampled before becoming tensors: no full-size copy, and no multi-threaded torch op
    on a full-size map while PNG-decoding threads keep the cores busy.
    """
    if isinstance(labels, torch.Tensor):
        return ssl.labels_on_grid(labels, (grid, grid))
    arr = np.asarray(labels)
    rows, cols = ssl.grid_positions(arr.shape[0], grid).numpy(), ssl.grid_positions(arr.shape[1], grid).numpy()
    return torch.from_numpy(np.ascontiguousarray(arr[np.ix_(rows, cols)]))


def add_image(state: EvalState, pred: Any, gt: Any, groups: ssl.Groups | None, joint_grid: int = 41,
              joint_sigma: float = 1.0, name: Any = None) -> float | None:
    """Add one (prediction, ground truth) pair of the same size to ``state``: the one scoring step.

    Both ``evaluate`` (a model's argmax) and ``lipkit.score`` (a folder of PNGs) score through this:
    the confusion-matrix update (ground-truth 255 excluded) and, with ``groups``, the image's joint
    error on a ``joint_grid`` square grid (both maps sampled with ``ssl.labels_on_grid``). ``pred`` and
    ``gt`` are (H, W) integer tensors or arrays. Returns the image's joint error (None without groups).
    """
    before = state.confusion.matrix.copy() if state.keep_images else None
    try:
        state.confusion.update(pred, gt)
    except ValueError as exc:
        raise ValueError(f"item {name}: {exc}") from None
    err = None
    if groups is not None:
        p, g = _on_joint_grid(pred, joint_grid), _on_joint_grid(gt, joint_grid)
        g = g.to(device=p.device, dtype=p.dtype)  # no-op for evaluate's (long, long) on one device
        err = float(ssl.joint_error(p[None], g[None], groups, joint_sigma).sum())
        state.joint_error_sum += err
    state.num_images += 1
    if before is not None:
        state.image_ids.append(name)
        state.image_confusions.append(state.confusion.matrix - before)
        state.image_joint_errors.append(err)
    return err


@torch.no_grad()
def accumulate(
    model: torch.nn.Module,
    dataset: Sequence[dict],
    indices: Sequence[int],
    label_set: LabelSet = LIP,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    device: torch.device | str = "cpu",
    joint_grid: int = 41,
    joint_sigma: float = 1.0,
    progress: bool = True,
    autocast_bf16: bool = False,
    keep_images: bool = False,
) -> EvalState:
    """Run ``predict_logits`` on ``dataset[i]`` for ``i in indices`` and add each argmax with :func:`add_image`.

    ``keep_images``: the state also holds each image's confusion matrix and joint error (:func:`new_state`).
    """
    device = torch.device(device)
    groups = joint_groups_or_none(label_set)
    state = new_state(label_set, keep_images)
    was_training = model.training
    model.eval()
    try:
        for i in tqdm(indices, desc="evaluate", disable=not progress, leave=False):
            item = dataset[i]
            if "label" not in item:
                raise ValueError(f"dataset item {i} has no 'label': evaluate needs a split with ground truth (not 'test')")
            x = _image_tensor(item["image"]).to(device)
            gt = _label_tensor(item["label"]).to(device)
            if gt.shape != x.shape[-2:]:
                raise ValueError(f"item {item.get('id', i)}: label {tuple(gt.shape)} and image {tuple(x.shape[-2:])} differ in size")
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_bf16 and device.type == "cuda"):
                logits = predict_logits(model, x, scales=scales, flip=flip, label_set=label_set)
            add_image(state, logits.argmax(0), gt, groups, joint_grid, joint_sigma, name=item.get("id", i))
    finally:
        model.train(was_training)
    return state


def summarise(state: EvalState, label_set: LabelSet = LIP) -> dict:
    """Scores of an accumulated evaluation as a JSON-able dict.

    Top-level accuracy/IoU keys follow the LIP_SSL rule (absent classes excluded, ``nan``);
    ``absent_zero`` holds the same scores with absent classes counted as 0 (SCHP/CE2P/HRNet).
    """
    cm = state.confusion
    nan_scores = cm.compute(absent="nan")
    zero_scores = cm.compute(absent="zero")

    def scalars(s: Any) -> dict:
        return {
            "pixel_accuracy": float(s.pixel_accuracy),
            "mean_accuracy": float(s.mean_accuracy),
            "mean_iou": float(s.mean_iou),
            "frequency_weighted_iou": float(s.frequency_weighted_iou),
        }

    def none_if_nan(v: float) -> float | None:
        return None if not np.isfinite(v) else float(v)

    result: dict[str, Any] = scalars(nan_scores)
    result["absent_zero"] = scalars(zero_scores)
    result["iou"] = {c: none_if_nan(v) for c, v in zip(label_set.classes, np.asarray(nan_scores.iou))}
    result["accuracy"] = {c: none_if_nan(v) for c, v in zip(label_set.classes, np.asarray(nan_scores.accuracy))}
    result["left_right_confusion"] = {k: none_if_nan(v) for k, v in left_right_confusion(cm.matrix, label_set).items()}
    result["joint_error"] = state.joint_error_sum / state.num_images if state.num_images else None
    result["num_images"] = state.num_images
    result["confusion_matrix"] = cm.matrix.tolist()
    return result


def evaluate(
    model: torch.nn.Module,
    dataset: Sequence[dict],
    label_set: LabelSet | str = LIP,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    device: torch.device | str | None = None,
    max_images: int | None = None,
    progress: bool = True,
    joint_grid: int = 41,
    joint_sigma: float = 1.0,
) -> dict:
    """Score ``model`` on ``dataset`` (items with ``image`` and ``label``) at original resolution.

    Returns ``summarise``'s dict: pixel/mean accuracy, mIoU, fwIoU (absent classes excluded) and
    ``absent_zero`` (absent counted 0), per-class ``iou``, ``left_right_confusion``, mean
    ``joint_error`` on a ``joint_grid`` square grid, ``num_images`` and the confusion matrix.
    ``max_images`` scores the first N images only.
    """
    label_set = get_label_set(label_set)
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    n = len(dataset) if max_images is None else min(len(dataset), int(max_images))
    state = accumulate(
        model, dataset, range(n), label_set=label_set, scales=scales, flip=flip, device=device,
        joint_grid=joint_grid, joint_sigma=joint_sigma, progress=progress,
    )
    return summarise(state, label_set)


__all__ = ["EvalState", "accumulate", "add_image", "check_scales", "evaluate", "joint_groups_or_none", "model_logits",
           "new_state", "predict_labels", "predict_logits", "summarise"]
