"""PSNR and SSIM against hand-computed values and a direct per-pixel implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worldmodel.evaluation.metrics import detail, psnr, ssim


def random_frames(shape: tuple[int, ...], seed: int = 0, high: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, size=shape, dtype=np.uint8)


def test_psnr_of_a_constant_offset() -> None:
    a = random_frames((2, 3, 16, 16, 3), high=251)
    values = psnr(a, a + 5)
    assert values.shape == (2, 3)
    np.testing.assert_allclose(values, 20 * math.log10(255 / 5))


def test_psnr_of_identical_frames_is_infinite() -> None:
    a = random_frames((4, 8, 8, 3))
    assert np.isposinf(psnr(a, a)).all()


def test_psnr_takes_floats_with_their_own_range() -> None:
    a = random_frames((8, 8, 3)).astype(np.float64) / 255
    assert psnr(a, a + 0.1, data_range=1.0) == pytest.approx(20.0)


def ssim_loop(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Wang et al. 2004 SSIM of one (H, W, C) pair, window by window."""
    taps = np.exp(-0.5 * ((np.arange(11) - 5) / 1.5) ** 2)
    window = np.outer(taps, taps) / taps.sum() ** 2
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    h, w, channels = a.shape
    scores = []
    for c in range(channels):
        for i in range(h - 10):
            for j in range(w - 10):
                x = a[i : i + 11, j : j + 11, c].astype(np.float64)
                y = b[i : i + 11, j : j + 11, c].astype(np.float64)
                mx, my = (window * x).sum(), (window * y).sum()
                vx, vy = (window * (x - mx) ** 2).sum(), (window * (y - my) ** 2).sum()
                cov = (window * (x - mx) * (y - my)).sum()
                luminance = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
                structure = (2 * cov + c2) / (vx + vy + c2)
                scores.append(luminance * structure)
    return float(np.mean(scores))


def test_ssim_matches_a_direct_implementation() -> None:
    a = random_frames((2, 17, 23, 3), seed=1)
    b = np.clip(a + np.random.default_rng(2).normal(0, 30, a.shape), 0, 255).astype(np.uint8)
    values = ssim(a, b)
    assert values.shape == (2,)
    np.testing.assert_allclose(values, [ssim_loop(x, y) for x, y in zip(a, b, strict=True)])


def test_ssim_of_identical_frames_is_one() -> None:
    a = random_frames((3, 2, 16, 16, 3))
    np.testing.assert_allclose(ssim(a, a), np.ones((3, 2)))


def test_ssim_is_computed_per_frame_across_chunks() -> None:
    a, b = random_frames((300, 12, 12, 3), seed=3), random_frames((300, 12, 12, 3), seed=4)
    whole = ssim(a, b)
    # Splitting at 100 moves every frame to a different position within its chunk.
    split = np.concatenate([ssim(a[:100], b[:100]), ssim(a[100:], b[100:])])
    np.testing.assert_allclose(whole, split)
    np.testing.assert_allclose(
        ssim(a.reshape(10, 30, 12, 12, 3), b.reshape(10, 30, 12, 12, 3)), whole.reshape(10, 30)
    )


def test_ssim_decreases_with_noise() -> None:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:64, :64]
    frame = (127 + 100 * np.sin(0.2 * x)[..., None] * np.cos(0.15 * y)[..., None]).repeat(3, -1)
    scores = []
    for std in (2, 10, 40):
        noisy = np.clip(frame + rng.normal(0, std, frame.shape), 0, 255).astype(np.uint8)
        scores.append(float(ssim(frame.astype(np.uint8), noisy)))
    assert 1 > scores[0] > scores[1] > scores[2]


def test_metrics_refuse_bad_shapes() -> None:
    with pytest.raises(ValueError, match="frames"):
        ssim(random_frames((2, 16, 16, 3)), random_frames((3, 16, 16, 3)))
    with pytest.raises(ValueError, match="11×11"):
        ssim(random_frames((8, 8, 3)), random_frames((8, 8, 3)))
    with pytest.raises(ValueError, match="frames"):
        psnr(np.zeros((4, 4)), np.zeros((4, 4)))


def test_detail_falls_when_frames_are_blurred() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 16, 16, 3)).astype(np.float32)
    blurred = (
        frames + np.roll(frames, 1, 1) + np.roll(frames, 1, 2) + np.roll(frames, 1, (1, 2))
    ) / 4
    assert detail(np.full_like(frames, 9.0)) == 0.0
    assert 0 < detail(blurred) < 0.6 * detail(frames)
