"""Stable-baselines3's ``VecEnv`` interface over :class:`worldmodel.dream.env.VecDreamEnv`.

SB3 algorithms step a ``VecEnv``: a batch of observations in, lists of per-env infos out, and
``terminal_observation`` / ``TimeLimit.truncated`` in the info of an env that just ended (it has
already restarted). The dreams live in one batched Dreamer, so this adapter forwards every call
to that one object instead of keeping N envs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from worldmodel.dream.env import VecDreamEnv


def row_info(infos: dict[str, Any], i: int) -> dict[str, Any]:
    """Row ``i`` of gymnasium's batched infos (arrays, each with a ``_key`` mask of the rows
    that have it) as a plain dict."""
    out = {}
    for key, value in infos.items():
        mask = infos.get(f"_{key}")
        if key.startswith("_") or (mask is not None and not mask[i]):
            continue
        out[key] = row_info(value, i) if isinstance(value, dict) else value[i]
    return out


class SB3DreamVecEnv(VecEnv):
    """N dreams of a :class:`VecDreamEnv` as an SB3 ``VecEnv`` (PPO trains on it directly).

    Observations are (N, H, W, 3) uint8, rewards (N,) float32 and dones (N,) bool. ``seed(s)``
    seeds the whole batch with ``s`` at the next reset (one generator drives every dream).
    ``damage_penalty`` > 0 shapes the reward for training: each point of dreamed HEALTH lost
    costs that much (beyond the paper; the real game's reward has no such term).
    """

    def __init__(self, venv: VecDreamEnv, damage_penalty: float = 0.0) -> None:
        self.venv = venv
        self.damage_penalty = damage_penalty
        self._health = None
        if damage_penalty:
            if "HEALTH" not in venv.variable_names:
                raise ValueError("a damage penalty needs a world model that carries HEALTH")
            self._health = venv.variable_names.index("HEALTH")
        self._actions = np.zeros(venv.num_envs, dtype=np.int64)
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)

    def reset(self) -> np.ndarray:
        options = self._options[0] or None
        obs, infos = self.venv.reset(seed=self._seeds[0], options=options)
        self.reset_infos = [row_info(infos, i) for i in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        h = self._health  # copy: rows that restart overwrite the dreams' variables
        before = None if h is None else self.venv.dreams.variables[:, h].copy()
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        dones = terminated | truncated
        step_infos = []
        for i in range(self.num_envs):
            info = row_info(infos, i)
            if dones[i]:
                # The dream has restarted: the top level holds its start, SB3 wants the end.
                final = info.pop("final_info")
                final["terminal_observation"] = info.pop("final_obs")
                self.reset_infos[i] = info
                info = final
            info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            if before is not None:
                lost = max(0.0, before[i] - info["game_variables"]["HEALTH"])
                rewards[i] -= self.damage_penalty * lost
            step_infos.append(info)
        return obs, rewards.astype(np.float32), dones, step_infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The attribute of the one :class:`VecDreamEnv`, once per requested env."""
        return [getattr(self.venv, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the one :class:`VecDreamEnv`: it applies to every dream."""
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        """Call a method of the one :class:`VecDreamEnv` once; its result for each env."""
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render()
        return list(frames) if frames is not None else [None] * self.num_envs
