"""Per-frame image quality metrics: PSNR and SSIM (Wang et al. 2004).

Both take two arrays of frames of the same shape (..., H, W, C), uint8 in [0, 255] or float in
[0, ``data_range``], and return one float64 value per frame, shape ``a.shape[:-3]``; average
them yourself (``.mean()``) for a single number.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_CHUNK_FRAMES = 128  # frames converted to float64 at a time: ~200 MB for 64×64 RGB SSIM

FrameMetric = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def _per_frame(metric: FrameMetric, a: np.ndarray, b: np.ndarray, data_range: float) -> np.ndarray:
    """Apply ``metric`` to float64 (F, C, H, W) chunks of two frame arrays (..., H, W, C).

    Chunking keeps memory bounded when thousands of frames are scored at once.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim < 3:
        raise ValueError(f"expected two arrays of frames (..., H, W, C), got {a.shape}, {b.shape}")
    *lead, h, w, c = a.shape
    a, b = a.reshape(-1, h, w, c), b.reshape(-1, h, w, c)
    scores = torch.zeros(len(a), dtype=torch.float64)
    for i in range(0, len(a), _CHUNK_FRAMES):
        x, y = (
            torch.from_numpy(v[i : i + _CHUNK_FRAMES].astype(np.float64)).permute(0, 3, 1, 2)
            for v in (a, b)
        )  # (F, C, H, W)
        scores[i : i + len(x)] = metric(x, y, data_range)
    return scores.numpy().reshape(lead)


def _psnr_frames(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """PSNR of float64 (F, C, H, W) frame pairs -> (F,); +inf where a pair is identical."""
    mse = ((x - y) ** 2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(data_range**2 / mse)


# Averages over frames clip each frame's PSNR here: an exact copy scores +inf, and a mean with
# one inf in it says nothing. 60 dB is an RMS error of a quarter of one grey level.
PSNR_CAP = 60.0


def capped_psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """:func:`psnr` clipped at :data:`PSNR_CAP`, so that it can be averaged."""
    return np.minimum(psnr(a, b, data_range), PSNR_CAP)


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """Peak signal-to-noise ratio in dB, per frame.

    Args:
        a, b: (..., H, W, C) frames, uint8 or float, values in [0, data_range].
        data_range: the peak value (255 for uint8).

    Returns:
        float64, shape ``a.shape[:-3]``. Identical frames give +inf, so a mean over frames that
        include an exact copy is +inf too.
    """
    return _per_frame(_psnr_frames, a, b, data_range)


def _gaussian_valid_filter(size: int) -> torch.Tensor:
    """float64 (size - 10, size): row i is the 11-tap Gaussian placed at columns i..i+10.

    ``G_H @ X @ G_W.T`` is the 'valid' Gaussian filtering of an (H, W) image; on CPU this banded
    matmul is an order of magnitude faster than a one-channel conv2d.
    """
    taps = torch.arange(SSIM_WINDOW, dtype=torch.float64) - SSIM_WINDOW // 2
    window = torch.exp(-0.5 * (taps / SSIM_SIGMA) ** 2)
    window /= window.sum()
    rows = size - SSIM_WINDOW + 1
    columns = torch.arange(rows)[:, None] + torch.arange(SSIM_WINDOW)[None, :]  # (rows, 11)
    matrix = torch.zeros(rows, size, dtype=torch.float64)
    return matrix.scatter_(1, columns, window.expand(rows, SSIM_WINDOW))


def _ssim_frames(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """SSIM of float64 (F, C, H, W) frame pairs -> (F,), the mean over channels and positions."""
    h, w = x.shape[-2:]
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least 11×11 pixels, got {h}×{w}")
    gh, gw = _gaussian_valid_filter(h), _gaussian_valid_filter(w)
    maps = torch.stack([x, y, x * x, y * y, x * y], dim=1)  # (F, 5, C, H, W)
    mu_x, mu_y, ex2, ey2, exy = (gh @ maps @ gw.T).unbind(1)  # each (F, C, H-10, W-10)
    # Gaussian-weighted moments without Bessel correction, as in Wang et al.
    var_x, var_y, cov = ex2 - mu_x**2, ey2 - mu_y**2, exy - mu_x * mu_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (numerator / denominator).mean(dim=(1, 2, 3))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """Structural similarity (Wang et al. 2004), per frame.

    The standard definition: an 11×11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03,
    'valid' filtering (no padding), computed per channel and averaged over channels and
    positions.

    Args:
        a, b: (..., H, W, C) frames with H, W >= 11, uint8 or float, values in [0, data_range].
        data_range: the peak value (255 for uint8).

    Returns:
        float64 in [-1, 1], shape ``a.shape[:-3]``; 1 for identical frames.
    """
    return _per_frame(_ssim_frames, a, b, data_range)


def detail(frames: np.ndarray) -> float:
    """Mean absolute difference of (..., H, W, C) frames from their own 3×3 box blur (edge
    pixels replicated): the fine texture that MSE-trained decoders average away. A decoder's
    detail divided by the real frames' says how much of it survives (1 = as much as real)."""
    x = torch.from_numpy(np.asarray(frames, dtype=np.float32))
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2)  # (F, C, H, W)
    blur = torch.nn.functional.avg_pool2d(
        torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1
    )
    return float((x - blur).abs().mean())
