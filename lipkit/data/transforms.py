"""Joint image + label (+ pose) transforms on the sample dict, and the paper's train/val pipelines.

Each transform takes and returns a sample dict (``image`` (H, W, 3) uint8, optional ``label``
(H, W) uint8 ids, optional ``pose`` (16, 3) float32 x, y, v) and never modifies its input.
Labels are only ever moved, never interpolated (nearest-neighbour resampling, 255 padding), so
the ids after any transform are a subset of those before plus the ignore value.

Pixel coordinates follow the pixel-centre convention: pixel ``x`` covers ``[x - 0.5, x + 0.5]``,
so a resize by ``W'/W`` maps ``x -> (x + 0.5) * W'/W - 0.5`` and a flip maps ``x -> W - 1 - x``.

Randomness: a random transform draws from its ``generator`` (a ``numpy.random.Generator`` or an
int seed) when given; when None it draws from torch's default generator, so ``torch.manual_seed``
makes a run repeatable and each DataLoader worker (seeded by torch per worker) draws differently.
``Compose.seed(s)`` / ``transform.seed(s)`` reseed every random step (e.g. in a worker_init_fn).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from lipkit.labels import IGNORE_INDEX, LIP_POSE_FLIP_PERMUTATION, LabelSet

Sample = dict[str, Any]
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
# The mean colour as uint8 RGB: padding with it gives ~0 after Normalize.
IMAGENET_MEAN_UINT8: tuple[int, int, int] = tuple(int(round(m * 255)) for m in IMAGENET_MEAN)  # type: ignore[assignment]


def _size2(size: int | Sequence[int], name: str) -> tuple[int, int]:
    """``size`` as ``(height, width)``; an int means a square."""
    if isinstance(size, (int, np.integer)):
        h = w = int(size)
    else:
        h, w = (int(v) for v in size)
    if h < 1 or w < 1:
        raise ValueError(f"{name}: size must be positive, got {size!r}")
    return h, w


class RandomTransform:
    """Base of the random transforms: where draws come from, and reseeding."""

    def __init__(self, generator: np.random.Generator | int | None = None) -> None:
        self.generator = np.random.default_rng(generator) if isinstance(generator, (int, np.integer)) else generator

    def seed(self, seed: int | Sequence[int]) -> None:
        """Draw from a fresh generator seeded with ``seed`` from now on."""
        self.generator = np.random.default_rng(seed)

    def rng(self) -> np.random.Generator:
        if self.generator is not None:
            return self.generator
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))


# ---------------------------------------------------------------- deterministic building blocks

def resize_sample(sample: Sample, height: int, width: int) -> Sample:
    """Resize to ``(height, width)``: image bilinear, label nearest, pose scaled."""
    out = dict(sample)
    image = sample["image"]
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return out
    if image.dtype == np.uint8:
        out["image"] = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
    else:  # float image (after Normalize): resize each channel in mode F
        chans = [np.asarray(Image.fromarray(np.ascontiguousarray(image[:, :, c], dtype=np.float32)).resize((width, height), Image.BILINEAR))
                 for c in range(image.shape[2])]
        out["image"] = np.stack(chans, axis=2)
    if "label" in sample:
        rows = np.minimum(((np.arange(height) + 0.5) * (h / height)).astype(np.int64), h - 1)
        cols = np.minimum(((np.arange(width) + 0.5) * (w / width)).astype(np.int64), w - 1)
        out["label"] = sample["label"][rows[:, None], cols[None, :]]
    if "pose" in sample:
        pose = np.array(sample["pose"], dtype=np.float32, copy=True)
        pose[:, 0] = (pose[:, 0] + 0.5) * (width / w) - 0.5
        pose[:, 1] = (pose[:, 1] + 0.5) * (height / h) - 0.5
        out["pose"] = pose
    return out


def crop_sample(sample: Sample, top: int, left: int, height: int, width: int,
                ignore_index: int = IGNORE_INDEX, fill: Sequence[int] = IMAGENET_MEAN_UINT8) -> Sample:
    """Crop a ``height x width`` window at ``(top, left)``; areas past the bottom/right edge are padded
    (image with ``fill``, label with ``ignore_index``). Joints falling outside become NaN."""
    out = dict(sample)
    image = sample["image"]
    h, w = image.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + height, h), min(left + width, w)
    canvas = np.empty((height, width) + image.shape[2:], dtype=image.dtype)
    canvas[...] = np.asarray(fill, dtype=image.dtype)
    if y1 > y0 and x1 > x0:
        canvas[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
    out["image"] = canvas
    if "label" in sample:
        lab = np.full((height, width), ignore_index, dtype=sample["label"].dtype)
        if y1 > y0 and x1 > x0:
            lab[y0 - top:y1 - top, x0 - left:x1 - left] = sample["label"][y0:y1, x0:x1]
        out["label"] = lab
    if "pose" in sample:
        pose = np.array(sample["pose"], dtype=np.float32, copy=True)
        pose[:, 0] -= left
        pose[:, 1] -= top
        with np.errstate(invalid="ignore"):
            outside = ~((pose[:, 0] > -0.5) & (pose[:, 0] < width - 0.5) & (pose[:, 1] > -0.5) & (pose[:, 1] < height - 0.5))
        pose[outside] = np.nan
        out["pose"] = pose
    return out


def hflip_sample(sample: Sample, label_set: LabelSet, swap: bool = True) -> Sample:
    """Mirror left-right: label ids swapped through ``label_set.flip_lut``, pose ``x -> W-1-x`` with
    left/right joints swapped (LIP_POSE_FLIP_PERMUTATION).

    ``swap=False`` mirrors the pixels and the joints' x but keeps every id and joint name: a mirrored
    left arm stays labelled "left arm" (a known structural corruption, the study's positive control),
    and the pose stays consistent with that label (its joints are not swapped either).
    """
    out = dict(sample)
    image = sample["image"]
    w = image.shape[1]
    out["image"] = np.ascontiguousarray(image[:, ::-1])
    if "label" in sample:
        mirrored = sample["label"][:, ::-1]
        out["label"] = label_set.flip_lut[mirrored] if swap else np.ascontiguousarray(mirrored)
    if "pose" in sample:
        pose = np.asarray(sample["pose"], dtype=np.float32)
        pose = (pose[list(LIP_POSE_FLIP_PERMUTATION)] if swap else pose).copy()
        pose[:, 0] = (w - 1) - pose[:, 0]
        out["pose"] = pose
    return out


# ---------------------------------------------------------------- transforms

class RandomScale(RandomTransform):
    """Rescale by a factor drawn uniformly from ``scale_range`` or, with ``scales``, from that discrete set."""

    def __init__(self, scale_range: tuple[float, float] = (0.6, 1.4), scales: Sequence[float] | None = None,
                 generator: np.random.Generator | int | None = None) -> None:
        super().__init__(generator)
        lo, hi = (float(v) for v in scale_range)
        if scales is not None:
            scales = tuple(float(s) for s in scales)
            if not scales or min(scales) <= 0:
                raise ValueError(f"RandomScale: scales must be positive numbers, got {scales!r}")
        elif not 0 < lo <= hi:
            raise ValueError(f"RandomScale: scale_range must be 0 < low <= high, got {scale_range!r}")
        self.scale_range = (lo, hi)
        self.scales = scales

    def __call__(self, sample: Sample) -> Sample:
        rng = self.rng()
        s = float(rng.choice(self.scales)) if self.scales is not None else float(rng.uniform(*self.scale_range))
        h, w = sample["image"].shape[:2]
        return resize_sample(sample, max(1, int(round(h * s))), max(1, int(round(w * s))))


class RandomCrop(RandomTransform):
    """A random ``size`` crop; smaller samples are first padded at the bottom/right (label
    ``ignore_index``, image the ImageNet mean colour), as DeepLab does."""

    def __init__(self, size: int | Sequence[int], ignore_index: int = IGNORE_INDEX,
                 fill: Sequence[int] = IMAGENET_MEAN_UINT8, generator: np.random.Generator | int | None = None) -> None:
        super().__init__(generator)
        self.size = _size2(size, "RandomCrop")
        self.ignore_index = ignore_index
        self.fill = tuple(fill)

    def __call__(self, sample: Sample) -> Sample:
        ch, cw = self.size
        h, w = sample["image"].shape[:2]
        rng = self.rng()
        top = int(rng.integers(0, max(h - ch, 0) + 1))
        left = int(rng.integers(0, max(w - cw, 0) + 1))
        return crop_sample(sample, top, left, ch, cw, self.ignore_index, self.fill)


class RandomHorizontalFlip(RandomTransform):
    """Mirror with probability ``p``, swapping the label set's mirror ids and the left/right joints
    (``swap=False``: without swapping them, see :func:`hflip_sample`)."""

    def __init__(self, label_set: LabelSet, p: float = 0.5, generator: np.random.Generator | int | None = None,
                 swap: bool = True) -> None:
        super().__init__(generator)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.label_set = label_set
        self.p = p
        self.swap = bool(swap)

    def __call__(self, sample: Sample) -> Sample:
        if self.rng().random() < self.p:
            return hflip_sample(sample, self.label_set, swap=self.swap)
        return dict(sample)


class Resize:
    """Resize to ``size`` = ``(height, width)`` (an int means a square): image bilinear, label nearest, pose scaled."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _size2(size, "Resize")

    def __call__(self, sample: Sample) -> Sample:
        return resize_sample(sample, *self.size)


class Normalize:
    """uint8 image -> float32 ``(image / 255 - mean) / std`` (ImageNet statistics by default)."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    def __call__(self, sample: Sample) -> Sample:
        out = dict(sample)
        image = np.asarray(sample["image"], dtype=np.float32)
        if sample["image"].dtype == np.uint8:
            image = image / np.float32(255.0)
        out["image"] = (image - self.mean) / self.std
        return out


class ToTensor:
    """Arrays -> torch: image float32 ``(3, H, W)`` (uint8 scaled to [0, 1]), label int64, pose float32."""

    def __call__(self, sample: Sample) -> Sample:
        out = dict(sample)
        image = np.asarray(sample["image"])
        if image.dtype == np.uint8:
            image = image.astype(np.float32) / np.float32(255.0)
        out["image"] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
        if "label" in sample:
            out["label"] = torch.from_numpy(np.asarray(sample["label"]).astype(np.int64))
        if "pose" in sample:
            out["pose"] = torch.from_numpy(np.asarray(sample["pose"], dtype=np.float32).copy())
        return out


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[Sample], Sample]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Sample) -> Sample:
        for t in self.transforms:
            sample = t(sample)
        return sample

    def seed(self, seed: int) -> None:
        """Reseed every random step (step ``k`` gets the seed sequence ``[seed, k]``)."""
        for k, t in enumerate(self.transforms):
            if hasattr(t, "seed"):
                t.seed([int(seed), k])

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(type(t).__name__ for t in self.transforms) + "])"


def train_transform(label_set: LabelSet, crop_size: int | Sequence[int] = 321,
                    scale_range: tuple[float, float] = (0.6, 1.4), flip: bool = True,
                    scales: Sequence[float] | None = None, seed: int | None = None, flip_swap: bool = True) -> Compose:
    """The paper's training pipeline: random scale, random crop (padded), mirror with id swap,
    ImageNet normalisation, tensors. ``scales=(0.6, 0.8, 1.0, 1.2, 1.4)`` gives the released
    discrete scales instead of the continuous ``scale_range``. ``flip_swap=False`` mirrors without
    swapping left/right ids and joints (a structural corruption, for a positive control)."""
    steps: list[Callable[[Sample], Sample]] = [
        RandomScale(scale_range, scales=scales),
        RandomCrop(crop_size, ignore_index=label_set.ignore_index),
    ]
    if flip:
        steps.append(RandomHorizontalFlip(label_set, swap=flip_swap))
    steps += [Normalize(), ToTensor()]
    compose = Compose(steps)
    if seed is not None:
        compose.seed(seed)
    return compose


def eval_transform() -> Compose:
    """Evaluation at the original resolution: ImageNet normalisation and tensors only."""
    return Compose([Normalize(), ToTensor()])


def normalized_tensor(image: np.ndarray) -> torch.Tensor:
    """A uint8 (H, W, 3) image as the normalised float32 (3, H, W) tensor models take (:func:`eval_transform`)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image array must be uint8 (H,W,3), got {arr.dtype} {arr.shape}")
    return eval_transform()({"image": arr})["image"]
