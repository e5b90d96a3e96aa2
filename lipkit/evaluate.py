"""Inference and scoring by the LIP protocol: logits at the original size, flip and multi-scale tests.

``predict`` turns a normalised image into logits at the image's original resolution: each scale's
input is a bilinear resize of the image, each output's logits are bilinearly resized back
(``align_corners=False``) and averaged. The flip test adds the logits of the mirrored image,
mirrored back and with the left/right channels swapped (``label_set.flip_permutation``), so a
left arm seen in the mirror votes for "left arm" in the original (lip_facts.md section 5).

``evaluate`` scores a model on a dataset one image at a time at its original size (LIP images
vary in size): one confusion matrix over the split (ground-truth 255 excluded), scores under both
absent-class rules, per-class IoU, left/right confusion, and the mean joint error of predictions
against the ground truth. The joint error is computed on a fixed ``joint_grid`` x ``joint_grid``
grid (default 41, the released grid of a 321 crop at stride 8) onto which both label maps are
sampled with the release's align-corners rule (``lipkit.ssl.labels_on_grid``), so values are comparable across image sizes and models of any output stride.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lipkit.labels import LIP, PASCAL_PERSON_PART, LabelSet, get_label_set

# ImageNet statistics (kept here too so evaluate works on raw uint8 items without the data module).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def model_logits(output: Any) -> torch.Tensor:
    """The fused logits of a model's output (a dict with ``"out"``, or a tensor)."""
    if isinstance(output, dict):
        return output["out"]
    if isinstance(output, torch.Tensor):
        return output
    raise TypeError(f"model returned {type(output).__name__}; expected a tensor or a dict with key 'out'")


def _check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    scales = tuple(float(s) for s in scales)
    if not scales or any(not s > 0 for s in scales):
        raise ValueError(f"scales must be a non-empty list of positive numbers, got {scales!r}")
    return scales


@torch.no_grad()
def predict(
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
    scales = _check_scales(scales)
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


def joint_groups_for(label_set: LabelSet) -> tuple | None:
    """The SSL joint groups for a label set (LIP ids for LIP/CIHP, one per part for PASCAL), or None."""
    from lipkit import ssl

    if label_set.name in ("lip", "cihp"):
        return ssl.LIP_JOINT_GROUPS
    if label_set.name == PASCAL_PERSON_PART.name:
        return ssl.PASCAL_JOINT_GROUPS
    return None


def _image_tensor(image: Any) -> torch.Tensor:
    """A normalised (3,H,W) float tensor from a uint8 (H,W,3) array or an already normalised tensor."""
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image tensor must be (3,H,W), got {tuple(image.shape)}")
        return image.float()
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image array must be uint8 (H,W,3), got {arr.dtype} {arr.shape}")
    x = torch.tensor(arr).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


def _label_tensor(label: Any) -> torch.Tensor:
    if isinstance(label, torch.Tensor):
        return label.long()
    return torch.tensor(np.asarray(label)).long()


@dataclass
class EvalState:
    """What an evaluation accumulates; mergeable across shards (DDP ranks) before scoring."""

    num_classes: int
    ignore_index: int = 255
    matrix: torch.Tensor = field(default=None)  # type: ignore[assignment]  (K,K) int64, rows = GT
    joint_error_sum: float = 0.0
    num_images: int = 0

    def __post_init__(self) -> None:
        if self.matrix is None:
            self.matrix = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)

    def all_reduce(self) -> None:
        """Sum the state over all ranks of the default process group (in place)."""
        import torch.distributed as dist

        backend = dist.get_backend()
        device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
        m = self.matrix.to(device)
        extra = torch.tensor([self.joint_error_sum, float(self.num_images)], dtype=torch.float64, device=device)
        dist.all_reduce(m)
        dist.all_reduce(extra)
        self.matrix = m.cpu()
        self.joint_error_sum = float(extra[0])
        self.num_images = int(round(float(extra[1])))


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
) -> EvalState:
    """Run ``predict`` on ``dataset[i]`` for ``i in indices`` and accumulate the confusion matrix."""
    from lipkit import ssl

    device = torch.device(device)
    groups = joint_groups_for(label_set)
    k = label_set.num_classes
    state = EvalState(k, label_set.ignore_index)
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
                logits = predict(model, x, scales=scales, flip=flip, label_set=label_set)
            pred = logits.argmax(0)
            valid = gt != label_set.ignore_index
            if bool(((gt >= k) & valid).any()):
                raise ValueError(f"item {item.get('id', i)}: label has ids >= {k} other than {label_set.ignore_index}")
            idx = gt[valid] * k + pred[valid]
            state.matrix += torch.bincount(idx, minlength=k * k).view(k, k).cpu()
            if groups is not None:
                small = ssl.labels_on_grid(torch.stack([pred, gt]), (joint_grid, joint_grid))
                err = ssl.joint_error(small[:1], small[1:], groups, joint_sigma)
                state.joint_error_sum += float(err.sum())
            state.num_images += 1
    finally:
        model.train(was_training)
    return state


