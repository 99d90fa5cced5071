"""Batched policies that act on (N, 64, 64, 3) uint8 observations, and exploration around them."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy


class Policy(Protocol):
    n_actions: int

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions (N,) int64 for observations (N, H, W, 3) uint8."""
        ...


class RandomPolicy:
    """Uniformly random actions."""

    def __init__(self, n_actions: int, seed: int | None = None) -> None:
        self.n_actions = n_actions
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray) -> np.ndarray:
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

    def act(self, obs: np.ndarray) -> np.ndarray:
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

    def act(self, obs: np.ndarray) -> np.ndarray:
        n = len(obs)
        if self._held is None or len(self._held) != n:
            self._held = np.zeros(n, dtype=np.int64)
            self._left = np.zeros(n, dtype=np.int64)
        assert self._left is not None
        start = (self._left == 0) & (self.rng.random(n) < self._p_start)
        k = int(start.sum())
        self._held[start] = self.rng.integers(0, self.n_actions, size=k)
        self._left[start] = self.rng.geometric(1.0 / self.sticky_mean, size=k)
        exploring = self._left > 0
        self.last_explored = exploring.copy()
        actions = self._held.copy()
        if not exploring.all():  # the policy only runs for the envs that follow it
            actions[~exploring] = self.policy.act(obs[~exploring])
        self._left = np.maximum(self._left - 1, 0)
        return actions.astype(np.int64)

    def reset_env(self, i: int) -> None:
        """Forget env ``i``'s held action (its episode ended)."""
        if self._left is not None:
            self._left[i] = 0
