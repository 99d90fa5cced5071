"""Blind scripted policies: one action held, or two alternated every N steps.

They never look at the screen. In take_cover sweeping left and right outlives standing still
about 4x in the real game, so a dream worth training in ranks them the same way, and an agent
that dodges by sight must beat the best sweep (``agents.dream.ranking``).
"""

from __future__ import annotations

import numpy as np

from agents.policies import grown


class Hold:
    """``action`` at every step."""

    def __init__(self, action: int, n_actions: int) -> None:
        self.action, self.n_actions = action, n_actions

    def act(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        return np.full(len(obs), self.action, dtype=np.int64)


class Sweep:
    """``first`` for ``every`` steps, then ``second`` as long, and so on; each slot counts
    from its own episode's start (:meth:`reset_env`)."""

    def __init__(self, first: int, second: int, every: int, n_actions: int) -> None:
        if every < 1:
            raise ValueError(f"a sweep turns every >= 1 steps, got {every}")
        self.first, self.second, self.every, self.n_actions = first, second, every, n_actions
        self._t = np.zeros(0, dtype=np.int64)  # steps each slot has played

    def reset_env(self, i: int) -> None:
        self._t = grown(self._t, i + 1, 0)
        self._t[i] = 0

    def act(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        rows = np.arange(len(obs)) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(rows):
            self._t = grown(self._t, int(rows.max()) + 1, 0)
        t = self._t[rows]
        self._t[rows] += 1
        return np.where((t // self.every) % 2 == 1, self.second, self.first).astype(np.int64)


def sweep(action_names: list[str], every: int) -> Sweep:
    """move_left for ``every`` steps, then move_right as long, ...; an env without both moves
    gets a ValueError saying so."""
    if "move_left" not in action_names or "move_right" not in action_names:
        raise ValueError(f"a sweep needs move_left and move_right; this env has {action_names}")
    left, right = action_names.index("move_left"), action_names.index("move_right")
    return Sweep(left, right, every, len(action_names))
