"""Decisions that last: the agent chooses an action and holds it for ``repeat`` steps.

A policy that decides every step can change its mind every step, and in take_cover a PPO agent
does (it switches action every ~1.8 steps), which cancels its own movement; sweeping wall to
wall every 24-30 steps survives ~740 tics blind (100 real episodes). With each decision held
for ``repeat`` steps (Atari's "frame skip" one level up, beyond the paper and off by default:
``PPOConfig.action_repeat``), PPO also assigns credit over ``repeat`` times fewer decisions.

Two halves, one rule: :class:`VecActionRepeat` trains the agent (real games or dreams), and
:class:`Held` makes a trained agent play the same way wherever it is scored or played.
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from agents.policies import grown


class VecActionRepeat(VecEnvWrapper):
    """Each action is stepped ``repeat`` times; rewards are summed up to the episode's end.

    An env whose episode ends part-way has already restarted (SB3's auto-reset) and keeps
    stepping the held action in its new episode until the others finish the decision: the
    observation returned is that new episode's, its rewards there are not counted, and the info
    of the step that ended it (with ``terminal_observation``) is the one returned.
    """

    def __init__(self, venv: VecEnv, repeat: int) -> None:
        if repeat < 1:
            raise ValueError(f"action repeat must be >= 1, got {repeat}")
        super().__init__(venv)
        self.repeat = repeat

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        total = np.zeros(self.num_envs, dtype=np.float32)
        ended = np.zeros(self.num_envs, dtype=bool)
        final_infos: list[dict] = [{} for _ in range(self.num_envs)]
        for _ in range(self.repeat):
            self.venv.step_async(self._actions)
            obs, rewards, dones, infos = self.venv.step_wait()
            live = ~ended
            total[live] += rewards[live]
            for i in np.flatnonzero(live):
                final_infos[i] = infos[i]
            ended |= dones
        return obs, total, ended, final_infos


def hold(policy, repeat: int):
    """``policy`` playing each decision for ``repeat`` steps (itself when ``repeat`` is 1)."""
    return Held(policy, repeat) if repeat > 1 else policy


class Held:
    """Plays ``policy`` with each slot's decision held for ``repeat`` of its steps.

    A slot decides at its episode's first step and then every ``repeat`` steps; between
    decisions it repeats its action without asking the policy (nor telling it: a policy with
    memory remembers its last *decision*, as it did in training). :meth:`reset_env` starts a
    slot's count again; :meth:`remember` records an action chosen by someone else (a person, a
    replayed prefix) as a decision that has just run out.
    """

    def __init__(self, policy, repeat: int) -> None:
        if repeat < 1:
            raise ValueError(f"action repeat must be >= 1, got {repeat}")
        self.inner, self.repeat = policy, repeat
        self.n_actions = policy.n_actions
        self._action = np.zeros(0, dtype=np.int64)
        self._left = np.zeros(0, dtype=np.int64)  # steps the held action still runs

    def _rows(self, n: int, rows: np.ndarray | None) -> np.ndarray:
        rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(rows):
            size = int(rows.max()) + 1
            self._action, self._left = grown(self._action, size, 0), grown(self._left, size, 0)
        return rows

    def act(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        rows = self._rows(len(obs), rows)  # first: it may grow the slot tables
        deciding = np.flatnonzero(self._left[rows] == 0)
        if len(deciding):
            chosen = self.inner.act(obs[deciding], rows[deciding])
            self._action[rows[deciding]] = chosen
            self._left[rows[deciding]] = self.repeat
        self._left[rows] -= 1
        return self._action[rows].copy()

    def remember(self, actions: np.ndarray, rows: np.ndarray | None = None) -> None:
        rows = self._rows(len(actions), rows)
        self._action[rows] = np.asarray(actions, dtype=np.int64)
        self._left[rows] = 0
        remember = getattr(self.inner, "remember", None)
        if remember is not None:
            remember(actions, rows)

    def reset_env(self, i: int) -> None:
        rows = self._rows(1, np.array([i]))
        self._left[rows] = 0
        reset = getattr(self.inner, "reset_env", None)
        if reset is not None:
            reset(i)

    def __getattr__(self, name: str):  # policy, meta, memory, probs, ...: the wrapped one's
        if name == "inner":  # not yet set (a failed __init__)
            raise AttributeError(name)
        return getattr(self.inner, name)
