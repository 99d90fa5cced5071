"""The game's state in the dream: which variables a scenario has, how they become tokens, and
how reward and episode end follow from them.

This is the one place that knows it. The prior carries the state as one token per variable and
frame (the variable's value, clamped to its range, as an integer bin), the dream env takes its
reward and ``terminated`` from :meth:`GameState.reward` and :meth:`GameState.dead`, play's HUD
shows :meth:`GameState.describe`, and the evaluation compares predicted and real values.

Rules are the scenario's own (from its ViZDoom config, recorded in the dataset's manifest):
``living_reward`` per tic times ``frame_skip`` tics per step, plus ``kill_reward`` per kill
(KILLCOUNT rising; defend_the_center's map script pays 1), minus ``death_penalty`` on the step
the player dies (HEALTH reaching 0 or below).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# Value ranges of ViZDoom's game variables as tokens: values are clamped into [low, high] and
# each integer is one bin, so 0 HP and any negative health (dead) share bin 0.
RANGES: dict[str, tuple[int, int]] = {
    "HEALTH": (0, 200),
    "ARMOR": (0, 200),
    "KILLCOUNT": (0, 100),
    "ITEMCOUNT": (0, 100),
    "FRAGCOUNT": (0, 100),
    "DEATHCOUNT": (0, 100),
    "HITCOUNT": (0, 100),
    "DAMAGECOUNT": (0, 1000),
    "SELECTED_WEAPON": (0, 9),
    "SELECTED_WEAPON_AMMO": (0, 200),
}
DEFAULT_RANGE = (0, 200)  # AMMO0-9 and anything else

# How the HUD and the death screen name a variable (ViZDoom's name otherwise).
LABELS = {"HEALTH": "HP", "AMMO2": "ammo", "KILLCOUNT": "kills"}


def variable_range(name: str) -> tuple[int, int]:
    return RANGES.get(name, DEFAULT_RANGE)


@dataclass(frozen=True)
class GameRules:
    """A scenario's reward and end rules (per env step of ``frame_skip`` tics)."""

    living_reward: float = 0.0
    death_penalty: float = 0.0
    frame_skip: int = 4
    episode_timeout_tics: int = 0  # 0: none
    kill_reward: float = 0.0  # per KILLCOUNT point gained in a step

    @property
    def timeout_steps(self) -> int | None:
        if self.episode_timeout_tics <= 0:
            return None
        return int(self.episode_timeout_tics // self.frame_skip)

    @classmethod
    def from_manifest(cls, rules: dict[str, float]) -> GameRules:
        return cls(
            living_reward=float(rules.get("living_reward", 0.0)),
            death_penalty=float(rules.get("death_penalty", 0.0)),
            frame_skip=int(rules.get("frame_skip", 4)),
            episode_timeout_tics=int(rules.get("episode_timeout_tics", 0)),
            kill_reward=float(rules.get("kill_reward", 0.0)),
        )


@dataclass(frozen=True)
class GameState:
    """The variables a world model carries and the rules it scores them by."""

    names: tuple[str, ...] = ()
    rules: GameRules = field(default_factory=GameRules)

    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def ranges(self) -> list[tuple[int, int]]:
        return [variable_range(n) for n in self.names]

    @property
    def vocab(self) -> tuple[int, ...]:
        """Bins per variable (its token vocabulary)."""
        return tuple(hi - lo + 1 for lo, hi in self.ranges)

    @property
    def health_index(self) -> int | None:
        return self.names.index("HEALTH") if "HEALTH" in self.names else None

    def index(self, name: str) -> int | None:
        """Where variable ``name`` (e.g. ``AMMO2``, ``KILLCOUNT``) is, None if not carried."""
        return self.names.index(name) if name in self.names else None

    def kills(self, values: np.ndarray, before: np.ndarray) -> np.ndarray:
        """(..., V) values after and before a step -> (...) kills made in that step."""
        k = self.index("KILLCOUNT")
        if k is None:
            return np.zeros(np.asarray(values).shape[:-1])
        return np.maximum(np.asarray(values)[..., k] - np.asarray(before)[..., k], 0.0)

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """(..., V) float game variables -> (..., V) int64 bins."""
        values = np.asarray(values, dtype=np.float64)
        lo = np.array([r[0] for r in self.ranges], dtype=np.float64)
        hi = np.array([r[1] for r in self.ranges], dtype=np.float64)
        return (np.clip(np.rint(values), lo, hi) - lo).astype(np.int64)

    def dequantize(self, bins: np.ndarray) -> np.ndarray:
        """(..., V) int bins -> (..., V) float32 values."""
        lo = np.array([r[0] for r in self.ranges], dtype=np.float32)
        return np.asarray(bins, dtype=np.float32) + lo

    def dead(self, values: np.ndarray) -> np.ndarray:
        """(..., V) values -> (...) bool: the player has died (HEALTH <= 0)."""
        values = np.asarray(values)
        h = self.health_index
        if h is None:
            return np.zeros(values.shape[:-1], dtype=bool)
        return values[..., h] <= 0

    def reward(self, values: np.ndarray, before: np.ndarray | None = None) -> np.ndarray:
        """(..., V) values after a step (and ``before`` it, for the kills it made) -> (...)
        float64 reward of that step, by the rules."""
        r = self.rules
        dead = self.dead(values)
        reward = r.living_reward * r.frame_skip - r.death_penalty * dead.astype(np.float64)
        if r.kill_reward and before is not None:
            reward = reward + r.kill_reward * self.kills(values, before)
        return reward

    def describe(self, values: np.ndarray) -> str:
        """``HEALTH 84`` style text of one frame's (V,) values."""
        return "  ".join(f"{n} {v:.0f}" for n, v in zip(self.names, values, strict=True))

    def tally(self, values: np.ndarray) -> str:
        """What the death screen says of one frame's (V,) values beside steps and return:
        ``kills 7`` where the scenario counts kills, else nothing."""
        k = self.index("KILLCOUNT")
        return "" if k is None else f"kills {np.asarray(values)[k]:.0f}"

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "rules": asdict(self.rules)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> GameState:
        if not data:
            return cls()
        return cls(tuple(data.get("names", ())), GameRules(**data.get("rules", {})))
