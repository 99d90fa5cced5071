"""N dreams that start, step and restart from real starts: what the dream envs run.

Reward and ``terminated`` come from the dreamed game state by the scenario's rules (the frame
prior: HEALTH <= 0 ends the episode, ``living_reward`` per tic, ``death_penalty`` on death), or,
for the paper's raster prior, which carries no state, from its reward and end heads. An episode
is truncated at the scenario's timeout, counted from where its real start was in its episode,
or after ``max_steps`` dreamed steps if that is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from worldmodel.dream.starts import BankStarts, DatasetStarts, RealEnvStarts, Start

if TYPE_CHECKING:
    from worldmodel.sampling.settings import SamplingConfig
    from worldmodel.world_model import WorldModel

DEFAULT_MAX_STEPS = 525  # used when neither the model's rules nor the caller set a limit


@dataclass
class BatchStep:
    frames: np.ndarray  # (B, H, W, 3) uint8
    rewards: np.ndarray  # (B,) float64
    terminated: np.ndarray  # (B,) bool
    truncated: np.ndarray  # (B,) bool
    done_prob: np.ndarray  # (B,) float32: predicted chance the episode ended (0/1 with state)
    variables: np.ndarray | None  # (B, V) float32 dreamed game variables, if the model has them


class DreamBatch:
    """Each env step is one latent step of the prior; with ``frames_per_step`` > 1 the action
    is held for every frame of it and the observation is its last frame. ``restart`` draws every
    start, and on a full restart the sampler's seed, from the ``rng`` it is given, so the env's
    ``np_random`` alone decides the whole dream."""

    def __init__(
        self,
        model: WorldModel,
        batch: int,
        starts: DatasetStarts | RealEnvStarts | BankStarts,
        context_frames: int | None,
        max_steps: int | None,
        done_threshold: float,
        sampling: SamplingConfig | None,
    ) -> None:
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        self.model = model
        self.dreamer = model.dreamer(batch, sampling)
        self.batch, self.starts, self.s = batch, starts, model.frames_per_step
        self.max_steps, self.done_threshold = max_steps, done_threshold
        self.timeout = model.game.rules.timeout_steps if model.game.size else None
        # Row restarts must bring as much history as the other rows hold, which grows to the
        # dreamer's whole history: with recorded starts, start every dream with that much.
        most = self.dreamer.history * self.s
        if isinstance(starts, BankStarts):
            most = min(most, starts.bank.codes.shape[1] * self.s)
        if context_frames is None:
            context_frames = self.s if isinstance(starts, RealEnvStarts) else most
        if not 0 < context_frames <= most or context_frames % self.s:
            raise ValueError(
                f"context_frames must be a multiple of {self.s} in [{self.s}, {most}], "
                f"got {context_frames}"
            )
        self.context_frames = context_frames
        if isinstance(starts, DatasetStarts):  # refuse data too short now, not at a restart
            starts.windows(context_frames if batch == 1 else most)
        r = model.tokenizer.config.resolution
        self.frames = np.zeros((batch, r, r, 3), dtype=np.uint8)  # each dream's current frame
        self.variables = np.zeros((batch, model.game.size), dtype=np.float32)
        self.steps = np.zeros(batch, dtype=np.int64)  # env steps since each dream's start
        self.episode_steps = np.zeros(batch, dtype=np.int64)  # steps since its episode began
        self.started = False

    def _start(self, draws: list[Start], rows: list[int] | None) -> None:
        actions = np.stack([d.actions for d in draws])
        variables = None
        if self.model.game.size:
            if any(d.variables is None for d in draws):
                raise ValueError(
                    "this world model carries the game state, but its starts have no game "
                    "variables: use a dataset of format version 2 (collect it again)"
                )
            variables = np.stack([d.variables for d in draws])
        if draws[0].frames is not None:
            frames = np.stack([d.frames for d in draws])
            self.dreamer.start(frames, actions, variables, rows=rows)
            shown = frames[:, -1]
        else:
            codes = np.stack([d.codes for d in draws])
            self.dreamer.start_codes(codes, actions, variables, rows=rows)
            shown = self.dreamer.decode_current(rows)
        rows = list(range(self.batch)) if rows is None else rows
        self.frames[rows] = shown
        if variables is not None:
            self.variables[rows] = variables[:, -1]
        self.steps[rows] = 0
        self.episode_steps[rows] = [d.info.get("step", 0) // self.s for d in draws]

    def restart(self, rng: np.random.Generator, rows: list[int] | None = None) -> list[dict]:
        """(Re)start every dream, or only ``rows``, from real starts; the starts' infos."""
        if rows is None or len(rows) == self.batch:
            draws = [self.starts.draw(rng, self.context_frames) for _ in range(self.batch)]
            self.dreamer.generator.manual_seed(int(rng.integers(0, 2**63 - 1)))
            self._start(draws, None)
        else:
            n = self.dreamer.context_frames
            draws = [self.starts.draw(rng, n) for _ in rows]
            self._start(draws, rows)
        self.started = True
        return [d.info for d in draws]

    def step(self, actions: np.ndarray) -> BatchStep:
        """One latent step of every dream for ``actions`` (B,) int."""
        if not self.started:
            raise RuntimeError("call reset() before step()")
        out = self.dreamer.step(np.repeat(np.asarray(actions)[:, None], self.s, axis=1))
        self.frames = np.ascontiguousarray(out.frames[:, -1])
        if out.variables is not None:
            self.variables = out.variables
        self.steps += 1
        self.episode_steps += 1
        terminated = out.done_prob > self.done_threshold
        if self.max_steps is not None:
            truncated = self.steps >= self.max_steps
        elif self.timeout is not None:
            truncated = self.episode_steps >= self.timeout
        else:
            truncated = self.steps >= DEFAULT_MAX_STEPS
        return BatchStep(
            self.frames.copy(),
            out.reward.astype(np.float64),
            terminated,
            truncated & ~terminated,
            out.done_prob,
            out.variables,
        )
