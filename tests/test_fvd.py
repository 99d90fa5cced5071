"""FVD: I3D against the TF-Hub reference output, the TF1 resize, the Fréchet distance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from tests.conftest import I3D_WEIGHTS, needs_i3d
from worldmodel.fvd import (
    I3DFeatures,
    feature_stats,
    frechet_distance,
    fvd,
    preprocess,
    tf1_resize_bilinear,
)


@pytest.fixture(scope="module")
def extractor() -> I3DFeatures:
    return I3DFeatures(I3D_WEIGHTS)


def synthetic_videos(n: int, seed: int, frames: int = 16) -> np.ndarray:
    """uint8 (n, frames, 64, 64, 3): drifting coloured stripes with a moving bright square."""
    rng = np.random.default_rng(seed)
    t, y, x = np.ogrid[:frames, :64, :64]
    videos = np.empty((n, frames, 64, 64, 3), dtype=np.uint8)
    for i in range(n):
        fy, fx, speed = rng.uniform(0.05, 0.3, size=3)
        colour = rng.uniform(0.3, 1.0, size=3)
        stripes = 0.5 + 0.5 * np.sin(fy * y + fx * x + speed * t)  # (frames, 64, 64)
        video = 200 * stripes[..., None] * colour
        row, col = rng.integers(0, 48, size=2)
        for k in range(frames):
            video[k, row : row + 16, (col + 2 * k) % 48 :][:, :16] = 255
        videos[i] = video.astype(np.uint8)
    return videos


def add_noise(videos: np.ndarray, std: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, std, size=videos.shape)
    return np.clip(videos + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def features(extractor: I3DFeatures) -> dict[float, np.ndarray]:
    """I3D features of 6 clean videos and of the same videos with Gaussian noise, by noise std.

    Six videos keep this at ~40 s on 2 busy CPU cores; FVD itself should use 256 or more.
    """
    clean = synthetic_videos(6, seed=0)
    return {std: extractor(add_noise(clean, std, seed=1), batch_size=3) for std in (0, 5, 20)}


@needs_i3d
def test_i3d_matches_tf_hub_reference_output(extractor: I3DFeatures) -> None:
    n, t, h, w, c = np.ogrid[:2, :16, :224, :224, :3]
    x = (0.9 * np.sin(0.05 * h + 0.07 * w + 0.3 * t + 1.3 * c + 2.1 * n)).astype(np.float32)
    x = torch.from_numpy(x).permute(0, 4, 1, 2, 3)  # (2, 3, 16, 224, 224)
    with torch.inference_mode():
        logits = extractor.net(x).double().numpy()  # (2, 400)
    assert logits.argmax(axis=1).tolist() == [327, 327]
    np.testing.assert_allclose(np.linalg.norm(logits, axis=1), [78.9600, 74.7572], atol=1e-3)
    reference = [5.0658, 5.5619, 4.1127, 2.7421, -0.1964]
    np.testing.assert_allclose(logits[0, :5], reference, atol=1e-3)


def tf1_resize_loop(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TF1 resize_bilinear written out pixel by pixel: source = dst * in / out, edge-clamped."""
    in_h, in_w = image.shape
    out = np.empty((out_h, out_w))
    for i in range(out_h):
        sy = i * in_h / out_h
        y0 = int(np.floor(sy))
        y1, dy = min(y0 + 1, in_h - 1), sy - y0
        for j in range(out_w):
            sx = j * in_w / out_w
            x0 = int(np.floor(sx))
            x1, dx = min(x0 + 1, in_w - 1), sx - x0
            top = image[y0, x0] + (image[y0, x1] - image[y0, x0]) * dx
            bottom = image[y1, x0] + (image[y1, x1] - image[y1, x0]) * dx
            out[i, j] = top + (bottom - top) * dy
    return out


