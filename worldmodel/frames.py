"""The one place frames change representation.

Outside the model frames are uint8 RGB, channel-last, in [0, 255]: (..., H, W, 3).
Inside they are float32, channel-first video tensors in [-0.5, 0.5]: (B, 3, T, H, W).
"""

from __future__ import annotations

import numpy as np
import torch


def to_model(frames: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (B, T, H, W, 3) in [0, 255] -> float32 (B, 3, T, H, W) in [-0.5, 0.5]."""
    x = torch.as_tensor(frames, device=device)
    if x.dtype != torch.uint8 or x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 (B, T, H, W, 3) frames, got {x.dtype} {tuple(x.shape)}")
    return x.permute(0, 4, 1, 2, 3).float().div_(255.0).sub_(0.5)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (B, 3, T, H, W) in [-0.5, 0.5] -> uint8 (B, T, H, W, 3) in [0, 255] (clipped)."""
    y = ((x.detach().float() + 0.5) * 255.0).round_().clamp_(0, 255).to(torch.uint8)
    return y.permute(0, 2, 3, 4, 1).cpu().numpy()
