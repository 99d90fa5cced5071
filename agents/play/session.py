"""One play session: the real game and/or the dream, stepped together by the same actions.

No pygame here: the session turns an action into frames and predictions, and the game loop
(``agents.play.loop``) draws them. Both sides start from the same real frames: the real game is
reset and stepped ``warmup`` times, and those frames are the dream's context.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from agents.doom_env import DoomEnv, make_env
from worldmodel.sampling import Dreamer, SamplingConfig
from worldmodel.world_model import WorldModel

MODES = ("dream", "real", "side-by-side")


@dataclass
class View:
    """What one step shows. Frames are (64, 64, 3) uint8 (one per displayed frame)."""

    dream: list[np.ndarray] = field(default_factory=list)
    real: list[np.ndarray] = field(default_factory=list)
    reward_pred: float = 0.0
    done_prob: float = 0.0
    real_reward: float = 0.0
    timing: dict[str, float] = field(default_factory=dict)  # seconds: prior, decode, real


class PlaySession:
    def __init__(
        self,
        env_name: str,
        mode: str,
        model: WorldModel | None,
        temperature: float = 1.0,
        seed: int = 0,
        warmup: int | None = None,
        done_threshold: float = 0.5,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode != "real" and model is None:
            raise ValueError(f"mode {mode!r} needs a world model")
        self.mode, self.model, self.seed = mode, model, seed
        self.real: DoomEnv = make_env(env_name)
        self.scenario = self.real.scenario
        self.temperature = temperature
        self.done_threshold = done_threshold
        self.dreamer: Dreamer | None = model.dreamer(1, self._sampling(), seed) if model else None
        s = model.frames_per_step if model else 1
        if warmup is None:  # half the prior's window of real frames (at least one step)
            warmup = max(s, (self.dreamer.window // 2) * s if self.dreamer else 1) - 1
        self.warmup = warmup
        self.frames_per_step = s
        self.episode = -1
        self.steps = 0
        self.dream_over = self.real_over = False
        self.dream_frame: np.ndarray | None = None
        self.real_frame: np.ndarray | None = None

    def _sampling(self) -> SamplingConfig:
        return SamplingConfig(temperature=self.temperature)

    def set_temperature(self, value: float) -> None:
        self.temperature = float(np.clip(value, 0.0, 3.0))
        if self.dreamer is not None:
            self.dreamer.sampling = dataclasses.replace(
                self.dreamer.sampling, temperature=self.temperature
            )

    def restart(self) -> View:
        """A fresh real start (the next seed), shared by both sides."""
        self.episode += 1
        obs, _ = self.real.reset(seed=self.seed + self.episode)
        frames, actions = [obs], [-1]
        for _ in range(self.warmup):  # stand still while the dream's context fills
            obs, *_ = self.real.step(0)
            frames.append(obs)
            actions.append(0)
        if self.dreamer is not None:
            s = self.frames_per_step
            keep = len(frames) // s * s
            self.dreamer.start(np.stack(frames[-keep:])[None], np.array(actions[-keep:])[None])
        self.steps = 0
        self.dream_over = self.real_over = False
        self.dream_frame = self.real_frame = obs
        return View(dream=[obs] if self.shows_dream else [], real=[obs] if self.shows_real else [])

    @property
    def shows_dream(self) -> bool:
        return self.mode in ("dream", "side-by-side")

    @property
    def shows_real(self) -> bool:
        return self.mode in ("real", "side-by-side")

    @property
    def over(self) -> bool:
        return (not self.shows_dream or self.dream_over) and (not self.shows_real or self.real_over)

    def step(self, action: int) -> View:
        """Advance every shown side by one latent step (``frames_per_step`` frames)."""
        view = View()
        if self.shows_dream and not self.dream_over:
            assert self.dreamer is not None
            t0 = time.perf_counter()
            out = self.dreamer.step(np.full((1, self.frames_per_step), action))
            view.timing.update(self.dreamer.timing)
            view.timing["dream"] = time.perf_counter() - t0
            view.dream = list(out.frames[0])
            view.reward_pred, view.done_prob = float(out.reward[0]), float(out.done_prob[0])
            self.dream_frame = view.dream[-1]
            self.dream_over = view.done_prob > self.done_threshold
        if self.shows_real and not self.real_over:
            t0 = time.perf_counter()
            for _ in range(self.frames_per_step):
                obs, reward, term, trunc, _ = self.real.step(action)
                view.real.append(obs)
                view.real_reward += reward
                if term or trunc:
                    self.real_over = True
                    break
            self.real_frame = view.real[-1]
            view.timing["real"] = time.perf_counter() - t0
        self.steps += 1
        return view

    def close(self) -> None:
        self.real.close()
