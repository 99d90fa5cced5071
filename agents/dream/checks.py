"""The dream against the real game, from the same real starts under the same keys
(measures in :mod:`agents.dream.measures`):

- action following (both priors): hold each of turn_left, turn_right, move_left, move_right,
  forward and noop (those the scenario has) for a few steps; does the picture turn or slide
  the right way and as far, zoom when walking, stay still?
- standing still (models with game state): hold noop until death; does the dream die when
  the real player does?
- random play (game state): uniformly random actions until the episode ends; mean lengths.
- long play (game state): long dreams under human-like and random control; do the colours
  stay within the real range, does the picture collapse, does anything turn NaN? Contact
  sheets (every 50th frame) are written as PNGs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from agents.behaviours import HumanLikePolicy
from agents.dream.measures import (
    RealStart,
    collapsed,
    colour_stats,
    contact_sheet,
    context_frames,
    dream_rollout,
    following_stats,
    length_stats,
    motion,
    real_rollout,
    real_starts,
    standing_still_stats,
)
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.world_model import WorldModel

# the ones a scenario has are held (take_cover: strafing and noop only)
HELD = ("turn_left", "turn_right", "move_left", "move_right", "forward", "noop")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class CheckConfig:
    real_game: bool = field(
        default=True, metadata=_help("the checks against the real game (follow, still, random)")
    )
    starts: int = field(default=32, metadata=_help("real starts: following, standing (0: none)"))
    random_starts: int = field(default=64, metadata=_help("real starts: random play (0: none)"))
    hold: int = field(default=8, metadata=_help("steps each action is held"))
    long_play: int = field(default=1000, metadata=_help("steps of each long dream (0: none)"))
    long_dreams: int = field(default=4, metadata=_help("long dreams per control"))
    start_seed: int = field(default=1000, metadata=_help("seed of the real starts"))

    @classmethod
    def quick(cls) -> CheckConfig:
        return cls(starts=8, random_starts=8, long_play=100, long_dreams=2)


def run_checks(
    model: WorldModel,
    config: CheckConfig,
    sampling: SamplingConfig,
    out: Path,
    seed: int = 0,
    say: Callable[[str], None] | None = None,
) -> dict:
    """Every check the config asks for (the state checks only for a model with game state);
    their metrics, and PNG contact sheets written into ``out``."""
    say = say or (lambda _: None)
    stateful = bool(model.game.size)
    wanted = max(
        config.starts if config.real_game else 0,
        config.random_starts if config.real_game and stateful else 0,
        config.long_dreams if config.long_play and stateful else 0,
    )
    if not wanted:
        return {}
    ctx = context_frames(model)
    say(f"{wanted} real starts")
    starts = real_starts(model.env, wanted, ctx - 1, ctx + 23, config.start_seed)
    prefix = np.array([len(s.prefix) for s in starts])
    m: dict = {
        "starts": {
            "context_frames": ctx,
            "prefix_steps_mean": float(prefix.mean()),
            "prefix_steps_range": [int(prefix.min()), int(prefix.max())],
            "seed": config.start_seed,
        }
    }
    if config.real_game and config.starts:
        say("action following")
        m["following"] = follow(model, starts[: config.starts], config.hold, sampling, seed)
        if stateful:
            say("standing still")
            m["standing_still"] = standing_still(model, starts[: config.starts], sampling, seed)
    if config.real_game and config.random_starts and stateful:
        say("random play")
        m["random_length"] = random_length(model, starts[: config.random_starts], sampling, seed)
    if config.long_play and stateful:
        say("long play")
        m["long_play"] = long_play(
            model, starts[: config.long_dreams], config.long_play, sampling, out, seed
        )
    return m


def follow(
    model: WorldModel, starts: list[RealStart], hold: int, sampling: SamplingConfig, seed: int
) -> dict:
    """Hold each of :data:`HELD` for ``hold`` steps in the dream and the real game."""
    moves: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    first = np.stack([s.frames[-1] for s in starts])
    for name in (a for a in HELD if a in model.action_names):
        actions = np.full((len(starts), hold), model.action_names.index(name))
        dream = dream_rollout(model, starts, actions, sampling, seed, stop_on_death=False)
        real = real_rollout(model.env, starts, actions)
        moves[name] = {"dream": motion(dream.frames, first), "real": motion(real.frames, first)}
    return {"starts": len(starts), "hold": hold, **following_stats(moves)}


def standing_still(
    model: WorldModel, starts: list[RealStart], sampling: SamplingConfig, seed: int
) -> dict:
    """Hold noop until death in both; the dream runs to 3x the real number of steps."""
    noop = model.action_names.index("noop")
    limit = model.game.rules.timeout_steps or 2000
    real = real_rollout(model.env, starts, np.full((len(starts), limit), noop), keep_frames=False)
    died = real.died >= 0  # a start whose player outlived the timeout sets no cap
    cap = 3 * int(real.length[died].max()) if died.any() else limit
    dream = dream_rollout(
        model, starts, np.full((len(starts), cap), noop), sampling, seed, keep_frames=False
    )
    return standing_still_stats(real.died, dream.died, cap=3.0)


def random_length(
    model: WorldModel, starts: list[RealStart], sampling: SamplingConfig, seed: int
) -> dict:
    """Uniformly random actions (the same in both) until the episode ends, or the real game's
    timeout from each start."""
    timeout = model.game.rules.timeout_steps or 2000
    limit = np.array([timeout - len(s.prefix) for s in starts])
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, len(model.action_names), (len(starts), int(limit.max())))
    real = real_rollout(model.env, starts, actions, keep_frames=False)
    dream = dream_rollout(model, starts, actions, sampling, seed, keep_frames=False)
    return length_stats(real.length, dream.length, limit)


def long_play(
    model: WorldModel,
    starts: list[RealStart],
    steps: int,
    sampling: SamplingConfig,
    out: Path,
    seed: int,
) -> dict:
    """``steps``-step dreams under the held-out human-like walker and under random actions,
    from the same starts; the real game under the same actions (until its episodes end) gives
    the range that real frames' colours span."""
    n = len(starts)
    walker = HumanLikePolicy(model.action_names, "human_holdout", seed=seed)
    controls = {
        "human_holdout": np.stack([walker.act(np.zeros(n)) for _ in range(steps)], 1),
        "random": np.random.default_rng(seed).integers(0, len(model.action_names), (n, steps)),
    }
    result: dict = {"steps": steps, "dreams_per_control": n}
    for name, actions in controls.items():
        dream = dream_rollout(model, starts, actions, sampling, seed, stop_on_death=False)
        real = real_rollout(model.env, starts, actions)
        alive = np.arange(steps)[None] < real.length[:, None]  # real frames before the end
        result[name] = long_play_stats(dream.frames, dream.variables, real.frames[alive])
        result[name]["dream_deaths"] = dream.died.tolist()
        result[name]["real_lengths"] = real.length.tolist()
        sheet = out / f"long_play_{name}.png"
        iio.imwrite(sheet, contact_sheet(dream.frames).repeat(2, 0).repeat(2, 1))
        result[name]["contact_sheet"] = sheet.name
    return result


