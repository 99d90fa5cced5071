"""Play that aims like a person, for scenarios with a gun (defend_the_center).

A person in defend_the_center looks around for a monster, turns toward it, fires a short burst
when it is in the crosshair, and sometimes pauses, over-turns or fires at nothing.
:class:`AimingPolicy` does that from the screen alone: monsters are the reddish (demons) or
dark (distant shapes on the grey floor) pixels in the band between the wall's foot and the
gun, and their columns say which way to turn. It reacts late (it decides every few steps, like
a person's reaction time), so its aim overshoots and corrects as a person's does.

Its :data:`AIM_STYLES` come as ``aim`` for training data and ``aim_holdout`` (slower, jumpier,
more pauses) for evaluation only, as the walkers of :mod:`agents.behaviours` do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.policies import grown


@dataclass(frozen=True)
class AimStyle:
    react: tuple[int, int]  # steps between decisions (reaction time), uniform in [lo, hi]
    burst: tuple[int, int]  # steps of fire once a monster is in the crosshair
    search: tuple[int, int]  # steps of one turn while nothing is in sight
    pause: float  # chance per decision of standing still for a while instead
    wild: float  # chance per decision of a random action (a slip, a shot at nothing)
    tolerance: int  # columns off the centre that count as on target


AIM_STYLES: dict[str, AimStyle] = {
    "aim": AimStyle(react=(1, 3), burst=(1, 4), search=(3, 12), pause=0.08, wild=0.05, tolerance=3),
    "aim_holdout": AimStyle(
        react=(2, 5), burst=(2, 7), search=(2, 20), pause=0.15, wild=0.10, tolerance=5
    ),
}

# Rows of a 64x64 frame where monsters stand: below the wall's top, above the gun.
BAND = slice(18, 44)


def monster_columns(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 frames -> (N, W) counts of monster-like pixels per column in
    :data:`BAND`: reddish (red well above green) or dark (the floor and walls are not)."""
    band = frames[:, BAND].astype(np.int16)
    r, g, b = band[..., 0], band[..., 1], band[..., 2]
    reddish = (r - g > 45) & (r > 90)
    dark = (band.max(-1) < 60) & (b < 90)
    return (reddish | dark).sum(1)


def target_column(counts: np.ndarray, min_pixels: int = 2) -> int | None:
    """The column of the biggest monster-like group in one frame's ``counts`` (W,), or None."""
    if counts.sum() < min_pixels:
        return None
    smooth = np.convolve(counts, np.ones(5), mode="same")
    return int(np.argmax(smooth))


class AimingPolicy:
    """A person-like shooter per env slot (see the module docstring)."""

    def __init__(self, action_names: Sequence[str], style: str = "aim", seed: int = 0) -> None:
        if style not in AIM_STYLES:
            raise ValueError(f"unknown style {style!r}; choose one of {', '.join(AIM_STYLES)}")
        names = list(action_names)
        need = ("noop", "turn_left", "turn_right", "attack")
        if not all(n in names for n in need):
            raise ValueError(f"aiming needs the actions {need}; this env has {names}")
        self.name, self.style = style, AIM_STYLES[style]
        self.n_actions = len(names)
        self.ids = {n: names.index(n) for n in names}
        self.rng = np.random.default_rng(seed)
        self._plan: dict[int, list[int]] = {}
        self._wait = np.zeros(0, dtype=np.int64)  # steps until each slot decides again

    def reset_env(self, slot: int) -> None:
        self._plan.pop(slot, None)
        self._wait = grown(self._wait, slot + 1, 0)
        self._wait[slot] = 0

    def _decide(self, frame: np.ndarray) -> list[int]:
        s, rng, ids = self.style, self.rng, self.ids
        if rng.random() < s.wild:
            return [int(rng.integers(self.n_actions))] * int(rng.integers(1, 4))
        if rng.random() < s.pause:
            return [ids["noop"]] * int(rng.integers(2, 12))
        x = target_column(monster_columns(frame[None])[0])
        centre = frame.shape[1] // 2
        if x is None:  # look around: one turn for a while
            turn = ids["turn_left" if rng.random() < 0.5 else "turn_right"]
            return [turn] * int(rng.integers(s.search[0], s.search[1] + 1))
        if abs(x - centre) <= s.tolerance:
            return [ids["attack"]] * int(rng.integers(s.burst[0], s.burst[1] + 1))
        side = "left" if x < centre else "right"
        fire = f"attack_{side}" in ids and rng.random() < 0.3  # turn and shoot at once
        return [ids[f"attack_{side}" if fire else f"turn_{side}"]]

    def act(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        rows = np.arange(len(obs)) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(rows):
            self._wait = grown(self._wait, int(rows.max()) + 1, 0)
        out = np.zeros(len(rows), dtype=np.int64)
        for k, slot in enumerate(rows.tolist()):
            plan = self._plan.get(slot)
            if not plan or self._wait[slot] <= 0:
                plan = self._plan[slot] = self._decide(obs[k])
                lo, hi = self.style.react
                self._wait[slot] = max(len(plan), int(self.rng.integers(lo, hi + 1)))
            out[k] = plan.pop(0) if len(plan) > 1 else plan[0]
            self._wait[slot] -= 1
        return out
