"""One play session: the real game and/or the dream, stepped together by the same actions.

No pygame here: the session turns an action into frames and predictions, and the game loop
(``agents.play.loop``) draws them. Both sides start from the same real frames: the real game is
reset and stepped ``warmup`` times, and those frames are the dream's context. Side by side, the
two part within seconds (as any dream does); :meth:`PlaySession.resync` starts the dream again
from the real game's latest frames and game variables, where the game is now.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from agents.doom_env import DoomEnv, make_env
from worldmodel.sampling.raster import Dreamer
from worldmodel.sampling.settings import SamplingConfig
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


@dataclass
class Score:
    """One side's game so far: its game variables now, steps survived and return."""

    variables: np.ndarray | None = None  # (V,) float32; None when this side has no state
    steps: int = 0
    ret: float = 0.0
    over: bool = False
    reason: str = ""  # why it is over: death, timeout, goal, or "" (the end head fired)

    def add(
        self, reward: float, variables: np.ndarray | None, over: bool, reason: str = ""
    ) -> None:
        self.steps += 1
        self.ret += reward
        if variables is not None:
            self.variables = np.asarray(variables, dtype=np.float32)
        self.over = over
        self.reason = reason if over else ""


class PlaySession:
    def __init__(
        self,
        env_name: str,
        mode: str,
        model: WorldModel | None,
        temperature: float | None = None,
        seed: int = 0,
        warmup: int | None = None,
        done_threshold: float = 0.5,
        copy_unchanged: bool | None = None,
        top_p: float | None = None,
        passes: int | None = None,
        keep_likely: float | None = None,
    ) -> None:
        """The sampling settings left None are the model's own (``WorldModel.sampling``)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode != "real" and model is None:
            raise ValueError(f"mode {mode!r} needs a world model")
        self.mode, self.model, self.seed = mode, model, seed
        given = {
            "temperature": temperature,
            "copy_unchanged": copy_unchanged,  # frame prior: still codes keep their pixels
            "top_p": top_p,  # nucleus sampling of the codes
            "passes": passes,  # passes per frame (reveal priors)
            "keep_likely": keep_likely,  # frame prior: keep codes at least this likely to stay
        }
        base = model.sampling if model is not None else SamplingConfig()
        self.sampling = dataclasses.replace(
            base, **{k: v for k, v in given.items() if v is not None}
        )
        self.done_threshold = done_threshold
        self.dreamer: Dreamer | None = model.dreamer(1, self.sampling, seed) if model else None
        self.real: DoomEnv = make_env(env_name)  # after the dreamer, which checks its settings
        self.scenario = self.real.scenario
        s = model.frames_per_step if model else 1
        if warmup is None:  # half the prior's window of real frames (at least one step)
            warmup = max(s, (self.dreamer.window // 2) * s if self.dreamer else 1) - 1
        self.warmup = warmup
        self.frames_per_step = s
        self.episode = -1
        self.steps = 0
        self.dream_score, self.real_score = Score(), Score()
        self.dream_frame: np.ndarray | None = None
        self.real_frame: np.ndarray | None = None
        # the real game's latest frames, the actions into them and the variables at them: a
        # dream's context, to start from again (resync)
        self._recent: deque[tuple[np.ndarray, int, np.ndarray]] = deque(maxlen=warmup + 1)
        self.variable_names = list(self.real.variable_names)
        if model is not None and model.game.size and list(model.game.names) != self.variable_names:
            raise ValueError(
                f"the model carries {list(model.game.names)}, the game has {self.variable_names}"
            )

    @property
    def has_state(self) -> bool:
        """Whether the dream carries the game state (else it never ends on its own)."""
        return self.model is not None and bool(self.model.game.size)

    @property
    def dream_over(self) -> bool:
        return self.dream_score.over

    @property
    def real_over(self) -> bool:
        return self.real_score.over

    @property
    def temperature(self) -> float:
        return self.sampling.temperature

    def set_temperature(self, value: float) -> None:
        self.sampling = dataclasses.replace(self.sampling, temperature=float(np.clip(value, 0, 3)))
        if self.dreamer is not None:
            self.dreamer.sampling = dataclasses.replace(
                self.dreamer.sampling, temperature=self.temperature
            )

    def restart(self) -> View:
        """A fresh real start (the next seed), shared by both sides."""
        self.episode += 1
        obs, info = self.real.reset(seed=self.seed + self.episode)
        frames, actions, variables = [obs], [-1], [info["game_variables"]]
        for _ in range(self.warmup):  # stand still while the dream's context fills
            obs, _, _, _, info = self.real.step(0)
            frames.append(obs)
            actions.append(0)
            variables.append(info["game_variables"])
        self._recent.clear()
        self._recent.extend(zip(frames, actions, variables, strict=True))
        self._start_dream()
        self.steps = 0
        now = np.asarray(variables[-1], dtype=np.float32)
        self.dream_score = Score(now if self.has_state else None)
        self.real_score = Score(now)
        self.dream_frame = self.real_frame = obs
        return View(dream=[obs] if self.shows_dream else [], real=[obs] if self.shows_real else [])

    def _start_dream(self) -> None:
        """Start the dream from the real game's latest frames (whole latent steps of them)."""
        if self.dreamer is None:
            return
        frames, actions, variables = zip(*self._recent, strict=True)
        keep = len(frames) // self.frames_per_step * self.frames_per_step
        self.dreamer.start(
            np.stack(frames[-keep:])[None],
            np.array(actions[-keep:])[None],
            np.stack(variables[-keep:])[None],
        )

    def resync(self) -> View | None:
        """Side by side: start the dream again from where the real game is now (its latest
        frames and game variables, its steps and return so far). None when there is nothing to
        resync: another mode, or a real game that has ended."""
        if self.mode != "side-by-side" or self.real_over:
            return None
        self._start_dream()
        real = self.real_score
        variables = real.variables.copy() if self.has_state and real.variables is not None else None
        self.dream_score = Score(variables, real.steps, real.ret)
        self.dream_frame = self.real_frame
        return View(dream=[self.real_frame], real=[])

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
            dream_vars = None if out.variables is None else out.variables[0]
            over = view.done_prob > self.done_threshold
            reason = "death" if dream_vars is not None and over else ""
            self.dream_score.add(view.reward_pred, dream_vars, over, reason)
        if self.shows_real and not self.real_over:
            t0 = time.perf_counter()
            over = False
            for _ in range(self.frames_per_step):
                obs, reward, term, trunc, info = self.real.step(action)
                view.real.append(obs)
                view.real_reward += reward
                self._recent.append((obs, action, info["game_variables"]))
                if term or trunc:
                    over = True
                    break
            self.real_frame = view.real[-1]
            reason = info.get("end_reason", "")
            self.real_score.add(view.real_reward, info["game_variables"], over, reason)
            view.timing["real"] = time.perf_counter() - t0
        self.steps += 1
        return view

    def close(self) -> None:
        self.real.close()
