"""The context decoder: refines the tokenizer's frame with the frame shown before it (beyond
the paper; after Delta-IRIS's context-aware decoder).

A code stands for an 8x8-pixel patch, finer than the floor's grass and the walls' bricks, so a
decoder that reads only the codes has to invent texture and averages it away. In a game most of
a frame is the previous frame moved by the player: this decoder reads the plain decoder's frame
of the new step (the *base*: right in the large, blurred in the small), the codes of the new
step and of the step before (what changed, and so how the view moved), and the previous shown
frame (its pixels), and

1. estimates from them a flow field (where each pixel of the new frame was in the old one):
   block matching of the previous frame against the base at half resolution over +-14 pixels
   sideways and +-4 up and down (a soft arg-min of the matching cost, so it is right from the
   first step and differentiable), plus a learned correction,
2. warps the previous frame by it: the *aligned previous frame*, texture included,
3. outputs per pixel a gate (how much of the aligned frame to take) and a correction:
   ``frame = base + gate * (aligned - base) + delta``.

New content (the edge a turn reveals, a medkit that appears) comes from the base; what is still
in view keeps the pixels the player has seen. It starts as the base (gate near 0, no
correction), so it never has to relearn what the plain decoder knows; without a previous frame
(a dream started from codes alone) it is the base.

The codes stay the tokenizer's: the encoder, codebook and prior are untouched, so a shipped
prior dreams through this decoder unchanged. In a dream the previous frame is the decoder's own
last output, so the stage that trains it (``worldmodel/training/decoder_stage.py``) rolls it out
on its own outputs. Shapes: frames (B, 3, H, W) float in [-0.5, 0.5]; code vectors
(B, D, H', W').
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Half-resolution pixels searched each way by the block matching: a turn moves the view by
# 4-13 pixels a step at 64x64 (docs/ARCHITECTURE.md), a step forward less.
MATCH_X, MATCH_Y = 7, 2


def match_flow(
    previous: torch.Tensor, base: torch.Tensor, log_tau: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Block matching at half resolution: for each place of ``base`` (B, 3, H, W), how far the
    best-matching place of ``previous`` (B, 3, H, W) is, as a soft arg-min over the shifts
    within :data:`MATCH_X`, :data:`MATCH_Y` of the 3x3-block mean absolute difference.
    Returns the flow (B, 2, H/2, W/2) in full-resolution pixels (x, y) and the best cost
    (B, 1, H/2, W/2)."""
    prev, ref = F.avg_pool2d(previous, 2), F.avg_pool2d(base, 2)  # (B, 3, h, w)
    b, c, h, w = ref.shape
    kh, kw = 2 * MATCH_Y + 1, 2 * MATCH_X + 1
    padded = F.pad(prev, (MATCH_X, MATCH_X, MATCH_Y, MATCH_Y), mode="replicate")
    shifted = F.unfold(padded, (kh, kw)).view(b, c, kh * kw, h, w)  # every shift of prev
    cost = (shifted - ref[:, :, None]).abs().mean(1)  # (B, D, h, w)
    cost = F.avg_pool2d(cost, 3, 1, 1, count_include_pad=False)  # over 3x3 blocks
    weights = torch.softmax(-cost / log_tau.exp(), 1)
    dy, dx = torch.meshgrid(
        torch.arange(-MATCH_Y, MATCH_Y + 1, device=ref.device, dtype=ref.dtype),
        torch.arange(-MATCH_X, MATCH_X + 1, device=ref.device, dtype=ref.dtype),
        indexing="ij",
    )
    flow = torch.stack(
        [(weights * dx.reshape(1, -1, 1, 1)).sum(1), (weights * dy.reshape(1, -1, 1, 1)).sum(1)],
        1,
    )  # (B, 2, h, w), half-resolution pixels
    return 2.0 * flow, cost.min(1, keepdim=True).values


def _conv(c_in: int, c_out: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2 if stride == 1 else 1)


