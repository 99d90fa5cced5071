"""A small patch discriminator for fine-tuning the tokenizer's decoder (trained from scratch).

It scores overlapping patches of each frame as real or decoded (PatchGAN, Isola et al. 2017),
so the decoder is pushed towards the local texture statistics of real frames, which an MSE
loss averages away. With ``temporal=True`` each frame is shown together with its difference
from the previous frame, so flicker between frames is visible to it as well.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchDiscriminator(nn.Module):
    """Frames (B, 3, T, H, W) in [-0.5, 0.5] -> patch logits and intermediate features.

    ``layers`` stride-2 convolutions (kernel 4) widen from ``channels``; a 3×3 convolution then
    gives one logit per patch. Its receptive field is 34 pixels for 3 layers.
    """

    def __init__(self, channels: int = 32, layers: int = 3, temporal: bool = False) -> None:
        super().__init__()
        self.temporal = temporal
        c_in = 6 if temporal else 3
        convs = []
        for i in range(layers):
            c_out = channels * 2**i
            convs.append(nn.Conv2d(c_in, c_out, 4, 2, 1))
            c_in = c_out
        self.convs = nn.ModuleList(convs)
        self.head = nn.Conv2d(c_in, 1, 3, 1, 1)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (B, T', h, w) and each layer's activations (for feature matching).

        With ``temporal`` the first frame only serves as the previous frame of the second,
        so T' = T - 1; otherwise T' = T.
        """
        b, _, t = frames.shape[:3]
        x = frames
        if self.temporal:
            x = torch.cat([x[:, :, 1:], x[:, :, 1:] - x[:, :, :-1]], 1)  # (B, 6, T - 1, H, W)
            t -= 1
        x = x.transpose(1, 2).reshape(b * t, x.shape[1], *x.shape[3:])  # (B*T', C, H, W)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            features.append(x)
        logits = self.head(x)  # (B*T', 1, h, w)
        return logits.view(b, t, *logits.shape[2:]), features


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the discriminator (Lim & Ye 2017): real logits above 1, fake below -1."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def feature_matching(fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    """Mean L1 distance between the discriminator's features of decoded and real frames."""
    terms = [(f - r.detach()).abs().mean() for f, r in zip(fake, real, strict=True)]
    return torch.stack(terms).mean()
