"""Fréchet Video Distance, computed the way the reference (Unterthiner et al. 2018) computes it.

Videos are resized to 224×224 with TF1's bilinear resize, scaled to [-1, 1], embedded by the
TF-Hub I3D (time-averaged pre-softmax logits, 400-d), and the Fréchet distance between Gaussians
fitted to the two embedding sets is the FVD.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from worldmodel.fvd.i3d import INPUT_SIZE, MIN_FRAMES, NUM_CLASSES, InceptionI3d

WEIGHTS_HINT = "pass the path to i3d_kinetics400_tfhub_rgb.pt (see shared/data/i3d/README.md)"


def _tf1_source_index(
    in_size: int, out_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Neighbour indices and weights along one axis for TF1's legacy bilinear resize.

    TF1 maps output pixel ``i`` to source coordinate ``i * in/out`` (no half-pixel offset) in
    float32 and clamps the upper neighbour at the edge.
    """
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    src = torch.arange(out_size, dtype=torch.float32) * scale
    lower = src.floor().long()
    upper = (lower + 1).clamp(max=in_size - 1)
    frac = src - lower.float()
    return lower.to(device), upper.to(device), frac.to(device)


def tf1_resize_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TF1 ``tf.image.resize_bilinear`` (align_corners=False, half_pixel_centers=False).

    ``F.interpolate(mode="bilinear")`` uses half-pixel centres and shifts the image by a fraction
    of a pixel, which moves I3D logits by up to 0.74 on a 64 -> 224 resize.

    Args:
        x: float (..., H, W).
        size: (out_h, out_w).

    Returns:
        float32 (..., out_h, out_w).
    """
    x = x.float()
    y0, y1, wy = _tf1_source_index(x.shape[-2], size[0], x.device)
    x0, x1, wx = _tf1_source_index(x.shape[-1], size[1], x.device)
    # Along W first, then H: the same order of operations as TF's top/bottom lerp.
    left, right = x[..., x0], x[..., x1]  # (..., H, out_w)
    rows = left + (right - left) * wx
    top, bottom = rows[..., y0, :], rows[..., y1, :]  # (..., out_h, out_w)
    return top + (bottom - top) * wy[:, None]


def preprocess(videos: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Turn uint8 videos into I3D input.

    Args:
        videos: uint8 (N, T, H, W, 3), RGB in [0, 255], T >= 9.

    Returns:
        float32 (N, 3, T, 224, 224) in [-1, 1], on the device of ``videos``.
    """
    videos = torch.as_tensor(videos)
    if videos.ndim != 5 or videos.shape[-1] != 3 or videos.dtype != torch.uint8:
        raise ValueError(
            f"expected uint8 videos of shape (N, T, H, W, 3), got {videos.dtype} "
            f"{tuple(videos.shape)}"
        )
    if videos.shape[1] < MIN_FRAMES:
        raise ValueError(
            f"FVD needs at least {MIN_FRAMES} frames per clip (16 is the norm), "
            f"got {videos.shape[1]}"
        )
    frames = videos.permute(0, 4, 1, 2, 3)  # (N, 3, T, H, W)
    # The reference resizes the 0..255 values and scales afterwards; keep that order so the
    # float32 rounding is the same.
    frames = tf1_resize_bilinear(frames, (INPUT_SIZE, INPUT_SIZE))  # (N, 3, T, 224, 224)
    return 2.0 * frames / 255.0 - 1.0


@contextlib.contextmanager
def _exact_fp32(device: torch.device) -> Iterator[None]:
    """Turn TF32 off for CUDA convs and matmuls: the reference features are full float32."""
    if device.type != "cuda":
        yield
        return
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    saved = conv.fp32_precision, matmul.fp32_precision
    conv.fp32_precision = matmul.fp32_precision = "ieee"
    try:
        yield
    finally:
        conv.fp32_precision, matmul.fp32_precision = saved


class I3DFeatures:
    """The FVD embedding: uint8 videos -> 400-d time-averaged I3D logits.

    Args:
        weights: path to ``i3d_kinetics400_tfhub_rgb.pt``.
        device: where the network runs.
    """

    def __init__(self, weights: Path | str, device: torch.device | str = "cpu") -> None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"I3D weights not found at {path}: {WEIGHTS_HINT}")
        self.net = InceptionI3d()
        try:
            self.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as e:  # a wrong file fails in pickle, torch or load_state_dict
            raise ValueError(f"{path} is not the TF-Hub I3D state dict: {WEIGHTS_HINT}") from e
        self.device = torch.device(device)
        self.net.to(self.device).eval()

    def __call__(
        self,
        videos: np.ndarray | torch.Tensor,
        batch_size: int = 16,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Embed videos.

        Args:
            videos: uint8 (N, T, H, W, 3), RGB in [0, 255], T >= 9; resized to 224×224 here.
            batch_size: videos per forward pass.
            progress: called as ``progress(done, total)`` after each batch.

        Returns:
            float64 (N, 400).
        """
        videos = torch.as_tensor(videos)
        n = len(videos)
        features = np.empty((n, NUM_CLASSES), dtype=np.float64)
        with torch.inference_mode(), _exact_fp32(self.device):
            for start in range(0, n, batch_size):
                batch = videos[start : start + batch_size].to(self.device)
                logits = self.net(preprocess(batch))  # (B, 400)
                features[start : start + len(batch)] = logits.double().cpu().numpy()
                if progress is not None:
                    progress(start + len(batch), n)
        return features


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of float (N, D) features, N >= 2, in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need (N, D) features with N >= 2, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    eps: float = 1e-6,
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``|mu1 - mu2|² + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^½)``, in float64.

    With fewer samples than dimensions the covariances are singular and the matrix square root
    can come out non-finite; then ``eps`` is added to both diagonals, as the reference
    implementations do. Rounding leaves a tiny imaginary part, which is dropped.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = eps * np.eye(len(sigma1))
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imaginary = np.abs(covmean.diagonal().imag).max()
        if imaginary > 1e-3:
            raise ValueError(f"matrix square root has imaginary part {imaginary:.3g}")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fvd(
    real_videos: np.ndarray | torch.Tensor,
    fake_videos: np.ndarray | torch.Tensor,
    extractor: I3DFeatures,
    batch_size: int = 16,
) -> float:
    """Fréchet Video Distance between two sets of videos.

    Clips need at least 9 frames (16 is the norm). The paper reports FVD on 256 videos per set
    (2048 is the other common choice); the estimate is biased upward when the sets are smaller,
    so only compare FVDs computed with the same number of videos.

    Args:
        real_videos: uint8 (N, T, H, W, 3), RGB in [0, 255], N >= 2.
        fake_videos: uint8 (M, T', H', W', 3), same conventions.
        extractor: the I3D embedding.
        batch_size: videos per I3D forward pass.

    Returns:
        The FVD (>= 0 up to rounding).
    """
    real = feature_stats(extractor(real_videos, batch_size))
    fake = feature_stats(extractor(fake_videos, batch_size))
    return frechet_distance(*real, *fake)
