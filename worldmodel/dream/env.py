"""The dream as a gymnasium environment, so that agents can play and train inside the model.

:class:`DreamEnv` is one dream; :class:`VecDreamEnv` is N dreams stepped by one batched
dreamer (one forward pass for all N). Both run the same
:class:`DreamBatch`, so that for the same seed and actions ``DreamEnv`` and
``VecDreamEnv(num_envs=1)`` give exactly the same frames, rewards and terminations. Row 0 of a
larger batch does not match them: the rows share one torch generator (each token draws N
uniforms) and their starts are drawn in turn from one ``np_random``.

A dream starts from real frames: a window of a recorded episode (``data``) or the first frames of
a real env (``real_env``). ``import worldmodel`` registers ``worldmodel/Dream-<scenario>-v0`` for
every scenario; this module imports torch only when it loads a model, so registering stays cheap.
"""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from worldmodel.dream.batch import BatchStep, DreamBatch
from worldmodel.dream.starts import make_starts

if TYPE_CHECKING:
    from worldmodel.sampling.settings import SamplingConfig
    from worldmodel.world_model import WorldModel

# The scenarios of agents/scenarios.py (worldmodel never imports agents; a test keeps them equal).
SCENARIO_NAMES = (
    "health_gathering",
    "health_gathering_supreme",
    "take_cover",
    "defend_the_center",
    "basic",
    "deadly_corridor",
    "my_way_home",
)
RENDER_FPS = 35 / 4  # ViZDoom's 35 tics per second at a frame skip of 4, as in the real env
RENDER_SCALE = 8  # the human window shows 64x64 frames at 512x512


def register_dream_envs() -> None:
    """Register ``worldmodel/Dream-<scenario>-v0`` (single and vector entry points) for every
    scenario, with ``env`` fixed so that a checkpoint for another scenario is refused."""
    for name in SCENARIO_NAMES:
        env_id = f"worldmodel/Dream-{name}-v0"
        if env_id not in gym.registry:
            gym.register(
                env_id,
                entry_point="worldmodel.dream.env:DreamEnv",
                vector_entry_point="worldmodel.dream.env:VecDreamEnv",
                kwargs={"env": name},
            )


def sdl_runtime_dir() -> None:
    """Give SDL a private runtime folder before a pygame window opens, when the environment
    has none. SDL wants ``XDG_RUNTIME_DIR`` to be a folder only this user can enter; where it
    is unset or not one (containers, ssh sessions, CI) SDL prints ``error: XDG_RUNTIME_DIR is
    invalid ...``, a line that reads exactly like this project's own error lines."""
    if _private_folder(os.environ.get("XDG_RUNTIME_DIR", "")):
        return
    folder = tempfile.mkdtemp(prefix="doom-dream-sdl-")  # mode 0700
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["XDG_RUNTIME_DIR"] = folder


def _private_folder(path: str) -> bool:
    """Whether ``path`` is a folder of this user's that no one else may enter (as SDL asks)."""
    try:
        info = os.stat(path) if path else None
    except OSError:
        return False
    return (
        info is not None
        and stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & 0o077
    )


def load_world_model(
    checkpoint: WorldModel | Path | str, env: str | None = None, device: str = "cpu"
) -> WorldModel:
    """The world model in ``checkpoint`` (a path, or a model already loaded), refusing one for
    another env than ``env`` with a :class:`~worldmodel.checkpoint.CheckpointError`."""
    # Imported on use: torch takes seconds to import, and `import worldmodel` runs this module.
    from worldmodel.checkpoint import CheckpointError
    from worldmodel.world_model import WorldModel

    if not isinstance(checkpoint, WorldModel):
        return WorldModel.load(checkpoint, env, device)
    if env is not None and checkpoint.env != env:
        raise CheckpointError(f"this world model dreams {checkpoint.env!r}, not {env!r}")
    return checkpoint


