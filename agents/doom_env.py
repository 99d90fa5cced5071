"""ViZDoom scenarios as headless gymnasium environments with 64×64 RGB observations."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import gymnasium as gym
import numpy as np
import vizdoom as vzd

from agents.scenarios import DEFAULT_ENV, Scenario, get_scenario

FRAME_SKIP = 4
RESOLUTION = 64
RENDER_SIZE = (120, 160)  # (H, W) that ViZDoom renders at, before area-resizing
DOOM_TICS_PER_SECOND = 35


@cache
def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float32 weights that average each output cell's share of the input.

    Output cell i covers input interval [i*n_in/n_out, (i+1)*n_in/n_out); each input pixel
    contributes the length of its overlap with that interval, so rows sum to 1.
    """
    scale = n_in / n_out
    edges = np.arange(n_out + 1) * scale
    lo, hi = edges[:-1, None], edges[1:, None]
    pix = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, pix + 1) - np.maximum(lo, pix), 0.0, None)
    return (overlap / scale).astype(np.float32)


def area_resize(image: np.ndarray, size: int = RESOLUTION) -> np.ndarray:
    """Resize an (H, W, C) uint8 image to (size, size, C) uint8 by area averaging."""
    h, w, c = image.shape
    rows, cols = _area_matrix(h, size), _area_matrix(w, size)
    x = rows @ image.astype(np.float32).reshape(h, w * c)  # (size, W*C)
    x = np.matmul(cols, x.reshape(size, w, c))  # (size, W) @ (size, W, C) -> (size, size, C)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


class DoomEnv(gym.Env):
    """A ViZDoom scenario: 64×64×3 uint8 observations, a named ``Discrete`` action set.

    ``terminated`` is the game ending by its own rules (the player dies, or reaches the goal);
    ``truncated`` is the scenario's timeout. Always headless; ``render()`` returns the last
    full-resolution (120, 160, 3) screen.

    Every ``reset`` and ``step`` info holds ``game_variables``: (V,) float32 values of the
    scenario's game variables (:attr:`variable_names`, e.g. HEALTH) after that step, read even
    on the step that ends the episode (a death shows its health of 0 or below, though the
    frame stays the last one rendered). The last step's info also holds ``end_reason``:
    ``death``, ``timeout`` or ``goal``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": DOOM_TICS_PER_SECOND / FRAME_SKIP}

    def __init__(
        self,
        scenario: Scenario,
        render_mode: str | None = None,
        frame_skip: int = FRAME_SKIP,
        resolution: int = RESOLUTION,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(
                f"render_mode {render_mode!r} is not supported (ViZDoom runs headless); "
                "use 'rgb_array' or None"
            )
        self.scenario = scenario
        self.render_mode = render_mode
        self.frame_skip = frame_skip
        self.resolution = resolution
        self.action_names = scenario.action_names
        self.action_space = gym.spaces.Discrete(len(scenario.actions))
        self.observation_space = gym.spaces.Box(0, 255, (resolution, resolution, 3), dtype=np.uint8)
        self._buttons = [scenario.button_vector(a) for a in range(len(scenario.actions))]
        self._game = self._make_game(scenario)
        self._timeout = self._game.get_episode_timeout()
        self._variables = self._game.get_available_game_variables()
        self.variable_names = tuple(v.name for v in self._variables)
        self._screen = np.zeros((*RENDER_SIZE, 3), dtype=np.uint8)
        self._obs = np.zeros(self.observation_space.shape, dtype=np.uint8)

    @staticmethod
    def _make_game(scenario: Scenario) -> vzd.DoomGame:
        game = vzd.DoomGame()
        game.load_config(os.path.join(vzd.scenarios_path, scenario.config))
        game.set_window_visible(False)
        game.set_sound_enabled(False)
        game.set_screen_resolution(vzd.ScreenResolution.RES_160X120)
        game.set_screen_format(vzd.ScreenFormat.RGB24)
        game.set_mode(vzd.Mode.PLAYER)
        game.set_available_buttons([getattr(vzd.Button, b) for b in scenario.buttons])
        for name in scenario.variables:
            variable = getattr(vzd.GameVariable, name)
            if variable not in game.get_available_game_variables():
                game.add_available_game_variable(variable)
        game.init()
        return game

    @property
    def rules(self) -> dict[str, float]:
        """The scenario's reward and timeout settings, as its config file (and, for the reward
        per kill, its map script: :attr:`Scenario.kill_reward`) sets them."""
        return {
            "living_reward": float(self._game.get_living_reward()),
            "death_penalty": float(self._game.get_death_penalty()),
            "episode_timeout_tics": float(self._timeout),
            "frame_skip": float(self.frame_skip),
            "kill_reward": float(self.scenario.kill_reward),
        }

    def _game_variables(self) -> np.ndarray:
        return np.array([self._game.get_game_variable(v) for v in self._variables], np.float32)

    def _observe(self) -> np.ndarray:
        state = self._game.get_state()
        if state is not None:  # None once the episode has ended: keep showing the last frame
            self._screen = state.screen_buffer
            self._obs = area_resize(self._screen, self.resolution)
        return self._obs.copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        doom_seed = int(self.np_random.integers(0, 2**31 - 1))
        self._game.set_seed(doom_seed)
        self._game.new_episode()
        return self._observe(), {"doom_seed": doom_seed, "game_variables": self._game_variables()}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is outside {self.action_space}")
        reward = self._game.make_action(self._buttons[int(action)], self.frame_skip)
        terminated = truncated = False
        info: dict[str, Any] = {"game_variables": self._game_variables()}
        if self._game.is_episode_finished():
            dead = self._game.is_player_dead()
            timed_out = self._timeout > 0 and self._game.get_episode_time() >= self._timeout
            truncated = timed_out and not dead
            terminated = not truncated
            info["end_reason"] = "death" if dead else ("timeout" if truncated else "goal")
        return self._observe(), float(reward), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            return self._screen.copy()
        return None

    def close(self) -> None:
        self._game.close()


def make_env(
    name: str = DEFAULT_ENV, seed: int | None = None, render_mode: str | None = None
) -> DoomEnv:
    """A headless :class:`DoomEnv` for the scenario ``name``, seeded if ``seed`` is given.

    The seed is applied at the first ``reset()`` (gymnasium style): ``env.reset()`` without a
    seed after ``make_env(name, seed=s)`` starts the same episode as ``env.reset(seed=s)``.
    """
    env = DoomEnv(get_scenario(name), render_mode=render_mode)
    if seed is not None:
        env.np_random, _ = gym.utils.seeding.np_random(seed)
        env.action_space.seed(seed)
    return env