class _Res(nn.Module):
    """Two 3x3 convolutions with a skip (GroupNorm-free: batch-1 play and training agree)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.a, self.b = _conv(c, c), _conv(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(F.silu(self.a(F.silu(x))))


class ContextDecoder(nn.Module):
    """(codes now, codes before, previous frame) -> frame; see the module docstring.

    Levels run from the code grid (H' = resolution / space_down) up to half resolution, with
    ``width`` channels at half resolution, doubling at each level down. The output at half
    resolution is pixel-shuffled to full resolution (2x2 pixels per cell).
    """

    def __init__(
        self, code_dim: int, resolution: int, space_down: int, width: int, max_flow: float
    ) -> None:
        super().__init__()
        self.levels = int(math.log2(space_down)) - 1  # upsamplings: code grid -> half resolution
        if self.levels < 1:
            raise ValueError("the context decoder needs space_down of at least 4")
        self.resolution, self.max_flow = resolution, max_flow
        widths = [width * 2**i for i in range(self.levels + 1)]  # half resolution first
        # the previous frame and the base, space-to-depth at half resolution (12 channels
        # each), and a has-frame flag
        self.prev_in = _conv(25, widths[0])
        self.prev_down = nn.ModuleList(
            _conv(widths[i], widths[i + 1], 4, 2) for i in range(self.levels)
        )
        self.codes_in = nn.Conv2d(2 * code_dim, widths[-1], 1)
        self.bottom = nn.Sequential(_conv(2 * widths[-1], widths[-1]), _Res(widths[-1]))
        self.up = nn.ModuleList(_conv(widths[i + 1], widths[i]) for i in range(self.levels))
        # each level but the top merges the previous frame's features of its size
        self.merge = nn.ModuleList(
            nn.Sequential(_conv(2 * widths[i], widths[i]), _Res(widths[i]))
            for i in range(1, self.levels)
        )
        # the block-matched flow's correction, at quarter resolution (tanh * max_flow / 4)
        self.flow = _conv(widths[1] + 3, 2)
        nn.init.zeros_(self.flow.weight)
        nn.init.zeros_(self.flow.bias)
        self.log_tau = nn.Parameter(torch.tensor(math.log(0.01)))  # the matching's softness
        self.top = nn.Sequential(_conv(2 * widths[0] + 24 + 3, widths[0]), _Res(widths[0]))
        self.out = _conv(widths[0], 16)  # 12: the correction, 4: the gate, per 2x2 pixels
        nn.init.zeros_(self.out.weight)
        with torch.no_grad():
            self.out.bias.zero_()
            self.out.bias[12:] = -3.0  # start as the base (gate 0.05)

    def forward(
        self,
        codes: torch.Tensor,
        codes_before: torch.Tensor,
        previous: torch.Tensor,
        has_previous: torch.Tensor,
        base: torch.Tensor,
        aligned: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Frame (B, 3, H, W) for code vectors ``codes`` and ``codes_before`` (B, D, H', W'),
        the previous shown frame (B, 3, H, W), ``has_previous`` (B,) bool (False: no frame
        before; its pixels and codes are then ignored) and the plain decoder's frame ``base``
        (B, 3, H, W). ``aligned``: also return the aligned previous frame (B, 3, H, W), which
        training scores on its own so the flow learns even where the gate does not yet trust
        it."""
        b = codes.shape[0]
        have = has_previous.to(codes.dtype).view(b, 1, 1, 1)
        previous = previous * have
        codes_before = codes_before * have
        half = F.pixel_unshuffle(previous, 2)  # (B, 12, H/2, W/2)
        base_half = F.pixel_unshuffle(base, 2)
        flag = have.expand(b, 1, *half.shape[2:])
        feats = [F.silu(self.prev_in(torch.cat([half, base_half, flag], 1)))]
        for down in self.prev_down:
            feats.append(F.silu(down(feats[-1])))
        x = F.silu(self.codes_in(torch.cat([codes, codes_before], 1)))
        x = self.bottom(torch.cat([x, feats[-1]], 1))
        for i in reversed(range(1, self.levels)):  # up to quarter resolution
            x = F.silu(self.up[i](F.interpolate(x, scale_factor=2.0, mode="nearest")))
            x = self.merge[i - 1](torch.cat([x, feats[i]], 1))
        matched, cost = match_flow(previous, base, self.log_tau)  # half resolution
        evidence = torch.cat([matched, cost], 1) * have
        quarter = F.avg_pool2d(evidence, 2)
        correction = self.max_flow / 4 * torch.tanh(self.flow(torch.cat([x, quarter], 1)))
        flow = matched + F.interpolate(correction, scale_factor=2.0, mode="bilinear")
        aligned_frame = self.warp(previous, flow)
        x = F.silu(self.up[0](F.interpolate(x, scale_factor=2.0, mode="nearest")))
        x = torch.cat([x, feats[0], F.pixel_unshuffle(aligned_frame, 2), base_half, evidence], 1)
        x = self.top(x)
        out = self.out(F.silu(x))
        delta = F.pixel_shuffle(out[:, :12], 2)  # (B, 3, H, W)
        gate = torch.sigmoid(F.pixel_shuffle(out[:, 12:], 2)) * have  # (B, 1, H, W)
        frame = base + gate * (aligned_frame - base) + delta
        return (frame, aligned_frame) if aligned else frame

    def warp(self, frame: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """``frame`` (B, 3, H, W) sampled where ``flow`` (B, 2, h, w) pixels (x, y) points:
        each output pixel shows the frame at its own place plus the flow (bilinear, edges
        repeated). The flow is upsampled bilinearly to full resolution."""
        h, w = frame.shape[2:]
        flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
        ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=frame.device, dtype=frame.dtype)
        xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=frame.device, dtype=frame.dtype)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)  # (H, W, 2): x, y
        scale = torch.tensor([2.0 / w, 2.0 / h], device=frame.device, dtype=frame.dtype)
        grid = grid[None] + flow.permute(0, 2, 3, 1) * scale  # (B, H, W, 2)
        return F.grid_sample(frame, grid, "bilinear", "border", align_corners=False)