def summarise(state: EvalState, label_set: LabelSet = LIP) -> dict:
    """Scores of an accumulated evaluation as a JSON-able dict.

    Top-level accuracy/IoU keys follow the LIP_SSL rule (absent classes excluded, ``nan``);
    ``absent_zero`` holds the same scores with absent classes counted as 0 (SCHP/CE2P/HRNet).
    """
    from lipkit.metrics import ConfusionMatrix, left_right_confusion

    cm = ConfusionMatrix(label_set.num_classes, ignore_index=label_set.ignore_index)
    cm.matrix = state.matrix.numpy().astype(np.int64).copy()
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
    result["confusion_matrix"] = state.matrix.tolist()
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


# ----------------------------------------------------------------------------------------------
# Label maps to files


def colorize(labels: np.ndarray, label_set: LabelSet = LIP) -> np.ndarray:
    """An (H,W,3) uint8 RGB image of a label map (255 drawn white)."""
    lut = np.full((256, 3), 255, dtype=np.uint8)
    lut[: label_set.num_classes] = label_set.palette_array
    return lut[np.asarray(labels, dtype=np.uint8)]


def overlay(image: np.ndarray, labels: np.ndarray, label_set: LabelSet = LIP, alpha: float = 0.5) -> np.ndarray:
    """The image with the label colours blended in (background pixels left as they are)."""
    colours = colorize(labels, label_set).astype(np.float32)
    img = np.asarray(image, dtype=np.float32)
    fg = (np.asarray(labels) != 0)[..., None]
    blended = np.where(fg, (1 - alpha) * img + alpha * colours, img)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def save_label_png(path: str | Path, labels: np.ndarray, label_set: LabelSet = LIP) -> None:
    """Write a label map as an indexed PNG whose palette is the label set's (ids stay the pixel values)."""
    from PIL import Image

    img = Image.fromarray(np.asarray(labels, dtype=np.uint8), mode="P")
    flat = np.zeros((256, 3), dtype=np.uint8)
    flat[255] = 255
    flat[: label_set.num_classes] = label_set.palette_array
    img.putpalette(flat.reshape(-1).tolist())
    img.save(path)


# ----------------------------------------------------------------------------------------------
# CLI


def _parse_scales(text: str) -> tuple[float, ...]:
    try:
        return _check_scales([float(s) for s in text.split(",") if s.strip()])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--scales: {exc}; write e.g. 0.75,1,1.25") from None


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a lipkit checkpoint (last.pt / best.pt) written by `train`")
    parser.add_argument("--scales", type=_parse_scales, default=(1.0,), help="test scales, comma-separated (default 1)")
    parser.add_argument("--flip", action="store_true", help="also average the mirrored image's logits (mirror classes swapped)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda[:N]")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m lipkit evaluate``."""
    _common_arguments(parser)
    parser.add_argument("--data-root", required=True, help="a LIP-format dataset folder")
    parser.add_argument("--split", default="val", help="split to score (default val)")
    parser.add_argument("--max-images", type=int, default=None, help="score only the first N images")
    parser.add_argument("--out", default=None, help="also write the scores to this JSON file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Score a checkpoint on a split and print the headline numbers (and write --out JSON)."""
    from lipkit.data import LIPDataset
    from lipkit.train import load_model_from_checkpoint, resolve_device

    device = resolve_device(args.device)
    model, config = load_model_from_checkpoint(args.checkpoint, device=device)
    label_set = get_label_set(config.data.label_set)
    dataset = LIPDataset(args.data_root, args.split, label_set=label_set)
    scores = evaluate(model, dataset, label_set, scales=args.scales, flip=args.flip, device=device,
                      max_images=args.max_images, progress=not args.no_progress)
    print(
        f"{args.split}: {scores['num_images']} images, pixel acc {100 * scores['pixel_accuracy']:.2f}, "
        f"mean acc {100 * scores['mean_accuracy']:.2f}, mIoU {100 * scores['mean_iou']:.2f} "
        f"(absent as 0: {100 * scores['absent_zero']['mean_iou']:.2f}), joint error {scores['joint_error']}"
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(scores, indent=1))
    return 0


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m lipkit predict``."""
    _common_arguments(parser)
    parser.add_argument("images", nargs="+", help="image files to parse")
    parser.add_argument("--out", required=True, help="folder for <name>.png (palette labels) and <name>_overlay.png")


def run_predict(args: argparse.Namespace) -> int:
    """Parse each image; write its label map as a palette PNG and an overlay next to it in --out."""
    from PIL import Image

    from lipkit.data import read_image
    from lipkit.train import load_model_from_checkpoint, resolve_device

    device = resolve_device(args.device)
    model, config = load_model_from_checkpoint(args.checkpoint, device=device)
    label_set = get_label_set(config.data.label_set)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stems = [Path(p).stem for p in args.images]
    if len(set(stems)) != len(stems):
        raise SystemExit("predict: two input images share a file name; outputs would overwrite each other")
    for path, stem in zip(tqdm(args.images, desc="predict"), stems):
        image = read_image(path)
        x = _image_tensor(image).to(device)
        labels = predict(model, x, scales=args.scales, flip=args.flip, label_set=label_set).argmax(0).cpu().numpy()
        save_label_png(out_dir / f"{stem}.png", labels.astype(np.uint8), label_set)
        Image.fromarray(overlay(image, labels, label_set)).save(out_dir / f"{stem}_overlay.png")
    print(f"wrote {2 * len(stems)} files to {out_dir}")
    return 0
