"""Animated GIFs of clips side by side, for checking models by eye."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np


def clip_grid(rows: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Tile clips into one video. ``rows[r]`` is (N, T, H, W, 3) uint8: row r shows N clips
    side by side. Returns (T, rows * (H + gap), N * (W + gap), 3) uint8."""
    t = min(r.shape[1] for r in rows)
    n, _, h, w, _ = rows[0].shape
    out = np.full((t, len(rows) * (h + gap), n * (w + gap), 3), 255, dtype=np.uint8)
    for r, clips in enumerate(rows):
        for i in range(n):
            out[:, r * (h + gap) : r * (h + gap) + h, i * (w + gap) : i * (w + gap) + w] = clips[
                i, :t
            ]
    return out


def gif_bytes(video: np.ndarray, fps: float = 8.75, scale: int = 2) -> bytes:
    """(T, H, W, 3) uint8 as the bytes of a looping GIF, enlarged ``scale``x (nearest)."""
    big = video.repeat(scale, axis=1).repeat(scale, axis=2)
    return iio.imwrite("<bytes>", big, extension=".gif", duration=1000 / fps, loop=0)


def write_gif(path: Path, video: np.ndarray, fps: float = 8.75, scale: int = 2) -> None:
    """Write (T, H, W, 3) uint8 as a looping GIF, enlarged ``scale``x (nearest neighbour)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    big = video.repeat(scale, axis=1).repeat(scale, axis=2)
    tmp = path.with_name(path.name + ".tmp")
    iio.imwrite(tmp, big, extension=".gif", duration=1000 / fps, loop=0)
    tmp.replace(path)