@pytest.mark.parametrize("out_size", [(13, 29), (3, 5), (7, 11)])
def test_tf1_resize_matches_the_formula(out_size: tuple[int, int]) -> None:
    images = np.random.default_rng(0).uniform(0, 255, size=(2, 7, 11))
    resized = tf1_resize_bilinear(torch.from_numpy(images), out_size)
    assert resized.dtype == torch.float32 and resized.shape == (2, *out_size)
    for image, result in zip(images, resized, strict=True):
        np.testing.assert_allclose(result.numpy(), tf1_resize_loop(image, *out_size), atol=1e-3)


def test_tf1_resize_is_not_half_pixel_interpolate() -> None:
    image = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    tf1 = tf1_resize_bilinear(image, (56, 56))
    half_pixel = F.interpolate(image, size=(56, 56), mode="bilinear", align_corners=False)
    assert (tf1 - half_pixel).abs().max() > 0.05
    assert tf1[..., 0, 0] == image[..., 0, 0]  # no half-pixel shift: corners line up


def test_preprocess_shapes_and_range() -> None:
    videos = np.zeros((2, 9, 8, 8, 3), dtype=np.uint8)
    videos[1] = 255
    x = preprocess(videos)
    assert x.dtype == torch.float32 and x.shape == (2, 3, 9, 224, 224)
    assert (x[0] == -1).all() and (x[1] == 1).all()


def test_preprocess_refuses_short_clips_and_wrong_dtype() -> None:
    with pytest.raises(ValueError, match="at least 9 frames"):
        preprocess(np.zeros((1, 8, 64, 64, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        preprocess(np.zeros((1, 16, 64, 64, 3), dtype=np.float32))


def test_missing_or_wrong_weights_say_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"i3d_kinetics400_tfhub_rgb\.pt"):
        I3DFeatures(tmp_path / "missing.pt")
    wrong = tmp_path / "wrong.pt"
    torch.save({"weight": torch.zeros(3)}, wrong)
    with pytest.raises(ValueError, match=r"i3d_kinetics400_tfhub_rgb\.pt"):
        I3DFeatures(wrong)


def frechet_by_eigenvalues(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """tr((s1 s2)^½) as the sum of square roots of the eigenvalues of s1^½ s2 s1^½."""
    root1 = scipy.linalg.sqrtm(sigma1).real
    eigenvalues = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def test_frechet_distance_matches_direct_computation() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 16))
    b = rng.normal(size=(200, 16)) @ rng.normal(size=(16, 16)) * 0.5 + 1.0
    stats_a, stats_b = feature_stats(a), feature_stats(b)
    np.testing.assert_allclose(stats_a[1], np.cov(a.T))
    expected = frechet_by_eigenvalues(*stats_a, *stats_b)
    assert frechet_distance(*stats_a, *stats_b) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(*stats_a, *stats_a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_diagonal_gaussians() -> None:
    mu1, mu2 = np.array([0.0, 1.0]), np.array([3.0, 1.0])
    var1, var2 = np.array([4.0, 1.0]), np.array([1.0, 9.0])
    # (sqrt(v1) - sqrt(v2))² per axis: (2 - 1)² + (1 - 3)² = 5, plus |mu1 - mu2|² = 9.
    distance = frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert distance == pytest.approx(14.0)


@needs_i3d
def test_fvd_grows_with_noise(features: dict[float, np.ndarray]) -> None:
    assert features[0].shape == (6, 400) and features[0].dtype == np.float64
    clean = feature_stats(features[0])
    slight = frechet_distance(*clean, *feature_stats(features[5]))
    heavy = frechet_distance(*clean, *feature_stats(features[20]))
    assert 1.0 < slight < heavy


@needs_i3d
def test_fvd_end_to_end_on_identical_sets(extractor: I3DFeatures) -> None:
    videos = synthetic_videos(2, seed=3, frames=9)
    assert fvd(videos, videos, extractor, batch_size=2) == pytest.approx(0.0, abs=1e-2)
