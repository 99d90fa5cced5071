"""Where dreams start: windows of recorded episodes, the first frames of a real env, or the real
start windows a world model file carries.

The last are a :class:`DreamStarts` bank: the tokenizer's codes of a few real consecutive
latent steps, the actions into their frames and the game variables at them, about 2 KB each
where the frames would take 200 KB. They are drawn from a dataset's cached codes when a model
is exported (:func:`bank_from_codes`), stored in the checkpoint as plain tensors, and the
dreamer starts from the codes directly (``start_codes``), so nothing is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch

from worldmodel.data import DatasetError, EpisodeStore

if TYPE_CHECKING:
    from worldmodel.world_model import WorldModel


@dataclass
class DreamStarts:
    codes: np.ndarray  # (N, n, H', W') int16: n latent steps of real codes
    actions: np.ndarray  # (N, n * s) int16: the action into each frame (-1: none)
    variables: np.ndarray  # (N, n * s, V) float32 game variables at each frame (V may be 0)
    episodes: np.ndarray  # (N,) int64 dataset episode each start comes from
    steps: np.ndarray  # (N,) int64 latent step of the episode each start begins at

    def __len__(self) -> int:
        return len(self.codes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "codes": torch.as_tensor(self.codes.astype(np.int16)),
            "actions": torch.as_tensor(self.actions.astype(np.int16)),
            "variables": torch.as_tensor(self.variables.astype(np.float32)),
            "episodes": torch.as_tensor(self.episodes.astype(np.int64)),
            "steps": torch.as_tensor(self.steps.astype(np.int64)),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DreamStarts:
        return cls(**{k: np.asarray(data[k].numpy()) for k in cls.__dataclass_fields__})


def bank_from_codes(
    codes: Any, n: int, steps: int, frames_per_step: int, seed: int = 0
) -> DreamStarts:
    """``n`` start windows of ``steps`` latent steps drawn evenly from a :class:`CodeSet`."""
    rng = np.random.default_rng(seed)
    usable = [e for e, length in enumerate(codes.lengths) if length >= steps]
    if not usable:
        raise ValueError(f"no episode has {steps} latent steps to start from")
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("c", "a", "v", "e", "s")}
    s = frames_per_step
    for i in range(n):
        e = usable[i % len(usable)]
        p = int(rng.integers(0, codes.lengths[e] - steps + 1))
        g = int(codes.starts[e]) + p
        rows["c"].append(codes.codes[g : g + steps])
        rows["a"].append(codes.actions[g : g + steps].reshape(-1))
        var = codes.variables[g : g + steps]  # at each step's last frame: repeat over its frames
        rows["v"].append(np.repeat(var, s, axis=0))
        rows["e"].append(np.int64(codes.episodes[e]))
        rows["s"].append(np.int64(p))
    return DreamStarts(
        codes=np.stack(rows["c"]).astype(np.int16),
        actions=np.stack(rows["a"]).astype(np.int16),
        variables=np.stack(rows["v"]).astype(np.float32),
        episodes=np.array(rows["e"]),
        steps=np.array(rows["s"]),
    )


@dataclass
class Start:
    frames: np.ndarray | None  # (n, H, W, 3) uint8: real frames, the dream goes on from the last
    actions: np.ndarray  # (n,) int64: the action into each frame (-1: none)
    info: dict[str, Any]  # where they come from; "step": the last frame's step in its episode
    variables: np.ndarray | None = None  # (n, V) float32 game variables at each frame
    codes: np.ndarray | None = None  # (n / s, H', W') the frames' codes, when frames are absent


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
        info = {"episode": self.store.entries[pos].index, "start": start, "step": start + n - 1}
        return Start(item["frames"], item["actions"], info, item.get("variables"))

    def close(self) -> None:
        self.store.close()


class RealEnvStarts:
    """Dream starts from a real env's first frame; if a start needs more frames, random
    actions (from the same ``rng``) play on to fill them."""

    def __init__(self, env: gym.Env, n_actions: int) -> None:
        self.env, self.n_actions = env, n_actions

    def draw(self, rng: np.random.Generator, n: int) -> Start:
        seed = int(rng.integers(0, 2**31 - 1))
        obs, info = self.env.reset(seed=seed)
        frames, actions, variables = [obs], [-1], [info.get("game_variables")]
        for _ in range(n - 1):
            actions.append(int(rng.integers(self.n_actions)))
            obs, _, _, _, info = self.env.step(actions[-1])
            frames.append(obs)
            variables.append(info.get("game_variables"))
        known = all(v is not None for v in variables)
        return Start(
            np.stack(frames),
            np.array(actions, dtype=np.int64),
            {"seed": seed, "step": n - 1},
            np.stack(variables).astype(np.float32) if known else None,
        )

    def close(self) -> None:  # the caller owns the real env
        pass


class BankStarts:
    """Dream starts drawn from the real start windows shipped inside the model."""

    def __init__(self, bank: DreamStarts, frames_per_step: int) -> None:
        self.bank, self.s = bank, frames_per_step

    def draw(self, rng: np.random.Generator, n: int) -> Start:
        have = self.bank.codes.shape[1] * self.s
        if n > have or n % self.s:
            raise DatasetError(
                f"the model's start windows hold {have} frames; a dream cannot start from {n}"
            )
        i = int(rng.integers(len(self.bank)))
        steps = n // self.s
        first = int(self.bank.steps[i]) + self.bank.codes.shape[1] - steps
        info = {"episode": int(self.bank.episodes[i]), "start": first * self.s, "bank": i}
        info["step"] = (first + steps) * self.s - 1
        return Start(
            None,
            self.bank.actions[i, -n:].astype(np.int64),
            info,
            self.bank.variables[i, -n:],
            self.bank.codes[i, -steps:].astype(np.int64),
        )

    def close(self) -> None:
        pass


def make_starts(
    model: WorldModel, data: Path | str | None, real_env: gym.Env | None, split: str
) -> DatasetStarts | RealEnvStarts | BankStarts:
    """Where dreams start: ``data`` (a dataset folder of ``model.env``), ``real_env``, or by
    default the real start windows shipped inside the model."""
    if data is None and real_env is None:
        if model.starts is not None:
            return BankStarts(DreamStarts.from_dict(model.starts), model.frames_per_step)
        raise ValueError(
            f"a dream starts from real frames: pass data=<a dataset folder of {model.env!r} "
            f"episodes> or real_env=<a gymnasium env of {model.env!r}> (this model ships no "
            "start windows of its own)"
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
