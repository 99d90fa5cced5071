"""Recording a session: a video of what was shown (MP4 or GIF) plus a JSON action log.

The log (``FILE.actions.json`` next to the video) holds the env, mode, seed, sampling and
starting temperature and every step's action and temperature (and ``resync`` on a step the
player re-synced the dream before), so ``play.py --policy script:FILE.actions.json`` replays
the session with the same env, seed and sampling, temperature changes and re-syncs included.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def action_log_path(video: Path) -> Path:
    return video.with_name(video.stem + ".actions.json")


def read_header(log: Path) -> dict[str, Any]:
    """What an action log says of how it was played (env, mode, seed, sampling, ...): the log
    without its steps. Raises ``ValueError`` for a file that is not an action log."""
    try:
        data = json.loads(log.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{log} is not a recorded action log ({type(e).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise ValueError(f"{log} is not a recorded action log (no list of steps)")
    return {k: v for k, v in data.items() if k != "steps"}


def mp4_writer(path: Path, fps: float) -> Any:
    """An imageio writer of H.264 MP4 frames ((H, W, 3) uint8, any size: no macro-block
    padding); ``append_data`` each frame, then ``close``."""
    import imageio.v2 as imageio

    return imageio.get_writer(
        str(path),
        fps=fps,
        codec="libx264",
        quality=8,
        macro_block_size=1,
        ffmpeg_log_level="error",
    )


class Recorder:
    def __init__(self, path: Path, fps: float, header: dict[str, Any]) -> None:
        if path.suffix.lower() not in (".mp4", ".gif"):
            raise ValueError(f"--record needs a .mp4 or .gif file name, got {path.name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.fps, self.header = path, fps, header
        self.frames = 0
        self.steps: list[dict[str, Any]] = []
        self._gif: list[np.ndarray] = []
        self._writer = None
        if path.suffix.lower() == ".mp4":
            self._writer = mp4_writer(path, fps)

    def frame(self, pixels: np.ndarray) -> None:
        """Add one shown frame, (H, W, 3) uint8."""
        self.frames += 1
        if self._writer is not None:
            self._writer.append_data(pixels)
        else:
            self._gif.append(pixels[::2, ::2].copy())  # half size keeps GIFs small

    def step(self, entry: dict[str, Any]) -> None:
        self.steps.append(entry)

    def close(self) -> None:
        # The small action log first: it replays the whole session even if the video fails.
        log = action_log_path(self.path)
        tmp = log.with_name(log.name + ".tmp")
        tmp.write_text(
            json.dumps({**self.header, "frames": self.frames, "steps": self.steps}, indent=1)
        )
        os.replace(tmp, log)
        if self._writer is not None:
            self._writer.close()
        elif self._gif:
            import imageio.v3 as iio

            iio.imwrite(
                self.path, np.stack(self._gif), extension=".gif", duration=1000 / self.fps, loop=0
            )
