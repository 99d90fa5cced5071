"""Where dreams start: windows of recorded episodes, or the first frames of a real env."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from worldmodel.data import DatasetError, EpisodeStore

if TYPE_CHECKING:
    from worldmodel.world_model import WorldModel


@dataclass
class Start:
    frames: np.ndarray  # (n, H, W, 3) uint8: real frames, the dream continues from the last
    actions: np.ndarray  # (n,) int64: the action into each frame (-1: none)
    info: dict[str, Any]  # where they come from


class DatasetStarts:
    """Dream starts drawn uniformly over every window of frames of a dataset split."""

    def __init__(self, root: Path | str, split: str, env: str) -> None:
        self.store = EpisodeStore(root, split, env=env)
        self.split = split
        self._ends: dict[int, np.ndarray] = {}

    def windows(self, n: int) -> np.ndarray:
        """Cumulative counts (episodes,) of the windows of ``n`` frames, by episode."""
        if n not in self._ends:
            # An episode of L steps has L + 1 frames; its last one (often a death) is never a
            # start, since dreaming on from there teaches nothing.
            counts = np.array([max(0, e.length + 1 - n) for e in self.store.entries])
            if counts.sum() == 0:
                raise DatasetError(
                    f"no {self.split!r} episode in {self.store.root} has {n + 1} frames; "
                    "pass a smaller context_frames or more data"
                )
            self._ends[n] = np.cumsum(counts)
        return self._ends[n]

    def draw(self, rng: np.random.Generator, n: int) -> Start:
        ends = self.windows(n)
        i = int(rng.integers(ends[-1]))
        pos = int(np.searchsorted(ends, i, side="right"))
        start = i - (int(ends[pos - 1]) if pos else 0)
        item = self.store.read(pos, start, start + n)
        info = {"episode": self.store.entries[pos].index, "start": start}
        return Start(item["frames"], item["actions"], info)

    def close(self) -> None:
        self.store.close()


class RealEnvStarts:
    """Dream starts from a real env's first frame; if a start needs more frames, random
    actions (from the same ``rng``) play on to fill them."""

    def __init__(self, env: gym.Env, n_actions: int) -> None:
        self.env, self.n_actions = env, n_actions

    def draw(self, rng: np.random.Generator, n: int) -> Start:
        seed = int(rng.integers(0, 2**31 - 1))
        obs, _ = self.env.reset(seed=seed)
        frames, actions = [obs], [-1]
        for _ in range(n - 1):
            actions.append(int(rng.integers(self.n_actions)))
            frames.append(self.env.step(actions[-1])[0])
        return Start(np.stack(frames), np.array(actions, dtype=np.int64), {"seed": seed})

    def close(self) -> None:  # the caller owns the real env
        pass


def make_starts(
    model: WorldModel, data: Path | str | None, real_env: gym.Env | None, split: str
) -> DatasetStarts | RealEnvStarts:
    """Where dreams start: ``data`` (a dataset folder of ``model.env``) or ``real_env``."""
    if data is None and real_env is None:
        raise ValueError(
            f"a dream starts from real frames: pass data=<a dataset folder of {model.env!r} "
            f"episodes> or real_env=<a gymnasium env of {model.env!r}>"
        )
    if data is not None and real_env is not None:
        raise ValueError("pass data or real_env, not both: a dream starts from one of them")
    if data is not None:
        return DatasetStarts(data, split, model.env)
    n, r = len(model.action_names), model.tokenizer.config.resolution
    if real_env.action_space != gym.spaces.Discrete(n):
        raise ValueError(f"real_env has actions {real_env.action_space}; the model has {n}")
    if real_env.observation_space.shape != (r, r, 3):
        raise ValueError(
            f"real_env observes {real_env.observation_space.shape}; the model needs ({r}, {r}, 3)"
        )
    return RealEnvStarts(real_env, n)
