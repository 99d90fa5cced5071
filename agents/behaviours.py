"""Play that looks like a person's, and mixtures of behaviours for collection.

A PPO agent plays in short, twitchy bursts; people hold keys: long forward runs, turns in
bursts, arcs, pauses, and quick left-right wiggles. :class:`HumanLikePolicy` is a scripted
walker that plays in such segments (it ignores the screen, as a person learning the controls
often does). Its :data:`STYLES` come in two flavours with different segment mixes and lengths:
``human`` for training data and ``human_holdout`` only for evaluation, so a world model is
never scored on exactly the behaviour it was trained on.

:class:`MixturePolicy` gives every episode one behaviour drawn by weight (the PPO agent at
several stages of its training, random held actions, human-like play), so one dataset holds
them all and each episode records which one played it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.policies import Policy


@dataclass(frozen=True)
class Segment:
    """Hold one of ``actions`` (picked at random) for a log-uniform number of steps in
    ``length``; with ``alternate`` the actions take turns each step instead (a wiggle)."""

    actions: tuple[str, ...]
    weight: float
    length: tuple[int, int]
    alternate: bool = False


@dataclass(frozen=True)
class Style:
    segments: tuple[Segment, ...]
    tap: float  # chance per step of a one-step tap of a random other action (a slip)


STYLES: dict[str, Style] = {
    "human": Style(
        segments=(
            Segment(("forward",), 0.30, (6, 40)),
            Segment(("turn_left", "turn_right"), 0.22, (2, 12)),
            Segment(("forward_left", "forward_right"), 0.15, (3, 15)),
            Segment(("noop",), 0.15, (3, 25)),
            Segment(("turn_left", "turn_right"), 0.06, (2, 8), alternate=True),
            Segment(("move_left", "move_right"), 0.30, (2, 15)),
            Segment(("move_left", "move_right"), 0.06, (2, 8), alternate=True),
            Segment(("attack",), 0.08, (1, 6)),
            Segment(("backward",), 0.04, (2, 10)),
        ),
        tap=0.05,
    ),
    # Evaluation only: longer runs and pauses, shorter and more frequent turns, more slips.
    "human_holdout": Style(
        segments=(
            Segment(("forward",), 0.35, (10, 60)),
            Segment(("turn_left", "turn_right"), 0.25, (1, 20)),
            Segment(("forward_left", "forward_right"), 0.08, (2, 8)),
            Segment(("noop",), 0.20, (5, 40)),
            Segment(("turn_left", "turn_right"), 0.04, (2, 6), alternate=True),
            Segment(("move_left", "move_right"), 0.35, (1, 25)),
            Segment(("move_left", "move_right"), 0.04, (2, 6), alternate=True),
            Segment(("attack",), 0.06, (1, 10)),
            Segment(("backward",), 0.02, (2, 6)),
        ),
        tap=0.10,
    ),
}


class HumanLikePolicy:
    """A scripted walker per env slot, playing segments of a :class:`Style`."""

    def __init__(self, action_names: Sequence[str], style: str = "human", seed: int = 0) -> None:
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
        self.name = style
        self.n_actions = len(action_names)
        index = {name: i for i, name in enumerate(action_names)}
        self.segments: list[tuple[list[int], Segment]] = []
        for seg in STYLES[style].segments:
            ids = [index[a] for a in seg.actions if a in index]
            if len(ids) == len(seg.actions):  # only segments the scenario can play
                self.segments.append((ids, seg))
        if not self.segments:
            raise ValueError(f"style {style!r} has no segment for actions {list(action_names)}")
        weights = np.array([seg.weight for _, seg in self.segments])
        self.weights = weights / weights.sum()
        self.tap = STYLES[style].tap
        self.rng = np.random.default_rng(seed)
        self._plan: dict[int, list[int]] = {}  # slot -> actions still to play

    def _new_segment(self) -> list[int]:
        ids, seg = self.segments[int(self.rng.choice(len(self.segments), p=self.weights))]
        lo, hi = seg.length
        n = int(np.exp(self.rng.uniform(np.log(lo), np.log(hi + 1))))
        if seg.alternate:
            first = int(self.rng.integers(len(ids)))
            return [ids[(first + k) % len(ids)] for k in range(n)]
        return [ids[int(self.rng.integers(len(ids)))]] * n

    def act(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        rows = np.arange(len(obs)) if rows is None else rows
        out = np.zeros(len(rows), dtype=np.int64)
        for k, slot in enumerate(rows.tolist()):
            plan = self._plan.get(slot)
            if not plan:
                plan = self._plan[slot] = self._new_segment()
            out[k] = plan.pop(0)
            if self.rng.random() < self.tap:
                out[k] = int(self.rng.integers(self.n_actions))
        return out

    def reset_env(self, slot: int) -> None:
        self._plan.pop(slot, None)


class MixturePolicy:
    """Each env slot plays one component from its episode's start to its end; components are
    drawn by weight when a slot starts (and again at ``reset_env``)."""

    def __init__(self, components: Sequence[tuple[str, Policy, float]], seed: int = 0) -> None:
        if not components:
            raise ValueError("a mixture needs at least one component")
        self.names = [name for name, _, _ in components]
        self.policies = [policy for _, policy, _ in components]
        weights = np.array([w for _, _, w in components], dtype=np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"mixture weights must be >= 0 and not all 0, got {weights}")
        self.weights = weights / weights.sum()
        counts = {p.n_actions for p in self.policies}
        if len(counts) != 1:
            raise ValueError(f"mixture components disagree on the number of actions: {counts}")
        self.n_actions = counts.pop()
        self.rng = np.random.default_rng(seed)
        self._slot: dict[int, int] = {}

    def _component(self, slot: int) -> int:
        if slot not in self._slot:
            self._slot[slot] = int(self.rng.choice(len(self.policies), p=self.weights))
        return self._slot[slot]

    def act(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        rows = np.arange(len(obs)) if rows is None else rows
        which = np.array([self._component(int(r)) for r in rows], dtype=np.int64)
        out = np.zeros(len(rows), dtype=np.int64)
        for c in np.unique(which):
            sel = np.flatnonzero(which == c)
            out[sel] = self.policies[c].act(obs[sel], rows[sel])
        return out

    def reset_env(self, slot: int) -> None:
        old = self._slot.pop(slot, None)
        if old is not None:
            reset = getattr(self.policies[old], "reset_env", None)
            if reset is not None:
                reset(slot)

    def behaviours(self, n: int) -> list[str]:
        return [self.names[self._component(i)] for i in range(n)]
