"""Parsing models: dilated ResNet / DeepLab VGG-16 backbones, DeepLabV2 and Attention-to-Scale.

``build_model(arch, backbone, num_classes, width=1.0, output_stride=8, pretrained=None)`` is the
one entry point. Every model's ``forward(x)`` returns a dict with ``"out"``: logits
(N, K, ceil(H/s), ceil(W/s)) for output stride s; Attention-to-Scale adds ``"scales"`` and
``"attention"``. Models expose ``output_stride``, ``num_classes``, ``backbone_parameters()``
and ``classifier_parameters()`` (new layers, trained with lr x10).

Heads by backbone: ResNet -> ASPP (DeepLab-v2 ResNet-101); VGG-16 -> DeepLab-LargeFOV's
fc6/fc7 neck + 1x1 fc8 (the network Attention-to-Scale and the LIP release build on).

``small_model_kwargs()`` is the small CPU configuration used by the notebooks and tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from torch import nn

from lipkit.models.attention import DEFAULT_SCALES, AttentionToScale
from lipkit.models.deeplab import ASPP, ASPP_RATES, DeepLabV2, aspp_coverage, pointwise_classifier, scaled_aspp_rates
from lipkit.models.pretrained import (IMAGENET_URLS, PretrainedWeightsError, load_pretrained,
                                      load_backbone_state_dict)
from lipkit.models.resnet import BasicBlock, Bottleneck, ResNetBackbone
from lipkit.models.vgg import LargeFOVNeck, VGG16Backbone

__all__ = [
    "ARCHS", "ASPP", "ASPP_RATES", "aspp_coverage", "scaled_aspp_rates", "AttentionToScale", "BACKBONES", "BasicBlock", "Bottleneck",
    "DEFAULT_SCALES", "DeepLabV2", "IMAGENET_URLS", "LargeFOVNeck", "PretrainedWeightsError",
    "ResNetBackbone", "SMALL_CPU_CONFIG", "VGG16Backbone", "build_backbone", "build_model",
    "load_backbone_state_dict", "load_pretrained", "small_model_kwargs",
]

# backbone name -> constructor(width, output_stride).
BACKBONES: dict[str, Callable[[float, int], nn.Module]] = {
    "resnet18": lambda width, os: ResNetBackbone(18, width, os),
    "resnet34": lambda width, os: ResNetBackbone(34, width, os),
    "resnet50": lambda width, os: ResNetBackbone(50, width, os),
    "resnet101": lambda width, os: ResNetBackbone(101, width, os),
    "vgg16": lambda width, os: VGG16Backbone(width, os),
}
ARCHS: tuple[str, ...] = ("deeplabv2", "attention")

# The small CPU model: trains on SynthLIP at ~128 px on 2 cores (see benchmarks/bench_models.py).
SMALL_CPU_CONFIG: dict[str, object] = {
    "arch": "deeplabv2", "backbone": "resnet18", "width": 0.25, "output_stride": 8,
}


def small_model_kwargs() -> dict[str, object]:
    """A fresh copy of the small CPU configuration (pass with ``num_classes`` to build_model)."""
    return dict(SMALL_CPU_CONFIG)


def build_backbone(backbone: str, width: float = 1.0, output_stride: int = 8,
                   pretrained: str | Path | None = None) -> nn.Module:
    """A trunk by name, optionally loaded with ImageNet weights ("imagenet" or a file path)."""
    if backbone not in BACKBONES:
        raise ValueError(f"backbone={backbone!r}: expected one of {sorted(BACKBONES)}")
    if output_stride not in (8, 16):
        raise ValueError(f"output_stride={output_stride!r}: expected 8 or 16")
    if backbone == "vgg16" and output_stride != 8:
        raise ValueError(f"output_stride={output_stride!r}: backbone 'vgg16' (DeepLab-LargeFOV) "
                         "only supports output_stride=8")
    if pretrained is not None and float(width) != 1.0:
        raise ValueError(f"width={width!r} with pretrained={str(pretrained)!r}: ImageNet weights "
                         "exist only at width=1.0; use width=1.0 or pretrained=None")
    net = BACKBONES[backbone](float(width), int(output_stride))
    if pretrained is not None:
        load_pretrained(net, backbone, pretrained)
    return net


def build_model(arch: str, backbone: str, num_classes: int, width: float = 1.0,
                output_stride: int = 8, pretrained: str | Path | None = None,
                aspp_rates: Sequence[int] | None = None) -> nn.Module:
    """Build ``arch`` ("deeplabv2" | "attention") on ``backbone`` with ``num_classes`` outputs.

    ``pretrained``: None (random init), "imagenet" (torchvision's checkpoint through torch.hub's
    cache) or a path to such a state dict; only the backbone is initialised from it.
    ``aspp_rates``: the ResNet head's dilation rates; None -> the paper's for ``output_stride``
    (:data:`ASPP_RATES`), chosen for a 321 px crop; see :func:`scaled_aspp_rates` for small crops.
    """
    if arch not in ARCHS:
        raise ValueError(f"arch={arch!r}: expected one of {list(ARCHS)}")
    if int(num_classes) < 1 or int(num_classes) != num_classes:
        raise ValueError(f"num_classes={num_classes!r}: expected a positive integer")
    trunk = build_backbone(backbone, width, output_stride, pretrained)
    if backbone == "vgg16":
        if aspp_rates is not None:
            raise ValueError(f"aspp_rates={aspp_rates!r}: backbone 'vgg16' has no ASPP (DeepLab-LargeFOV's head)")
        neck = LargeFOVNeck(trunk.out_channels, hidden=max(1, int(round(1024 * width))))
        head: nn.Module = pointwise_classifier(neck.out_channels, int(num_classes))
    else:
        neck = None
        rates = ASPP_RATES[int(output_stride)] if aspp_rates is None else tuple(int(r) for r in aspp_rates)
        if not rates or min(rates) < 1:
            raise ValueError(f"aspp_rates={aspp_rates!r}: expected dilation rates >= 1")
        head = ASPP(trunk.out_channels, int(num_classes), rates)
    base = DeepLabV2(trunk, head, int(num_classes), neck=neck)
    if arch == "attention":
        return AttentionToScale(base, hidden=max(1, int(round(512 * width))))
    return base
