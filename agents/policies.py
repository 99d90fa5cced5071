"""Batched policies that act on (N, 64, 64, 3) uint8 observations, and exploration around them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy

from agents.prev_action import FRAME, PREV, one_hot


def grown(table: np.ndarray, size: int, fill: int) -> np.ndarray:
    """``table`` (a per-env-slot array) with room for ``size`` slots, new ones set to ``fill``."""
    if len(table) >= size:
        return table
    out = np.full(size, fill, dtype=table.dtype)
    out[: len(table)] = table
    return out


class Policy(Protocol):
    n_actions: int

    def act(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Actions (N,) int64 for observations (N, H, W, 3) uint8.

        ``rows`` (N,) names the env slot of each observation when only some slots act (a
        policy with per-env state, like a scripted walker, needs to know which); None means
        slots 0 .. N-1."""
        ...


class RandomPolicy:
    """Uniformly random actions."""

    def __init__(self, n_actions: int, seed: int | None = None) -> None:
        self.n_actions = n_actions
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        return self.rng.integers(0, self.n_actions, size=len(obs))


class AgentPolicy:
    """A trained SB3 actor-critic policy, sampled with an explicit torch generator.

    A policy trained with memory (a ``Dict`` observation space, see :mod:`agents.prev_action`)
    is shown each env slot's last action, which this object remembers per slot: call
    :meth:`reset_env` when a slot's episode restarts, and :meth:`remember` when an action was
    chosen by someone else (a person, a replayed prefix).
    """

    def __init__(
        self,
        policy: ActorCriticPolicy,
        deterministic: bool = False,
        seed: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.policy = policy.eval()
        self.meta = meta or {}
        self.n_actions = int(policy.action_space.n)
        self.deterministic = deterministic
        self.generator = torch.Generator().manual_seed(0 if seed is None else seed)
        self.memory = isinstance(policy.observation_space, gym.spaces.Dict)
        self._last = np.zeros(0, dtype=np.int64)  # each slot's last action (-1: none yet)

    def _rows(self, n: int, rows: np.ndarray | None) -> np.ndarray:
        rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(rows):
            self._last = grown(self._last, int(rows.max()) + 1, -1)
        return rows

    @torch.inference_mode()
    def probs(self, obs: np.ndarray, rows: np.ndarray | None = None) -> torch.Tensor:
        """Action probabilities (N, A) for observations (N, H, W, 3) uint8 (of slots ``rows``)."""
        x = torch.as_tensor(obs).permute(0, 3, 1, 2).float().div_(255.0)  # SB3: channel-first
        if self.memory:
            rows = self._rows(len(obs), rows)  # first: it may grow self._last
            last = self._last[rows]
            x = {FRAME: x, PREV: torch.as_tensor(one_hot(last, self.n_actions))}
        features = self.policy.features_extractor(x)
        logits = self.policy.action_net(self.policy.mlp_extractor.forward_actor(features))
        return logits.softmax(-1)

    def act(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        probs = self.probs(obs, rows)
        if self.deterministic:
            actions = probs.argmax(-1).numpy()
        else:
            actions = torch.multinomial(probs, 1, generator=self.generator)[:, 0].numpy()
        self.remember(actions, rows)
        return actions

    def remember(self, actions: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Record the actions just taken in slots ``rows`` (None: 0 .. N-1); a policy without
        memory keeps nothing."""
        if self.memory:
            rows = self._rows(len(actions), rows)  # first: it may grow self._last
            self._last[rows] = np.asarray(actions, dtype=np.int64)

    def reset_env(self, i: int) -> None:
        """Slot ``i`` starts a new episode: no last action."""
        if self.memory:
            rows = self._rows(1, np.array([i]))  # first: it may grow self._last
            self._last[rows] = -1


def new_episode(policy: Policy, i: int, prefix: Sequence[int] = ()) -> None:
    """Tell ``policy`` (if it keeps memory) that slot ``i`` restarted and then took ``prefix``."""
    reset = getattr(policy, "reset_env", None)
    if reset is not None:
        reset(i)
    remember = getattr(policy, "remember", None)
    if remember is not None and len(prefix):
        remember(np.array([prefix[-1]]), np.array([i]))


class StickyExploration:
    """Wraps a policy so that a fraction ``epsilon`` of all steps are exploratory: an env
    starts a random action that it then holds for a geometric number of steps (mean
    ``sticky_mean``), then returns to the policy.

    Held random actions look like a person holding a key: they reach states and action
    sequences (long turns, running into walls) that a good policy never shows the model.
    """

    def __init__(
        self, policy: Policy, epsilon: float, sticky_mean: float = 4.0, seed: int | None = None
    ) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        if sticky_mean < 1.0:
            raise ValueError(f"sticky_mean must be >= 1, got {sticky_mean}")
        self.policy = policy
        self.n_actions = policy.n_actions
        self.epsilon = epsilon
        self.sticky_mean = sticky_mean
        # Chance per on-policy step of starting a held action, chosen so that in the long run
        # epsilon = m / (m + (1 - p) / p) of steps explore (m = sticky_mean).
        self._p_start = epsilon / (sticky_mean * (1.0 - epsilon) + epsilon)
        self.rng = np.random.default_rng(seed)
        self._held = np.zeros(0, dtype=np.int64)
        self._left = np.zeros(0, dtype=np.int64)
        self.last_explored = np.zeros(0, dtype=bool)  # which envs' last action was exploratory

    def _grow(self, slots: int) -> None:
        self._held, self._left = grown(self._held, slots, 0), grown(self._left, slots, 0)

    def act(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        n = len(obs)
        rows = np.arange(n) if rows is None else np.asarray(rows)
        self._grow(int(rows.max()) + 1 if n else 0)
        held, left = self._held[rows], self._left[rows]
        start = (left == 0) & (self.rng.random(n) < self._p_start)
        k = int(start.sum())
        held[start] = self.rng.integers(0, self.n_actions, size=k)
        left[start] = self.rng.geometric(1.0 / self.sticky_mean, size=k)
        exploring = left > 0
        self.last_explored = exploring.copy()
        actions = held.copy()
        if not exploring.all():  # the policy only runs for the envs that follow it
            follow = np.flatnonzero(~exploring)
            actions[follow] = self.policy.act(obs[follow], rows[follow])
        self._held[rows], self._left[rows] = held, np.maximum(left - 1, 0)
        return actions.astype(np.int64)

    def reset_env(self, i: int) -> None:
        """Forget env ``i``'s held action (its episode ended), and tell the policy."""
        if i < len(self._left):
            self._left[i] = 0
        reset = getattr(self.policy, "reset_env", None)
        if reset is not None:
            reset(i)

    def behaviours(self, n: int) -> list[str]:
        """The name of the behaviour that plays each of ``n`` env slots."""
        names = getattr(self.policy, "behaviours", None)
        return names(n) if names is not None else [getattr(self.policy, "name", "policy")] * n