class DreamEnv(gym.Env):
    """One dream of a world model as a gymnasium env.

    Observations are (H, W, 3) uint8 frames (64x64 for this project's tokenizers); actions are
    the model's ``Discrete`` action set, named by :attr:`action_names`. ``reset`` starts from
    real frames (the real start windows shipped in the model, a random window of ``data``, or
    the first frames of ``real_env``) and returns the last of them; ``step`` dreams on.

    With a model that carries the game state (the frame prior), the reward follows from the
    dreamed state by the scenario's rules, ``terminated`` is the dreamed death (HEALTH <= 0),
    ``info["game_variables"]`` holds the dreamed variables ({"HEALTH": 84.0, ...}), and
    ``truncated`` comes at the scenario's timeout counted from where the start was in its
    episode. With the paper's raster prior both come from its reward and end heads
    (``terminated`` when the end probability passes ``done_threshold``) and ``truncated``
    after 525 steps. ``max_steps``, if given, truncates after that many dreamed steps instead.

    Args:
        checkpoint: a ``worldmodel.pt``/``prior.pt`` path, or a loaded :class:`WorldModel`.
        data: a dataset folder of the model's env, whose ``split`` episodes dreams start from
            (default: the start windows shipped inside the model).
        env: refuse a checkpoint for any other env (registered ids fix it).
        real_env: a gymnasium env of the model's env to start from instead of ``data``.
        context_frames: real frames each dream starts from (default: the dreamer's whole
            history with recorded starts, one latent step with a real env).
        sampling: temperature, top-k, top-p and slide of the dream.
        device: where a checkpoint path is loaded.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": RENDER_FPS}

    def __init__(
        self,
        checkpoint: WorldModel | Path | str,
        data: Path | str | None = None,
        env: str | None = None,
        real_env: gym.Env | None = None,
        max_steps: int | None = None,
        context_frames: int | None = None,
        sampling: SamplingConfig | None = None,
        device: str = "cpu",
        render_mode: str | None = None,
        split: str = "train",
        done_threshold: float = 0.5,
    ) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        model = load_world_model(checkpoint, env, device)
        starts = make_starts(model, data, real_env, split)
        self.dreams = DreamBatch(
            model, 1, starts, context_frames, max_steps, done_threshold, sampling
        )
        self.action_names = list(model.action_names)
        self.variable_names = list(model.game.names)
        self.action_space = gym.spaces.Discrete(len(self.action_names))
        self.observation_space = gym.spaces.Box(0, 255, self.dreams.frames.shape[1:], np.uint8)
        self.render_mode = render_mode
        self._window: Any = None  # pygame surface and clock of the human mode, opened lazily
        self._clock: Any = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        info = self.dreams.restart(self.np_random)[0]
        if self.variable_names:
            info["game_variables"] = _named(self.variable_names, self.dreams.variables[0])
        if self.render_mode == "human":
            self.render()
        return self.dreams.frames[0].copy(), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is outside {self.action_space}")
        out = self.dreams.step(np.array([action]))
        if self.render_mode == "human":
            self.render()
        info = _step_info(self.variable_names, out, 0)
        return (
            out.frames[0],
            float(out.rewards[0]),
            bool(out.terminated[0]),
            bool(out.truncated[0]),
            info,
        )

    def render(self) -> np.ndarray | None:
        """The current frame (H, W, 3) uint8 in ``rgb_array`` mode; a window in ``human``."""
        if self.render_mode == "rgb_array":
            return self.dreams.frames[0].copy()
        if self.render_mode == "human":
            self._show(self.dreams.frames[0])
        return None

    def _show(self, frame: np.ndarray) -> None:
        import pygame  # only the human mode needs a display

        if self._window is None:
            sdl_runtime_dir()
            pygame.display.init()
            h, w = frame.shape[:2]
            self._window = pygame.display.set_mode((w * RENDER_SCALE, h * RENDER_SCALE))
            pygame.display.set_caption(f"dream: {self.spec.id if self.spec else 'DreamEnv'}")
            self._clock = pygame.time.Clock()
        surface = pygame.surfarray.make_surface(frame.swapaxes(0, 1))  # pygame is (W, H)
        self._window.blit(pygame.transform.scale(surface, self._window.get_size()), (0, 0))
        pygame.event.pump()  # keeps the window responsive
        pygame.display.flip()
        self._clock.tick(self.metadata["render_fps"])

    def close(self) -> None:
        if self._window is not None:
            import pygame

            pygame.display.quit()
            self._window = self._clock = None
        self.dreams.starts.close()


class VecDreamEnv(VectorEnv):
    """N dreams stepped together by one batched Dreamer, as a gymnasium vector env.

    Spaces, seeding and the start of each dream are as in :class:`DreamEnv`. A dream that ends
    restarts in the same step (``AutoresetMode.SAME_STEP``): ``step`` returns its new start
    frame, with the last dreamed frame in ``infos["final_obs"]``, its step info in
    ``infos["final_info"]`` and its start info (``episode``, ``start``) at the top level. Every
    other row's info is ``done_prob``. Rows restart from ``data`` with as many real frames as
    the others hold, so ``real_env`` (which cannot start one row mid-batch) needs
    ``num_envs=1``.
    """

    metadata = {
        "render_modes": ["rgb_array"],
        "render_fps": RENDER_FPS,
        "autoreset_mode": AutoresetMode.SAME_STEP,
    }

    def __init__(
        self,
        checkpoint: WorldModel | Path | str,
        num_envs: int = 1,
        data: Path | str | None = None,
        env: str | None = None,
        real_env: gym.Env | None = None,
        max_steps: int | None = None,
        context_frames: int | None = None,
        sampling: SamplingConfig | None = None,
        device: str = "cpu",
        render_mode: str | None = None,
        split: str = "train",
        done_threshold: float = 0.5,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
            raise TypeError(
                f"num_envs must be a whole number of dreams (an int), got {num_envs!r} "
                f"({type(num_envs).__name__})"
            )
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        if real_env is not None and num_envs > 1:
            raise ValueError(
                "several dreams restart one by one from recorded frames: pass data=<a dataset "
                "folder> (real_env works with num_envs=1)"
            )
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be 'rgb_array' or None, got {render_mode!r}")
        model = load_world_model(checkpoint, env, device)
        starts = make_starts(model, data, real_env, split)
        self.dreams = DreamBatch(
            model, num_envs, starts, context_frames, max_steps, done_threshold, sampling
        )
        self.num_envs = num_envs
        self.action_names = list(model.action_names)
        self.variable_names = list(model.game.names)
        self.single_action_space = gym.spaces.Discrete(len(self.action_names))
        shape = self.dreams.frames.shape[1:]
        self.single_observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.render_mode = render_mode

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        infos: dict[str, Any] = {}
        for i, info in enumerate(self.dreams.restart(self.np_random)):
            infos = self._add_info(infos, self._start_info(info, i), i)
        return self.dreams.frames.copy(), infos

    def _start_info(self, info: dict[str, Any], row: int) -> dict[str, Any]:
        if self.variable_names:
            info["game_variables"] = _named(self.variable_names, self.dreams.variables[row])
        return info

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every dream with ``actions`` (N,) int; see the class docstring for autoreset."""
        actions = np.asarray(actions)
        if not self.action_space.contains(actions):
            raise ValueError(f"actions {actions!r} are outside {self.action_space}")
        out = self.dreams.step(actions)
        obs = out.frames
        ended = np.flatnonzero(out.terminated | out.truncated).tolist()
        infos: dict[str, Any] = {}
        for i in range(self.num_envs):
            step_info = _step_info(self.variable_names, out, i)
            if i in ended:
                step_info = {"final_obs": obs[i], "final_info": step_info}
            infos = self._add_info(infos, step_info, i)
        if ended:
            for i, info in zip(ended, self.dreams.restart(self.np_random, ended), strict=True):
                infos = self._add_info(infos, self._start_info(info, i), i)
            obs = self.dreams.frames.copy()
        return obs, out.rewards, out.terminated, out.truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """Each dream's current frame (H, W, 3) uint8 in ``rgb_array`` mode."""
        if self.render_mode == "rgb_array":
            return tuple(self.dreams.frames.copy())
        return None

    def close_extras(self, **kwargs: Any) -> None:
        self.dreams.starts.close()


def _named(names: list[str], values: np.ndarray) -> dict[str, float]:
    return {n: float(v) for n, v in zip(names, values, strict=True)}


def _step_info(names: list[str], out: BatchStep, row: int) -> dict[str, Any]:
    info: dict[str, Any] = {"done_prob": float(out.done_prob[row])}
    if names and out.variables is not None:
        info["game_variables"] = _named(names, out.variables[row])
    return info
