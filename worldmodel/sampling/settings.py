"""How a dream is drawn: the sampling settings every dreamer, play, the dream env and the
evaluation share, one dataclass and the list of those a user sets.

A checkpoint may carry its own settings (``tools/set_sampling.py``); flags override them one
by one (:data:`USER_SETTINGS`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0  # < 1 sharper and steadier, > 1 wilder dreams
    top_k: int | None = None  # keep only the k most likely codes
    top_p: float | None = None  # keep the smallest set of codes with this much probability
    slide: int | None = None  # steps dropped when the window is full (default: half of it)
    state_temperature: float | None = None  # game-variable tokens (None: as the codes)
    # Frame prior only: multiply the odds that HEALTH (every variable, in a game without it)
    # changes in a step (a hit, a pickup, a death) by this, after the temperature. Unlike a
    # hotter state temperature it keeps the events where the model expects them, only more
    # likely (beyond the paper).
    state_change_odds: float = 1.0
    # Frame prior only: where a code and its neighbours did not change, show the last frame's
    # pixels instead of the decoder's redraw of them (beyond the paper).
    copy_unchanged: bool = False
    # Frame prior trained with ``reveal`` only: draw each frame in this many passes, each
    # committing the most confident of the codes it drew (MaskGIT's cosine schedule), so a
    # frame's codes are drawn knowing each other (beyond the paper). 1: all at once; None: the
    # model's default (``worldmodel.frame_sampling.REVEAL_PASSES`` for a reveal prior, else 1).
    passes: int | None = None
    # Where the model gives the code the same place held in the last frame at least this
    # probability (before temperature), keep that code instead of drawing one. A
    # still view then stays still (at T = 1 a code 90% sure to stay is redrawn one time in ten)
    # while places the model expects to change are drawn as before (beyond the paper). None or
    # 0: off.
    keep_likely: float | None = None

    def __post_init__(self) -> None:
        """Refuse a setting no dream can use (a negative temperature would otherwise be read as
        greedy decoding, a NaN as anything), naming it and what it accepts."""
        some = _off_or
        rules = (
            ("temperature", self.temperature >= 0, "at least 0 (0: greedy)"),
            ("top_k", some(self.top_k, lambda k: k >= 1), "at least 1"),
            ("top_p", some(self.top_p, lambda p: 0 < p <= 1), "in (0, 1] (1: all codes)"),
            ("slide", some(self.slide, lambda n: n >= 1), "at least 1"),
            ("state_temperature", some(self.state_temperature, lambda t: t >= 0), "at least 0"),
            ("state_change_odds", 0 < self.state_change_odds < math.inf, "greater than 0"),
            ("passes", some(self.passes, lambda n: n >= 1), "at least 1"),
            ("keep_likely", some(self.keep_likely, lambda k: 0 <= k <= 1), "in [0, 1] (0: off)"),
        )
        for name, ok, accepted in rules:
            if not ok:
                value = getattr(self, name)
                raise ValueError(f"SamplingConfig.{name} must be {accepted}, got {value!r}")


def _off_or(value: float | None, ok: Callable[[float], bool]) -> bool:
    """A setting that may be off (None) is off, or ``ok``."""
    return value is None or ok(value)


# The settings a user sets from the command line (play.py, evaluate.py, tools/set_sampling.py)
# and a checkpoint's own sampling overrides one by one.
USER_SETTINGS = (
    "temperature",
    "top_p",
    "passes",
    "state_temperature",
    "copy_unchanged",
    "keep_likely",
)


# Why a prior trained without ``reveal`` refuses passes > 1 (both dreamers say it).
ONE_PASS_ONLY = (
    "this prior draws a frame in one pass (it was trained without reveal): use 1 pass "
    "(--passes 1, SamplingConfig.passes=1)"
)


def sampling_from_dict(values: dict) -> SamplingConfig:
    """A :class:`SamplingConfig` from a plain dict (a checkpoint's default sampling); an unknown
    or ill-typed entry raises ``ValueError``."""
    names = {f.name for f in dataclasses.fields(SamplingConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown sampling settings {unknown}")
    try:
        return SamplingConfig(**values)
    except TypeError as e:
        raise ValueError(f"bad sampling settings ({e})") from None


def sampling_label(
    temperature: float,
    top_p: float | None = None,
    passes: int | None = None,
    keep_likely: float | None = None,
) -> str:
    """How reports name a sampling setting: ``T1``, ``T1 p0.9`` with nucleus sampling, ``T1 x4``
    with frames drawn in 4 passes, ``T1 k0.5`` keeping codes at least 0.5 likely to stay."""
    label = f"T{temperature:g}" + (f" p{top_p:g}" if top_p is not None and top_p < 1 else "")
    label += f" x{passes}" if passes is not None and passes > 1 else ""
    return label + (f" k{keep_likely:g}" if keep_likely else "")
