"""Attention to Scale (Chen, Yang, Wang, Xu, Yuille, CVPR 2016) around a DeepLabV2 model.

The same backbone + head runs on the image at scales 1, 0.75 and 0.5 (a side of n pixels
becomes floor((n-1)*s)+1, Caffe's shrink rule: 321 -> 241 -> 161). Each scale's logits and
penultimate features are resized bilinearly to the scale-1 grid. An attention branch (3x3 conv
512 + ReLU + dropout 0.5 + 1x1 conv to S channels) reads the concatenated features of all
scales and gives a per-pixel softmax over scales; the fused logits are the attention-weighted
sum of the per-scale logits. Per-scale logits are returned too so each can carry a loss, as in
the LIP release.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lipkit.models.deeplab import DeepLabV2

__all__ = ["DEFAULT_SCALES", "AttentionToScale", "scaled_size"]

DEFAULT_SCALES: tuple[float, ...] = (1.0, 0.75, 0.5)


def scaled_size(n: int, scale: float) -> int:
    """Side length of an n-pixel side at ``scale`` (Caffe shrink rule, exact for s = 1)."""
    return int((n - 1) * scale) + 1


class AttentionToScale(nn.Module):
    """Multi-scale DeepLab fused by a learned per-pixel softmax over scales."""

    def __init__(self, base: DeepLabV2, scales: Sequence[float] = DEFAULT_SCALES,
                 hidden: int = 512, dropout: float = 0.5) -> None:
        super().__init__()
        scales = tuple(float(s) for s in scales)
        if len(scales) < 2 or scales[0] != 1.0 or not all(0 < s for s in scales):
            raise ValueError(f"scales={scales!r}: expected 1.0 first, then at least one more positive scale")
        self.base = base
        self.scales = scales
        self.num_classes = base.num_classes
        self.output_stride = base.output_stride
        n = len(scales)
        self.attention = nn.Sequential(
            nn.Conv2d(base.feature_channels * n, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Conv2d(hidden, n, 1),
        )
        nn.init.kaiming_normal_(self.attention[0].weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.attention[0].bias)
        nn.init.normal_(self.attention[3].weight, std=0.01)
        nn.init.zeros_(self.attention[3].bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | tuple[torch.Tensor, ...]]:
        h, w = x.shape[-2:]
        feats, logits = [], []
        for s in self.scales:
            xs = x if s == 1.0 else F.interpolate(
                x, size=(scaled_size(h, s), scaled_size(w, s)), mode="bilinear", align_corners=False)
            f, z = self.base.forward_features(xs)
            feats.append(f)
            logits.append(z)
        grid = logits[0].shape[-2:]

        def to_grid(t: torch.Tensor) -> torch.Tensor:
            if t.shape[-2:] == grid:
                return t
            return F.interpolate(t, size=grid, mode="bilinear", align_corners=False)

        scale_logits = tuple(to_grid(z) for z in logits)
        weights = torch.softmax(self.attention(torch.cat([to_grid(f) for f in feats], dim=1)), dim=1)
        out = (torch.stack(scale_logits, dim=1) * weights.unsqueeze(2)).sum(dim=1)
        return {"out": out, "scales": scale_logits, "attention": weights}

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """The shared trunk's parameters: base learning rate."""
        return self.base.backbone_parameters()

    def classifier_parameters(self) -> Iterator[nn.Parameter]:
        """New layers (neck, classifier, attention branch): learning rate x10."""
        yield from self.base.classifier_parameters()
        yield from self.attention.parameters()
