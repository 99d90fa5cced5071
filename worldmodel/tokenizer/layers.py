"""The tokenizer's layers: causal-capable 3D convolutions, the attention residual block and the
decoder's refine block (used by ``vqvae`` and ``stream`` beside it)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.tokenizer.attention import AxialAttention


def _time_padding(kernel: int, stride: int, causal: bool) -> tuple[int, int]:
    """(past, future) padding so that T inputs give T / stride outputs."""
    total = kernel - stride
    return (total, 0) if causal else (total // 2, total - total // 2)


class Conv3d(nn.Module):
    """3D convolution with explicit padding: spatial SAME, time causal or SAME."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: tuple[int, int, int],
        stride: tuple[int, int, int],
        causal: bool,
    ) -> None:
        super().__init__()
        kt, kh, kw = kernel
        st, sh, sw = stride
        past, future = _time_padding(kt, st, causal)
        hp, wp = kh - sh, kw - sw
        self.pad = (wp // 2, wp - wp // 2, hp // 2, hp - hp // 2, past, future)
        self.conv = nn.Conv3d(c_in, c_out, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pad))


class ConvTranspose3d(nn.Module):
    """3D transposed convolution that multiplies T, H, W by its stride exactly.

    In time, output frame o receives input steps i with o - kernel < i * stride <= o; keeping
    the first T * stride outputs (causal) means no frame depends on a later step.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: tuple[int, int, int],
        stride: tuple[int, int, int],
        causal: bool,
    ) -> None:
        super().__init__()
        kt, kh, kw = kernel
        st, sh, sw = stride
        self.stride_t, self.causal = st, causal
        self.crop_t = _time_padding(kt, st, causal)[0] if not causal else 0
        self.conv = nn.ConvTranspose3d(
            c_in, c_out, kernel, stride, padding=(0, (kh - sh) // 2, (kw - sw) // 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[2] * self.stride_t
        return self.conv(x)[:, :, self.crop_t : self.crop_t + t]

    @property
    def per_frame(self) -> bool:
        """True when the layer has no extent in time (time kernel 1, time stride 1)."""
        return self.conv.kernel_size[0] == 1 and self.stride_t == 1

    def forward_frames(self, x: torch.Tensor) -> torch.Tensor:
        """The same layer on single frames (N, C, H, W), for a :attr:`per_frame` layer."""
        conv = self.conv
        return F.conv_transpose2d(
            x, conv.weight[:, :, 0], conv.bias, conv.stride[1:], conv.padding[1:]
        )


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over channels at each (t, h, w): it never mixes time, so it stays causal."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)


class AttentionResidualBlock(nn.Module):
    """Paper Fig. 3: a convolutional residual branch, then LayerNorm + axial attention along
    T, H and W in turn, each with its own residual connection."""

    def __init__(self, c: int, n_heads: int, time_kernel: int, causal: bool, attention: bool):
        super().__init__()
        self.conv = nn.Sequential(
            ChannelNorm(c),
            nn.ReLU(),
            Conv3d(c, c // 2, (time_kernel, 3, 3), (1, 1, 1), causal),
            ChannelNorm(c // 2),
            nn.ReLU(),
            Conv3d(c // 2, c, (1, 1, 1), (1, 1, 1), causal),
        )
        self.attention = attention
        if attention:
            self.norms = nn.ModuleList(ChannelNorm(c) for _ in range(3))
            self.attns = nn.ModuleList(AxialAttention(c, n_heads, axis) for axis in (2, 3, 4))

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None, time_mask: torch.Tensor | None):
        x = x + self.conv(x)
        if self.attention:
            for norm, attn in zip(self.norms, self.attns, strict=True):
                mask = time_mask if attn.axis == 2 else None
                x = x + attn(norm(x) + pos, mask)
        return x


class RefineBlock(nn.Module):
    """A residual 3×3 convolution block on single frames (N, C, H, W) at an upsampled
    resolution: extra decoder capacity where texture lives. Its output convolution starts at
    zero, so a decoder fine-tuned with new blocks starts as the decoder it extends."""

    def __init__(self, c: int, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, width, 3, padding=1)
        self.out = nn.Conv2d(width, c, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(F.relu(self.conv(x)))
