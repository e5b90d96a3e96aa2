"""What a training run is built from its config: data, model (with the BatchNorm policy), optimiser,
learning-rate schedule and loss. ``lipkit.training.loop`` calls these once, before the first step.

BatchNorm: ``model.freeze_bn`` (default: on for ImageNet-initialised backbones, as DeepLab does
with small batches) keeps BN layers in eval mode with their affine parameters fixed, which also
makes per-rank batches equivalent to the full batch. With trainable BN under DDP on CUDA the layers
become ``SyncBatchNorm``; on CPU (gloo) torch has no SyncBatchNorm, so per-rank batch statistics
are used and a warning says so.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lipkit import paths
from lipkit.data import open_split
from lipkit.data.transforms import train_transform
from lipkit.labels import LabelSet
from lipkit.ssl import StructureSensitiveLoss, joint_groups_for
from lipkit.training.checkpoint import load_model_weights
from lipkit.training.config import TrainConfig, build_model_from_config
from lipkit.training.data_order import FirstN, TrainItems, derive_seed
from lipkit.training.distributed import DistContext


@dataclass
class TrainData:
    """The training items (augmented, seeded per item) and the validation split, with the step counts."""

    train_items: TrainItems
    val: FirstN | None
    num_train: int
    steps_per_epoch: int
    total_steps: int


def build_data(config: TrainConfig, label_set: LabelSet) -> TrainData:
    """Open the configured splits; the number of steps follows from their size and the batch."""
    c = config.data
    root = paths.resolve(c.root) if c.root else paths.synthlip_root()
    train = FirstN(open_split(root, c.train_split, label_set), c.max_train_images)
    transform = train_transform(label_set, crop_size=c.crop_size, scale_range=tuple(c.scale_range), flip=c.flip,
                                flip_swap=c.flip_swap)
    steps_per_epoch = len(train) // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{root} split {c.train_split!r} has {len(train)} images (after max_train_images), "
                         f"fewer than batch_size={config.batch_size}")
    val = FirstN(open_split(root, c.val_split, label_set), c.max_val_images) if c.val_split else None
    return TrainData(TrainItems(train, transform, config.seed), val, len(train), steps_per_epoch,
                     config.iterations or config.epochs * steps_per_epoch)


def is_batchnorm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def set_bn_eval(model: nn.Module) -> None:
    """Put every BatchNorm layer in eval mode (running statistics, no updates)."""
    for m in model.modules():
        if is_batchnorm(m):
            m.eval()


def freeze_bn_params(model: nn.Module) -> None:
    """Fix the affine parameters of every BatchNorm layer."""
    for m in model.modules():
        if is_batchnorm(m):
            for p in m.parameters():
                p.requires_grad_(False)


def build_training_model(config: TrainConfig, label_set: LabelSet, ctx: DistContext, device: torch.device,
                         channels_last: bool) -> nn.Module:
    """The model with its initial weights (seeded; or ``init_checkpoint``), BN policy applied, on ``device``."""
    torch.manual_seed(derive_seed(config.seed, 3))  # the same initial weights on every run and rank
    model = build_model_from_config(config)
    if config.init_checkpoint:
        load_model_weights(model, paths.resolve(config.init_checkpoint))
    if config.bn_frozen:
        freeze_bn_params(model)
    elif ctx.active:
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        elif any(is_batchnorm(m) for m in model.modules()):
            warnings.warn("DDP on CPU with trainable BatchNorm: torch has no CPU SyncBatchNorm, so each "
                          "process normalises with its own batch statistics (set model.freeze_bn=true to avoid)")
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def wrap_ddp(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` under DDP, the model itself with one process."""
    if not ctx.active:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD or AdamW over two groups: the backbone at ``lr``, the classifier at ``lr * classifier_lr_mult``."""
    o = config.optim
    head_ids = {id(p) for p in model.classifier_parameters()}
    base = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    head = [p for p in model.classifier_parameters() if p.requires_grad]
    groups = [{"params": base, "lr": o.lr}, {"params": head, "lr": o.lr * o.classifier_lr_mult}]
    if o.name == "adamw":
        return torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)


class LRFactor:
    """Multiplier of the base learning rates at a step.

    constant: 1; poly: ``(1 - step/total)^power``; onecycle: linear from 1/25 to 1 over the first
    ``warmup`` share of the steps, then half a cosine down to 0 at ``total``.
    """

    def __init__(self, schedule: str, total_steps: int, power: float = 0.9, warmup: float = 0.1) -> None:
        self.schedule, self.total_steps, self.power, self.warmup = schedule, total_steps, power, warmup

    def __call__(self, step: int) -> float:
        if self.schedule == "constant":
            return 1.0
        if self.schedule == "onecycle":
            ramp = self.warmup * self.total_steps
            if step < ramp:
                return 0.04 + 0.96 * step / ramp
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - ramp) / max(self.total_steps - ramp, 1e-9))))
        return max(0.0, 1.0 - step / self.total_steps) ** self.power


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    o = config.optim
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LRFactor(o.schedule, total_steps, o.poly_power, o.warmup))


def build_loss(config: TrainConfig, label_set: LabelSet) -> StructureSensitiveLoss:
    """The configured structure-sensitive loss (``ssl.mode`` none is plain cross-entropy)."""
    s = config.ssl
    kwargs: dict[str, Any] = {"mode": s.mode, "sigma": s.sigma, "ignore_index": label_set.ignore_index,
                              "weighting": s.effective_weighting, "ce_on": s.ce_on,
                              "groups": s.groups or joint_groups_for(label_set)}
    if s.weight is not None:
        kwargs["soft_weight"] = s.weight
    return StructureSensitiveLoss(**kwargs)


__all__ = ["LRFactor", "TrainData", "build_data", "build_loss", "build_optimizer",
           "build_scheduler", "build_training_model", "freeze_bn_params", "set_bn_eval", "wrap_ddp"]
