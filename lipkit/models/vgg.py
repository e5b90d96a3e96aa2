"""DeepLab-LargeFOV VGG-16: the trunk with torchvision's ``features.N`` names, and the fc6/fc7 neck.

Trunk (``VGG16Backbone``): torchvision's VGG-16 layer list (conv/ReLU pairs, 13 convolutions at
``features.{0,2,5,7,10,12,14,17,19,21,24,26,28}``) with DeepLab-LargeFOV's changes, none of which
adds parameters: pool1-3 are 3x3 stride 2 pad 1 (a side H -> ceil(H/2)), pool4 and pool5 are
3x3 stride 1 pad 1, and conv5_1..conv5_3 use dilation 2. Output stride 8, grid ceil(H/8)
(41 x 41 for 321 x 321), 512 channels. A torchvision ``vgg16`` state dict minus its
``classifier.*`` keys loads with ``strict=True`` at width 1.0.

Neck (``LargeFOVNeck``): DeepLab-LargeFOV's fc6 (3x3, dilation 12, 1024) + ReLU + dropout 0.5 and
fc7 (1x1, 1024) + ReLU + dropout 0.5. These are new layers (torchvision's fully connected
weights do not fit them), so they belong to the head and train with the classifier's lr.
"""

from __future__ import annotations

import torch
from torch import nn

from lipkit.models.resnet import scaled_channels

__all__ = ["VGG16_CONFIG", "VGG16Backbone", "LargeFOVNeck"]

# torchvision's configuration "D": channels per conv, "M" a pooling layer.
VGG16_CONFIG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                                       512, 512, 512, "M", 512, 512, 512, "M")


class VGG16Backbone(nn.Module):
    """DeepLab-LargeFOV VGG-16 trunk: (N,3,H,W) -> (N, 512*width, ceil(H/8), ceil(W/8))."""

    def __init__(self, width: float = 1.0, output_stride: int = 8) -> None:
        super().__init__()
        if output_stride != 8:
            raise ValueError(f"output_stride={output_stride!r}: the DeepLab-LargeFOV VGG-16 trunk "
                             "only supports output_stride=8")
        if not width > 0:
            raise ValueError(f"width={width!r}: expected a positive multiplier (1.0 = full width)")
        self.width = float(width)
        self.output_stride = 8
        self.arch_name = "vgg16"
        layers: list[nn.Module] = []
        cin, pools, convs_after_pool4 = 3, 0, False
        for item in VGG16_CONFIG:
            if item == "M":
                pools += 1
                stride = 2 if pools <= 3 else 1
                layers.append(nn.MaxPool2d(3, stride=stride, padding=1))
                convs_after_pool4 = pools == 4
            else:
                cout = scaled_channels(int(item), width)
                dilation = 2 if convs_after_pool4 else 1
                layers += [nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation),
                           nn.ReLU(inplace=True)]
                cin = cout
        self.features = nn.Sequential(*layers)
        self.out_channels = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class LargeFOVNeck(nn.Module):
    """fc6 (3x3, dilation 12) and fc7 (1x1), each + ReLU + dropout; keeps the grid size."""

    def __init__(self, in_channels: int, hidden: int = 1024, dilation: int = 12,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.fc6 = nn.Conv2d(in_channels, hidden, 3, padding=dilation, dilation=dilation)
        self.relu6 = nn.ReLU(inplace=True)
        self.drop6 = nn.Dropout(dropout)
        self.fc7 = nn.Conv2d(hidden, hidden, 1)
        self.relu7 = nn.ReLU(inplace=True)
        self.drop7 = nn.Dropout(dropout)
        self.out_channels = hidden
        for conv in (self.fc6, self.fc7):
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop6(self.relu6(self.fc6(x)))
        return self.drop7(self.relu7(self.fc7(x)))