def long_play_stats(frames: np.ndarray, variables: np.ndarray, real: np.ndarray) -> dict:
    """Per-frame colour statistics of dreams (N, T, H, W, 3) against the range real frames
    (M, H, W, 3) span (0.5th to 99.5th percentile of each statistic), per 100 steps; the share
    of collapsed frames in each (the real share is the baseline); non-finite variables."""
    mean, std = colour_stats(frames)  # (N, T, 3)
    real_mean, real_std = colour_stats(real)  # (M, 3)
    outside = np.zeros(mean.shape[:2], bool)
    for d, r in ((mean, real_mean), (std, real_std)):
        lo, hi = np.percentile(r, 0.5, axis=0), np.percentile(r, 99.5, axis=0)
        outside |= ((d < lo) | (d > hi)).any(-1)
    flags, real_flags = collapsed(frames), collapsed(real)
    t = frames.shape[1]
    buckets = [slice(i, min(i + 100, t)) for i in range(0, t, 100)]
    return {
        "colour_mean_per_100": [mean[:, b].mean((0, 1)).tolist() for b in buckets],
        "colour_std_per_100": [std[:, b].mean((0, 1)).tolist() for b in buckets],
        "real_colour_mean_range": [
            np.percentile(real_mean, 0.5, 0).tolist(),
            np.percentile(real_mean, 99.5, 0).tolist(),
        ],
        "real_colour_std_range": [
            np.percentile(real_std, 0.5, 0).tolist(),
            np.percentile(real_std, 99.5, 0).tolist(),
        ],
        "outside_real_range_per_100": [float(outside[:, b].mean()) for b in buckets],
        "outside_real_range": float(outside.mean()),
        "uniform": float(flags["uniform"].mean()),
        "one_texture": float(flags["one_texture"].mean()),
        "real_uniform": float(real_flags["uniform"].mean()),
        "real_one_texture": float(real_flags["one_texture"].mean()),
        "collapsed_per_100": [
            float((flags["uniform"] | flags["one_texture"])[:, b].mean()) for b in buckets
        ],
        "nonfinite_variables": int((~np.isfinite(variables)).sum()),
        "black_frames": int((frames.reshape(*frames.shape[:2], -1).max(-1) == 0).sum()),
        "real_frames": len(real),
    }
