"""Inception-I3D (Kinetics-400, RGB), laid out to load the TF-Hub ``i3d-kinetics-400`` weights.

This is the network the FVD reference code (Unterthiner et al. 2018) embeds videos with. Two
details decide whether its outputs match the TensorFlow graph: TF-"SAME" padding (the odd pixel
goes at the end) and BatchNorm eps 1e-3. See ``shared/data/i3d/README.md`` for the weights file.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 400
INPUT_SIZE = 224
MIN_FRAMES = 9  # with 8 frames the temporal size reaching the final [2, 7, 7] avg-pool is 1

Triple = tuple[int, int, int]


def pad_same(x: torch.Tensor, kernel: Triple, stride: Triple) -> torch.Tensor:
    """Zero-pad (N, C, T, H, W) so a conv or pool behaves like TF padding="SAME".

    TF puts the odd pixel of padding at the end, which torch's symmetric ``padding=`` cannot.
    """
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride), strict=True):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]  # F.pad takes (W, H, T) pairs, last dim first
    return F.pad(x, pads) if any(pads) else x


class Unit3D(nn.Module):
    """Conv3d with SAME padding, then BatchNorm (TF's has no scale: weight is 1) and ReLU.

    With ``head=True`` it is the logits layer instead: a conv with a bias and nothing after it.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        head: bool = False,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.head = kernel, stride, head
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=head)
        if not head:
            self.bn = nn.BatchNorm3d(out_channels, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(pad_same(x, self.kernel, self.stride))
        return x if self.head else F.relu(self.bn(x))


class MaxPoolSame(nn.Module):
    """Max-pool with TF-"SAME" padding.

    Zero padding stands in for TF's ignored padding because every pool follows a ReLU, so no
    real value is below zero.
    """

    def __init__(self, kernel: Triple, stride: Triple) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class Mixed(nn.Module):
    """An Inception block: four branches concatenated along channels.

    ``widths`` are the output channels of b0 (1×1×1), b1a (1×1×1) -> b1b (3×3×3),
    b2a (1×1×1) -> b2b (3×3×3), and b3b (1×1×1 after a 3×3×3 stride-1 max-pool).
    """

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3b = widths
        self.b0 = Unit3D(in_channels, w0)
        self.b1a = Unit3D(in_channels, w1a)
        self.b1b = Unit3D(w1a, w1b, kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, w2a)
        self.b2b = Unit3D(w2a, w2b, kernel=(3, 3, 3))
        self.b3a = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, w3b)
        self.out_channels = w0 + w1b + w2b + w3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [
            self.b0(x),
            self.b1b(self.b1a(x)),
            self.b2b(self.b2a(x)),
            self.b3b(self.b3a(x)),
        ]
        return torch.cat(branches, dim=1)


class InceptionI3d(nn.Module):
    """I3D from ``Conv3d_1a_7x7`` to the time-averaged logits of the 400 Kinetics classes.

    Built untrained; load ``i3d_kinetics400_tfhub_rgb.pt`` into it with ``load_state_dict`` and
    call ``eval()``: the BatchNorms must use their running statistics.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = Mixed(192, (64, 96, 128, 16, 32, 32))
        self.Mixed_3c = Mixed(256, (128, 128, 192, 32, 96, 64))
        self.MaxPool3d_4a_3x3 = MaxPoolSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = Mixed(480, (192, 96, 208, 16, 48, 64))
        self.Mixed_4c = Mixed(512, (160, 112, 224, 24, 64, 64))
        self.Mixed_4d = Mixed(512, (128, 128, 256, 24, 64, 64))
        self.Mixed_4e = Mixed(512, (112, 144, 288, 32, 64, 64))
        self.Mixed_4f = Mixed(528, (256, 160, 320, 32, 128, 128))
        self.MaxPool3d_5a_2x2 = MaxPoolSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = Mixed(832, (256, 160, 320, 32, 128, 128))
        self.Mixed_5c = Mixed(832, (384, 192, 384, 48, 128, 128))
        self.logits = Unit3D(1024, NUM_CLASSES, head=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-softmax logits averaged over time.

        Args:
            x: float32 (N, 3, T, 224, 224), RGB in [-1, 1], T >= 9.

        Returns:
            float32 (N, 400).
        """
        if x.ndim != 5 or x.shape[1] != 3 or x.shape[3:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"I3D takes (N, 3, T, 224, 224) input, got {tuple(x.shape)}")
        if x.shape[2] < MIN_FRAMES:
            raise ValueError(f"I3D needs at least {MIN_FRAMES} frames, got {x.shape[2]}")
        x = self.Conv3d_1a_7x7(x)  # (N, 64, T/2, 112, 112)
        x = self.MaxPool3d_2a_3x3(x)  # (N, 64, T/2, 56, 56)
        x = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x))  # (N, 192, T/2, 56, 56)
        x = self.MaxPool3d_3a_3x3(x)  # (N, 192, T/2, 28, 28)
        x = self.Mixed_3c(self.Mixed_3b(x))  # (N, 480, T/2, 28, 28)
        x = self.MaxPool3d_4a_3x3(x)  # (N, 480, T/4, 14, 14)
        for block in (self.Mixed_4b, self.Mixed_4c, self.Mixed_4d, self.Mixed_4e, self.Mixed_4f):
            x = block(x)  # (N, 832, T/4, 14, 14) after Mixed_4f
        x = self.MaxPool3d_5a_2x2(x)  # (N, 832, T/8, 7, 7)
        x = self.Mixed_5c(self.Mixed_5b(x))  # (N, 1024, T/8, 7, 7)
        x = F.avg_pool3d(x, kernel_size=(2, 7, 7), stride=1)  # (N, 1024, T/8 - 1, 1, 1)
        # The reference applies dropout here; it is the identity in eval, so it is left out.
        x = self.logits(x)  # (N, 400, T/8 - 1, 1, 1)
        return x.squeeze(4).squeeze(3).mean(dim=2)  # (N, 400)
