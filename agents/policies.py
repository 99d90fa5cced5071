"""Batched policies that act on (N, 64, 64, 3) uint8 observations, and exploration around them."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy


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
    """A trained SB3 actor-critic policy, sampled with an explicit torch generator."""

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

    @torch.inference_mode()
    def probs(self, obs: np.ndarray) -> torch.Tensor:
        """Action probabilities (N, A) for observations (N, H, W, 3) uint8."""
        x = torch.as_tensor(obs).permute(0, 3, 1, 2).float().div_(255.0)  # SB3: channel-first
        features = self.policy.features_extractor(x)
        logits = self.policy.action_net(self.policy.mlp_extractor.forward_actor(features))
        return logits.softmax(-1)

    def act(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        probs = self.probs(obs)
        if self.deterministic:
            return probs.argmax(-1).numpy()
        return torch.multinomial(probs, 1, generator=self.generator)[:, 0].numpy()


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
        self._held: np.ndarray | None = None
        self._left: np.ndarray | None = None
        self.last_explored = np.zeros(0, dtype=bool)  # which envs' last action was exploratory

    def _grow(self, slots: int) -> None:
        if self._held is None or len(self._held) < slots:
            held, left = np.zeros(slots, dtype=np.int64), np.zeros(slots, dtype=np.int64)
            if self._held is not None and self._left is not None:
                held[: len(self._held)], left[: len(self._left)] = self._held, self._left
            self._held, self._left = held, left

    def act(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        n = len(obs)
        rows = np.arange(n) if rows is None else np.asarray(rows)
        self._grow(int(rows.max()) + 1 if n else 0)
        assert self._held is not None and self._left is not None
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
        if self._left is not None and i < len(self._left):
            self._left[i] = 0
        reset = getattr(self.policy, "reset_env", None)
        if reset is not None:
            reset(i)

    def behaviours(self, n: int) -> list[str]:
        """The name of the behaviour that plays each of ``n`` env slots."""
        names = getattr(self.policy, "behaviours", None)
        return names(n) if names is not None else [getattr(self.policy, "name", "policy")] * n
