"""The training config: typed ``@dataclass`` sections, file round trips, ``--set`` overrides, checks.

``TrainConfig`` is what ``lipkit.training.fit`` runs; ``to_dict``/``from_dict``/YAML/JSON round-trip
exactly, and bad values raise ``ValueError`` naming the key (and the file, when read from one).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from lipkit import ssl
from lipkit.labels import get_label_set
from lipkit.models import ARCHS, BACKBONES, build_model

SCHEDULES = ("constant", "poly", "onecycle")
OPTIMIZERS = ("sgd", "adamw")


@dataclass
class DataConfig:
    """Where the data is and how training crops are made."""

    root: str = ""  # "" -> lipkit.paths.synthlip_root(); relative paths are relative to the repo root
    label_set: str = "lip"
    train_split: str = "train"
    val_split: str = "val"  # "" -> no validation
    crop_size: int = 321
    scale_range: list[float] = field(default_factory=lambda: [0.6, 1.4])
    flip: bool = True
    flip_swap: bool = True  # a flip swaps left/right ids and joints; false: mirrored but not swapped (positive control)
    max_train_images: int | None = None  # first N training ids only (smoke runs)
    max_val_images: int | None = None
    workers: int = 0


@dataclass
class ModelConfig:
    """Arguments of ``lipkit.models.build_model`` plus the BatchNorm policy."""

    arch: str = "deeplabv2"
    backbone: str = "resnet101"
    width: float = 1.0
    output_stride: int = 8
    aspp_rates: list[int] | None = None  # ResNet's ASPP dilation rates; None -> the paper's (6/12/18/24 at stride 8)
    pretrained: str | None = None  # None, "imagenet" or a path to a torchvision state dict
    freeze_bn: bool | None = None  # None -> frozen iff pretrained is set


@dataclass
class OptimConfig:
    """The optimiser and its schedule; the classifier (new layers) at ``classifier_lr_mult`` x lr.

    ``sgd`` with ``constant`` (the LIP release) or ``poly`` (DeepLab) is the paper's family;
    ``adamw`` with ``onecycle`` (linear warm-up over ``warmup`` of the steps, then cosine to 0)
    trains the small SynthLIP baselines from scratch far faster (see ``make pretrain``).
    """

    name: str = "sgd"  # sgd | adamw
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    classifier_lr_mult: float = 10.0
    schedule: str = "constant"  # "constant" (as released), "poly": lr * (1 - step/total)^power, or "onecycle"
    poly_power: float = 0.9
    warmup: float = 0.1  # onecycle: share of the steps spent warming up from lr/25 to lr


@dataclass
class SSLConfig:
    """The structure-sensitive loss (``lipkit.ssl.StructureSensitiveLoss``)."""

    mode: str = "none"  # none | paper | released | soft
    sigma: float = 1.0
    weight: float | None = None  # weight of the "soft" joint term; None -> lipkit.ssl's default
    weighting: str = "image"  # paper/released per-image weights: image | normalized | batch_mean | shuffled (lipkit.ssl)
    normalize_weights: bool = False  # older spelling of weighting "normalized" (true: weighting must be image or normalized)
    groups: str = ""  # joint groups by name (lipkit.ssl.JOINT_GROUPS, e.g. "lip-no-shoes"); "" -> the label set's
    ce_on: str = "crop"  # cross-entropy on logits upsampled to the crop ("crop") or on the logits' grid ("grid", the release)

    @property
    def effective_weighting(self) -> str:
        """The per-image weighting the loss uses: ``weighting``, or "normalized" for ``normalize_weights``."""
        return ssl.resolve_weighting(self.weighting, self.normalize_weights)

    def check(self) -> None:
        """Raise ValueError naming the key for values no run can use (called by ``TrainConfig.validate``)."""
        if self.mode not in ssl.MODES:
            raise ValueError(f"ssl.mode={self.mode!r}: expected one of {list(ssl.MODES)}")
        if self.ce_on not in ssl.CE_ON:
            raise ValueError(f"ssl.ce_on={self.ce_on!r}: expected one of {list(ssl.CE_ON)}")
        if self.sigma <= 0:
            raise ValueError(f"ssl.sigma={self.sigma}: must be > 0")
        if self.weighting not in ssl.WEIGHTINGS:
            raise ValueError(f"ssl.weighting={self.weighting!r}: expected one of {list(ssl.WEIGHTINGS)}")
        if self.normalize_weights and self.weighting not in ("image", "normalized"):
            raise ValueError(f"ssl.normalize_weights=true means ssl.weighting 'normalized', but ssl.weighting="
                             f"{self.weighting!r}: set only ssl.weighting")
        if self.effective_weighting != "image" and self.mode not in ("paper", "released"):
            raise ValueError(f"ssl.weighting={self.effective_weighting!r} (or ssl.normalize_weights=true) weights the "
                             f"images of ssl.mode paper/released; ssl.mode={self.mode!r} has no per-image weights: "
                             "use ssl.weighting 'image'")


@dataclass
class EvalConfig:
    """Validation during training (``lipkit.evaluate``)."""

    every: int = 1  # epochs between validations; 0 -> only at the end
    scales: list[float] = field(default_factory=lambda: [1.0])
    flip: bool = False
    joint_grid: int = 41
    joint_sigma: float = 1.0  # sigma of the joint error's Gaussians (the stated protocol), whatever ssl.sigma trains with


@dataclass
class TrainConfig:
    """Everything one training run needs; ``to_dict``/``from_dict``/YAML/JSON round-trip exactly."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    ssl: SSLConfig = field(default_factory=SSLConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    epochs: int = 30
    iterations: int | None = None  # total optimiser steps; overrides epochs when set
    batch_size: int = 10  # global batch (split evenly over DDP ranks)
    seed: int = 0
    threads: int | None = None  # torch.set_num_threads; None leaves torch's default
    device: str = "auto"  # auto (cuda if available) | cpu | cuda | cuda:N
    bf16: bool = True  # bf16 autocast (CUDA only)
    channels_last: bool = True  # (CUDA only)
    init_checkpoint: str | None = None  # model weights to start from (fine-tuning stage)
    log_every: int = 10  # steps between metrics.jsonl train lines
    checkpoint_every: int = 500  # steps between last.pt saves (also at every epoch end)
    progress: bool = True
    out_dir: str = ""  # relative paths are relative to the repo root

    # ---- dict / file round trips -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Build from a (possibly partial) nested dict; unknown keys and wrong types raise ValueError."""
        config = _build_dataclass(cls, data or {}, "")
        config.validate()
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"config file {path} does not exist") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"config file {path} is not valid YAML: {exc}") from None
        if data is not None and not isinstance(data, dict):
            raise ValueError(f"config file {path}: expected a mapping at the top level, got {type(data).__name__}")
        try:
            return cls.from_dict(data or {})
        except ValueError as exc:
            raise ValueError(f"config file {path}: {exc}") from None

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise ValueError(f"config file {path} is not valid JSON: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"config file {path}: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        """YAML or JSON by extension."""
        return cls.from_json(path) if str(path).endswith(".json") else cls.from_yaml(path)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def with_overrides(self, overrides: Sequence[str]) -> "TrainConfig":
        """A copy with ``key.sub=value`` overrides applied (values parsed as YAML scalars/lists)."""
        data = self.to_dict()
        for item in overrides:
            if "=" not in item:
                raise ValueError(f"--set {item!r}: expected key=value, e.g. optim.lr=0.001")
            key, text = item.split("=", 1)
            parts = key.strip().split(".")
            node = data
            for depth, part in enumerate(parts):
                if not isinstance(node, dict) or part not in node:
                    where = ".".join(parts[:depth]) or "the top level"
                    valid = ", ".join(node) if isinstance(node, dict) else "(none: not a section)"
                    raise ValueError(f"--set {key}: unknown key {part!r} in {where}; valid keys: {valid}")
                if depth < len(parts) - 1:
                    node = node[part]
            if isinstance(node[parts[-1]], dict):
                raise ValueError(f"--set {key}: {key!r} is a section; set one of its keys ({', '.join(node[parts[-1]])})")
            try:  # an empty value is the empty string (e.g. data.val_split= for no validation)
                node[parts[-1]] = yaml.safe_load(text) if text.strip() else ""
            except yaml.YAMLError as exc:
                raise ValueError(f"--set {key}: cannot parse value {text!r}: {exc}") from None
        return TrainConfig.from_dict(data)

    # ---- checks ------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError naming the field for values no run can use."""
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(msg)

        need(self.model.arch in ARCHS, f"model.arch={self.model.arch!r}: expected one of {list(ARCHS)}")
        need(self.model.backbone in BACKBONES, f"model.backbone={self.model.backbone!r}: expected one of {sorted(BACKBONES)}")
        need(self.model.width > 0, f"model.width={self.model.width}: must be > 0")
        need(self.model.output_stride in (8, 16), f"model.output_stride={self.model.output_stride}: expected 8 or 16")
        rates = self.model.aspp_rates
        need(rates is None or (len(rates) >= 1 and all(r >= 1 for r in rates)),
             f"model.aspp_rates={rates}: expected null (the paper's) or a list of dilation rates >= 1")
        need(rates is None or self.model.backbone != "vgg16",
             "model.aspp_rates is set, but backbone 'vgg16' has no ASPP (DeepLab-LargeFOV's head): set it to null")
        need(self.optim.schedule in SCHEDULES, f"optim.schedule={self.optim.schedule!r}: expected one of {list(SCHEDULES)}")
        need(self.optim.name in OPTIMIZERS, f"optim.name={self.optim.name!r}: expected one of {list(OPTIMIZERS)}")
        need(0 <= self.optim.warmup < 1, f"optim.warmup={self.optim.warmup}: expected a share of the steps in [0, 1)")
        need(self.optim.lr > 0, f"optim.lr={self.optim.lr}: must be > 0")
        self.ssl.check()
        need(self.batch_size >= 1, f"batch_size={self.batch_size}: must be >= 1")
        need(self.epochs >= 1 or (self.iterations or 0) >= 1, "epochs or iterations must be >= 1")
        need(self.iterations is None or self.iterations >= 1, f"iterations={self.iterations}: must be >= 1 or null")
        need(self.data.crop_size >= 8, f"data.crop_size={self.data.crop_size}: must be >= 8")
        sr = self.data.scale_range
        need(len(sr) == 2 and 0 < sr[0] <= sr[1], f"data.scale_range={sr}: expected [low, high] with 0 < low <= high")
        need(self.log_every >= 1, f"log_every={self.log_every}: must be >= 1")
        need(self.checkpoint_every >= 0, f"checkpoint_every={self.checkpoint_every}: must be >= 0 (0: epoch ends only)")
        need(self.eval.every >= 0, f"eval.every={self.eval.every}: must be >= 0")
        need(len(self.eval.scales) >= 1 and all(s > 0 for s in self.eval.scales), f"eval.scales={self.eval.scales}: positive numbers")
        need(self.eval.joint_sigma > 0, f"eval.joint_sigma={self.eval.joint_sigma}: must be > 0")
        need(self.threads is None or self.threads >= 1, f"threads={self.threads}: must be >= 1 or null")
        need(self.data.workers >= 0, f"data.workers={self.data.workers}: must be >= 0")
        need(self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
             f"device={self.device!r}: expected auto, cpu, cuda or cuda:N")
        label_set = get_label_set(self.data.label_set)
        usable = ssl.LABEL_SET_JOINTS.get(label_set.name, ())
        need(bool(usable), f"data.label_set={label_set.name!r} has no joint groups (lipkit.ssl.LABEL_SET_JOINTS)")
        need(self.ssl.groups in ("", *usable),
             f"ssl.groups={self.ssl.groups!r} does not fit data.label_set={label_set.name!r}: expected '' (its "
             f"default, {usable[0]!r}) or one of {list(usable)}")

    @property
    def bn_frozen(self) -> bool:
        return self.model.pretrained is not None if self.model.freeze_bn is None else bool(self.model.freeze_bn)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against annotation ``tp`` (int, float, bool, str, list[X], X | None, dataclass)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a section (mapping), got {value!r}")
        return _build_dataclass(tp, value, key + ".")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"{key}: expected a string, got {value!r}")
    raise TypeError(f"{key}: unsupported annotation {tp!r}")


def _build_dataclass(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        where = prefix.rstrip(".") or "the top level"
        raise ValueError(f"unknown key {prefix + unknown[0]!r} in {where}; valid keys: {', '.join(names)}")
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def build_model_from_config(config: TrainConfig) -> nn.Module:
    """The model ``config.model`` describes, with the label set's number of classes."""
    m = config.model
    return build_model(m.arch, m.backbone, get_label_set(config.data.label_set).num_classes,
                       width=m.width, output_stride=m.output_stride, pretrained=m.pretrained,
                       aspp_rates=m.aspp_rates)


__all__ = [
    "DataConfig", "EvalConfig", "ModelConfig", "OPTIMIZERS", "OptimConfig", "SCHEDULES", "SSLConfig", "TrainConfig",
    "build_model_from_config",
]
