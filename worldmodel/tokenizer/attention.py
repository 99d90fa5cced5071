"""Axial self-attention over video feature maps, with shared position information.

Attention runs along one axis of a (B, C, T, H, W) tensor at a time (Ho et al. 2019), so its
cost grows with T + H + W rather than T·H·W. In the causal (streaming) form the time axis is
masked so a position sees only itself and the ``window - 1`` steps before it, and time position
enters as a learned *relative* bias: then decoding the newest step from a short window of
latents gives exactly what decoding the whole video gives.
"""

from __future__ import annotations

import torch
from torch import nn

from worldmodel.precision import attention


class AxialPositions(nn.Module):
    """Learned spatio-temporal embeddings e_t[t] + e_h[h] + e_w[w], shared by all layers.

    With ``absolute_time=False`` (causal tokenizers) the time term is left out: time position
    is given to the time-axis attention by :class:`RelativeTimeBias` instead.
    """

    def __init__(self, channels: int, shape: tuple[int, int, int], absolute_time: bool) -> None:
        super().__init__()
        t, h, w = shape
        self.time = nn.Parameter(torch.randn(t, channels) * 0.02) if absolute_time else None
        self.rows = nn.Parameter(torch.randn(h, channels) * 0.02)
        self.cols = nn.Parameter(torch.randn(w, channels) * 0.02)

    def forward(self, t: int) -> torch.Tensor:
        """(C, t, H, W) embedding to add to a feature map with ``t`` time steps."""
        pos = self.rows[:, None, :] + self.cols[None, :, :]  # (H, W, C)
        pos = pos[None].expand(t, -1, -1, -1)
        if self.time is not None:
            if t > self.time.shape[0]:
                raise ValueError(
                    f"{t} latent steps exceed the {self.time.shape[0]} this non-causal "
                    "tokenizer was built for"
                )
            pos = pos + self.time[:t, None, None, :]
        return pos.permute(3, 0, 1, 2)


class RelativeTimeBias(nn.Module):
    """Causal, windowed mask plus a learned per-head bias for each time offset 0..window-1."""

    def __init__(self, n_heads: int, window: int) -> None:
        super().__init__()
        self.window = window
        self.bias = nn.Parameter(torch.zeros(n_heads, window))

    def forward(self, t: int) -> torch.Tensor:
        """(heads, t, t) additive attention mask: -inf outside [i - window + 1, i]."""
        i = torch.arange(t, device=self.bias.device)
        offset = i[:, None] - i[None, :]  # query minus key: 0 = same step, >0 = past
        allowed = (offset >= 0) & (offset < self.window)
        bias = self.bias[:, offset.clamp(0, self.window - 1)]
        return bias.masked_fill(~allowed, float("-inf"))


class AxialAttention(nn.Module):
    """Multi-head self-attention along one axis (2 = T, 3 = H, 4 = W) of (B, C, T, H, W)."""

    def __init__(self, channels: int, n_heads: int, axis: int) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels {channels} not divisible by heads {n_heads}")
        self.n_heads, self.axis = n_heads, axis
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, c = x.shape[:2]
        seq = x.movedim(1, -1).movedim(self.axis - 1, -2)  # (B, ..., L, C): the axis is L
        outer = seq.shape[:-2]
        seq = seq.reshape(-1, seq.shape[-2], c)  # (N, L, C)
        n, length = seq.shape[:2]
        q, k, v = self.qkv(seq).view(n, length, 3, self.n_heads, c // self.n_heads).unbind(2)
        q, k, v = (y.transpose(1, 2) for y in (q, k, v))  # (N, heads, L, hs)
        if mask is not None:
            mask = mask.to(q.dtype)
        y = attention(q, k, v, attn_mask=mask)
        y = self.proj(y.transpose(1, 2).reshape(n, length, c))  # (N, L, C)
        y = y.view(*outer, length, c).movedim(-2, self.axis - 1).movedim(-1, 1)
        assert y.shape[0] == b
        return y
