"""DeepLab-v2 heads (ASPP, LargeFOV's 1x1 fc8) and the ``DeepLabV2`` model: backbone -> head.

ASPP (Chen et al., DeepLab-v2, TPAMI 2017, the ResNet-101 variant): four parallel 3x3
convolutions straight to class scores with dilation rates 6/12/18/24 at output stride 8
(3/6/9/12 at stride 16, so the field of view in pixels stays the same), summed. New layers are
initialised N(0, 0.01) with zero bias, as in the release.

The rates were chosen for a 321 px crop, a 41 x 41 grid at stride 8: rate 24 reaches 24 cells, 59 %
of the grid, from the centre. On a small crop the same rates point outside the map: on a 129 px
crop (17 x 17) every off-centre tap of the rate-18 and rate-24 branches lands in the zero padding, so
those branches are 1 x 1 convolutions. :func:`aspp_coverage` measures that share and
:func:`scaled_aspp_rates` keeps the rates in proportion to the grid.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["ASPP", "ASPP_RATES", "DeepLabV2", "aspp_coverage", "grid_size", "pointwise_classifier", "scaled_aspp_rates"]

# output stride -> ASPP dilation rates.
ASPP_RATES: dict[int, tuple[int, ...]] = {8: (6, 12, 18, 24), 16: (3, 6, 9, 12)}
PAPER_CROP = 321  # the crop the paper's rates were chosen for


def grid_size(pixels: int, output_stride: int = 8) -> int:
    """Cells of the logits' grid along a side of ``pixels`` (321 -> 41, 129 -> 17 at stride 8)."""
    return (int(pixels) - 1) // int(output_stride) + 1


def scaled_aspp_rates(crop_size: int, output_stride: int = 8) -> tuple[int, ...]:
    """The paper's rates scaled by the crop's grid span against 321's (129 px: 6/12/18/24 -> 2/5/7/10).

    Rates are rounded, at least 1, and repeated values are merged (very small crops get fewer branches).
    """
    factor = (grid_size(crop_size, output_stride) - 1) / (grid_size(PAPER_CROP, output_stride) - 1)
    return tuple(sorted({max(1, round(r * factor)) for r in ASPP_RATES[int(output_stride)]}))


def aspp_coverage(rate: int, height: int, width: int | None = None) -> float:
    """Share of a dilated 3x3 convolution's 8 off-centre taps that land inside a ``height`` x ``width`` grid.

    Averaged over every output cell; the rest read the zero padding. 0 means the branch acts as a
    1x1 convolution everywhere.
    """
    width = height if width is None else width

    def inside(n: int) -> np.ndarray:  # per position: is (i - r, i, i + r) inside [0, n)
        i = np.arange(n)
        return np.stack([i - rate >= 0, np.ones(n, bool), i + rate < n]).astype(float)

    rows, cols = inside(int(height)), inside(int(width))  # (3, H), (3, W)
    taps = np.einsum("ah,bw->abhw", rows, cols).mean(axis=(2, 3))  # (3, 3): share of cells with that tap inside
    return float((taps.sum() - taps[1, 1]) / 8)


def _init_scores(conv: nn.Conv2d) -> None:
    nn.init.normal_(conv.weight, std=0.01)
    nn.init.zeros_(conv.bias)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: sum of parallel dilated 3x3 convs to ``num_classes``."""

    def __init__(self, in_channels: int, num_classes: int, rates: Sequence[int] = (6, 12, 18, 24)) -> None:
        super().__init__()
        self.rates = tuple(int(r) for r in rates)
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, 3, padding=r, dilation=r) for r in self.rates)
        for conv in self.branches:
            _init_scores(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out


def pointwise_classifier(in_channels: int, num_classes: int) -> nn.Conv2d:
    """DeepLab-LargeFOV's fc8: a 1x1 convolution to class scores, N(0, 0.01) init."""
    conv = nn.Conv2d(in_channels, num_classes, 1)
    _init_scores(conv)
    return conv


class DeepLabV2(nn.Module):
    """Backbone -> optional neck -> classifier; ``forward`` returns ``{"out": logits}``.

    Logits sit on the backbone's output-stride grid (ceil(H / output_stride)); upsampling to the
    label size is the loss's and the predictor's job.
    """

    def __init__(self, backbone: nn.Module, classifier: nn.Module, num_classes: int,
                 neck: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck if neck is not None else nn.Identity()
        self.classifier = classifier
        self.num_classes = int(num_classes)
        self.output_stride = int(backbone.output_stride)
        self.feature_channels = int(getattr(neck, "out_channels", backbone.out_channels))

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(penultimate features fed to the classifier, logits), both on the output grid."""
        feats = self.neck(self.backbone(x))
        return feats, self.classifier(feats)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.forward_features(x)[1]}

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the (ImageNet-initialisable) trunk: base learning rate."""
        return self.backbone.parameters()

    def classifier_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the new layers (neck + classifier): learning rate x10."""
        yield from self.neck.parameters()
        yield from self.classifier.parameters()
