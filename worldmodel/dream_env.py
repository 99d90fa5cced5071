"""The dream as a gymnasium environment, so that agents can play and train inside the model.

:class:`DreamEnv` is one dream; :class:`VecDreamEnv` is N dreams stepped by one batched
:class:`~worldmodel.sampling.Dreamer` (one forward pass per token for all N). Both run the same
:class:`DreamBatch`, so that for the same seed and actions ``DreamEnv`` and
``VecDreamEnv(num_envs=1)`` give exactly the same frames, rewards and terminations. Row 0 of a
larger batch does not match them: the rows share one torch generator (each token draws N
uniforms) and their starts are drawn in turn from one ``np_random``.

A dream starts from real frames: a window of a recorded episode (``data``) or the first frames of
a real env (``real_env``). ``import worldmodel`` registers ``worldmodel/Dream-<scenario>-v0`` for
every scenario; this module imports torch only when it loads a model, so registering stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from worldmodel.dream_starts import DatasetStarts, RealEnvStarts, make_starts

if TYPE_CHECKING:
    from worldmodel.sampling import SamplingConfig
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
MAX_STEPS = 525  # health_gathering's 2100-tic timeout at a frame skip of 4


def register_dream_envs() -> None:
    """Register ``worldmodel/Dream-<scenario>-v0`` (single and vector entry points) for every
    scenario, with ``env`` fixed so that a checkpoint for another scenario is refused."""
    for name in SCENARIO_NAMES:
        env_id = f"worldmodel/Dream-{name}-v0"
        if env_id not in gym.registry:
            gym.register(
                env_id,
                entry_point="worldmodel.dream_env:DreamEnv",
                vector_entry_point="worldmodel.dream_env:VecDreamEnv",
                kwargs={"env": name},
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


class DreamBatch:
    """N dreams that start, step and restart from real frames: what both envs run.

    Each env step is one latent step of the prior; with ``frames_per_step`` > 1 the action is
    held for every frame of it and the observation is its last frame. ``restart`` draws every
    start, and on a full restart the sampler's seed, from the ``rng`` it is given, so the env's
    ``np_random`` alone decides the whole dream.
    """

    def __init__(
        self,
        model: WorldModel,
        batch: int,
        starts: DatasetStarts | RealEnvStarts,
        context_frames: int | None,
        max_steps: int,
        done_threshold: float,
        sampling: SamplingConfig | None,
    ) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        self.dreamer = model.dreamer(batch, sampling)
        self.batch, self.starts, self.s = batch, starts, model.frames_per_step
        self.max_steps, self.done_threshold = max_steps, done_threshold
        # Row restarts must bring as much history as the other rows hold, which grows to the
        # dreamer's whole history: with data, start every dream with that much.
        most = self.dreamer.history * self.s
        if context_frames is None:
            context_frames = most if isinstance(starts, DatasetStarts) else self.s
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
        self.steps = np.zeros(batch, dtype=np.int64)  # env steps since each dream's start
        self.started = False

    def restart(self, rng: np.random.Generator, rows: list[int] | None = None) -> list[dict]:
        """(Re)start every dream, or only ``rows``, from real frames; the starts' infos."""
        if rows is None or len(rows) == self.batch:
            draws = [self.starts.draw(rng, self.context_frames) for _ in range(self.batch)]
            self.dreamer.generator.manual_seed(int(rng.integers(0, 2**63 - 1)))
            self.dreamer.start(
                np.stack([d.frames for d in draws]), np.stack([d.actions for d in draws])
            )
            rows = list(range(self.batch))
        else:
            n = self.dreamer.context_frames
            draws = [self.starts.draw(rng, n) for _ in rows]
            self.dreamer.start(
                np.stack([d.frames for d in draws]), np.stack([d.actions for d in draws]), rows=rows
            )
        self.frames[rows] = np.stack([d.frames[-1] for d in draws])
        self.steps[rows] = 0
        self.started = True
        return [d.info for d in draws]

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One latent step of every dream for ``actions`` (B,) int.

        Returns frames (B, H, W, 3) uint8, rewards (B,) float64, terminated and truncated
        (B,) bool, and the predicted probabilities (B,) float32 that each episode ended.
        """
        if not self.started:
            raise RuntimeError("call reset() before step()")
        out = self.dreamer.step(np.repeat(np.asarray(actions)[:, None], self.s, axis=1))
        self.frames = np.ascontiguousarray(out.frames[:, -1])
        self.steps += 1
        terminated = out.done_prob > self.done_threshold
        truncated = self.steps >= self.max_steps
        return (
            self.frames.copy(),
            out.reward.astype(np.float64),
            terminated,
            truncated,
            out.done_prob,
        )


class DreamEnv(gym.Env):
    """One dream of a world model as a gymnasium env.

    Observations are (H, W, 3) uint8 frames (64x64 for this project's tokenizers); actions are
    the model's ``Discrete`` action set, named by :attr:`action_names`. ``reset`` starts from
    real frames (a random window of ``data``, or the first frame of ``real_env``) and returns
    the last of them; ``step`` dreams on. The reward is the predicted one, ``terminated`` is the
    predicted end probability above ``done_threshold``, and ``truncated`` comes after
    ``max_steps`` steps.

    Args:
        checkpoint: a ``worldmodel.pt``/``prior.pt`` path, or a loaded :class:`WorldModel`.
        data: a dataset folder of the model's env, whose ``split`` episodes dreams start from.
        env: refuse a checkpoint for any other env (registered ids fix it).
        real_env: a gymnasium env of the model's env to start from instead of ``data``.
        context_frames: real frames each dream starts from (default: the dreamer's whole
            history with data, one latent step with a real env).
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
        max_steps: int = MAX_STEPS,
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
        if self.render_mode == "human":
            self.render()
        return self.dreams.frames[0].copy(), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is outside {self.action_space}")
        frames, reward, terminated, truncated, done_prob = self.dreams.step(np.array([action]))
        if self.render_mode == "human":
            self.render()
        info = {"done_prob": float(done_prob[0])}
        return frames[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

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
        max_steps: int = MAX_STEPS,
        context_frames: int | None = None,
        sampling: SamplingConfig | None = None,
        device: str = "cpu",
        render_mode: str | None = None,
        split: str = "train",
        done_threshold: float = 0.5,
    ) -> None:
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
            infos = self._add_info(infos, info, i)
        return self.dreams.frames.copy(), infos

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every dream with ``actions`` (N,) int; see the class docstring for autoreset."""
        actions = np.asarray(actions)
        if not self.action_space.contains(actions):
            raise ValueError(f"actions {actions!r} are outside {self.action_space}")
        obs, rewards, terminated, truncated, done_prob = self.dreams.step(actions)
        ended = np.flatnonzero(terminated | truncated).tolist()
        infos: dict[str, Any] = {}
        for i in range(self.num_envs):
            step_info = {"done_prob": float(done_prob[i])}
            if i in ended:
                step_info = {"final_obs": obs[i], "final_info": step_info}
            infos = self._add_info(infos, step_info, i)
        if ended:
            for i, info in zip(ended, self.dreams.restart(self.np_random, ended), strict=True):
                infos = self._add_info(infos, info, i)
            obs = self.dreams.frames.copy()
        return obs, rewards, terminated, truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """Each dream's current frame (H, W, 3) uint8 in ``rgb_array`` mode."""
        if self.render_mode == "rgb_array":
            return tuple(self.dreams.frames.copy())
        return None

    def close_extras(self, **kwargs: Any) -> None:
        self.dreams.starts.close()
