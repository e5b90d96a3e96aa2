"""Dilated ResNet backbones (depths 18/34/50/101) with torchvision's parameter names.

The module tree mirrors torchvision's ``ResNet`` (``conv1``, ``bn1``, ``layer1``..``layer4``,
``layerN.M.conv1``, ``layerN.0.downsample.0/1``) without ``avgpool``/``fc``, so a torchvision
ImageNet state dict minus its ``fc.*`` keys loads with ``strict=True`` at width 1.0.
Strides follow torchvision (v1.5: a Bottleneck's stride sits on its 3x3 conv).

Output stride 8: ``layer3`` and ``layer4`` keep stride 1 and use dilation 2 and 4 in every block
(DeepLab-v2's choice); output stride 16: only ``layer4`` is dilated (2). Every strided layer is
a 3x3/pad 1 or 1x1 kernel with stride 2, which maps a side of H to ceil(H/2), so the output
grid is exactly ``ceil(H / output_stride)`` (41 x 41 for a 321 x 321 crop at stride 8).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BasicBlock", "Bottleneck", "ResNetBackbone", "RESNET_SPECS", "scaled_channels"]


def scaled_channels(channels: int, width: float) -> int:
    """Channel count ``channels * width`` rounded, at least 1 (the width multiplier rule)."""
    return max(1, int(round(channels * width)))


def _conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride, dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes, 1, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, dilated), 1x1 expand x4, residual (ResNet-50/101)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


# depth -> (block type, blocks per stage); the standard He et al. configurations.
RESNET_SPECS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
}

# output stride -> (stride, dilation) of layer3 and layer4.
_STAGE_PLAN: dict[int, tuple[tuple[int, int], tuple[int, int]]] = {
    8: ((1, 2), (1, 4)),
    16: ((2, 1), (1, 2)),
}


class ResNetBackbone(nn.Module):
    """Dilated ResNet trunk: image (N,3,H,W) -> features (N, out_channels, ceil(H/os), ceil(W/os)).

    ``width`` scales every channel count (base 64 -> round(64 * width)); names never change, so
    only width 1.0 matches torchvision's checkpoints.
    """

    def __init__(self, depth: int, width: float = 1.0, output_stride: int = 8) -> None:
        super().__init__()
        if depth not in RESNET_SPECS:
            raise ValueError(f"depth={depth!r}: expected one of {sorted(RESNET_SPECS)}")
        if output_stride not in _STAGE_PLAN:
            raise ValueError(f"output_stride={output_stride!r}: expected 8 or 16")
        if not width > 0:
            raise ValueError(f"width={width!r}: expected a positive multiplier (1.0 = full width)")
        block, counts = RESNET_SPECS[depth]
        self.depth = depth
        self.width = float(width)
        self.output_stride = output_stride
        self.arch_name = f"resnet{depth}"
        base = scaled_channels(64, width)
        self.inplanes = base
        self.conv1 = nn.Conv2d(3, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        (s3, d3), (s4, d4) = _STAGE_PLAN[output_stride]
        self.layer1 = self._make_layer(block, base, counts[0], 1, 1)
        self.layer2 = self._make_layer(block, base * 2, counts[1], 2, 1)
        self.layer3 = self._make_layer(block, base * 4, counts[2], s3, d3)
        self.layer4 = self._make_layer(block, base * 8, counts[3], s4, d4)
        self.out_channels = base * 8 * block.expansion
        del self.inplanes
        self._init_weights()

    def _make_layer(self, block: type[nn.Module], planes: int, blocks: int, stride: int,
                    dilation: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, dilation, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, 1, dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        # He init for convolutions, identity BN: torchvision's defaults.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.layer4(self.layer3(x))
