"""An agent's one step of memory: the action it took last, shown beside the frame.

A policy that sees one frame cannot tell which way it was going, so it cannot keep going: in
take_cover it dithers, and sweeping wall to wall (which alone survives 679 tics in the real
game) is out of its reach. With the last action as input, "keep going until the wall" is one
rule. Beyond the paper and off by default (``PPOConfig.prev_action``): the observation becomes
a ``Dict`` of the frame and a one-hot of the last action (all zeros at an episode's start), and
SB3 trains it with its ``MultiInputPolicy``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

FRAME, PREV = "frame", "prev_action"


def prev_action_space(frame: gym.spaces.Box, n_actions: int) -> gym.spaces.Dict:
    """The observation space of a policy with memory: ``frame`` as given, plus the last action."""
    prev = gym.spaces.Box(0.0, 1.0, (n_actions,), dtype=np.float32)
    return gym.spaces.Dict({FRAME: frame, PREV: prev})


def one_hot(actions: np.ndarray, n_actions: int) -> np.ndarray:
    """(N, n_actions) float32 one-hots; an action < 0 (none yet) is all zeros."""
    actions = np.asarray(actions, dtype=np.int64)
    out = np.zeros((len(actions), n_actions), dtype=np.float32)
    known = np.flatnonzero(actions >= 0)
    out[known, actions[known]] = 1.0
    return out


class VecPrevAction(VecEnvWrapper):
    """Adds the last action to every observation of a vectorised env (real games or dreams).

    An env that has just ended has already restarted, so its new observation shows no last
    action, while its ``terminal_observation`` (which PPO bootstraps from) shows the action that
    ended it.
    """

    def __init__(self, venv: VecEnv) -> None:
        n_actions = int(venv.action_space.n)
        super().__init__(
            venv, observation_space=prev_action_space(venv.observation_space, n_actions)
        )
        self.n_actions = n_actions
        self._last = np.full(venv.num_envs, -1, dtype=np.int64)

    def _obs(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        return {FRAME: frames, PREV: one_hot(self._last, self.n_actions)}

    def reset(self) -> dict[str, np.ndarray]:
        self._last[:] = -1
        return self._obs(self.venv.reset())

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        self.venv.step_async(actions)

    def step_wait(self):
        frames, rewards, dones, infos = self.venv.step_wait()
        self._last = self._actions.copy()
        for i in np.flatnonzero(dones):
            if "terminal_observation" in infos[i]:
                prev = one_hot(self._last[i : i + 1], self.n_actions)[0]
                infos[i]["terminal_observation"] = {
                    FRAME: infos[i]["terminal_observation"],
                    PREV: prev,
                }
            self._last[i] = -1
        return self._obs(frames), rewards, dones, infos
