"""Checks of the dream against the real game from the same real starts, under the same keys.

A *start* is a real game reset with a seed, then a short prefix of human-like play (ViZDoom
replays a seed and an action list exactly, so a start can be reached again for every action
under test). The dream starts from the start's last frames and game variables; the real game
carries on from the replayed start. Measured here:

- action following: hold one action for 8 steps; how far the image turns (sum of the
  per-step horizontal shifts), how much it zooms (per-step scale), how much it changes;
- standing still: hold noop until death, in both;
- random play: uniformly random actions until the episode ends, in both;
- long play: colour statistics and collapse of single frames, and contact sheets.

The summaries (:func:`following_stats`, :func:`standing_still_stats`, ...) are plain
functions of these measures; :mod:`agents.dream.checks` runs the whole set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from agents.behaviours import HumanLikePolicy
from agents.doom_env import DoomEnv, make_env
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.world_model import WorldModel


@dataclass
class RealStart:
    seed: int
    prefix: list[int]  # actions played after the reset
    frames: np.ndarray  # (n, 64, 64, 3) uint8: the reset frame and a frame per prefix action
    actions: np.ndarray  # (n,) int64: the action into each frame (-1 for the reset frame)
    variables: np.ndarray  # (n, V) float32


def real_starts(
    env_name: str, n: int, min_prefix: int, max_prefix: int, seed: int = 1000
) -> list[RealStart]:
    """``n`` starts: reset with a seed, then ``min_prefix``..``max_prefix`` steps of human-like
    play (seeds whose prefix ends the episode are skipped)."""
    env = make_env(env_name)
    walker = HumanLikePolicy(env.action_names, "human_holdout", seed=seed)
    rng = np.random.default_rng(seed)
    out: list[RealStart] = []
    i = 0
    try:
        while len(out) < n:
            k = int(rng.integers(min_prefix, max_prefix + 1))
            walker.reset_env(0)
            obs, info = env.reset(seed=seed + i)
            frames, actions, variables = [obs], [-1], [info["game_variables"]]
            for _ in range(k):
                a = int(walker.act(obs[None])[0])
                obs, _, term, trunc, info = env.step(a)
                if term or trunc:
                    break
                frames.append(obs)
                actions.append(a)
                variables.append(info["game_variables"])
            if len(frames) == k + 1:
                out.append(
                    RealStart(
                        seed + i,
                        actions[1:],
                        np.stack(frames),
                        np.array(actions, np.int64),
                        np.stack(variables).astype(np.float32),
                    )
                )
            i += 1
    finally:
        env.close()
    return out


def replay(env: DoomEnv, start: RealStart) -> None:
    env.reset(seed=start.seed)
    for a in start.prefix:
        env.step(a)


def context_frames(model: WorldModel) -> int:
    """Frames a dream start needs: the dreamer's whole history."""
    return model.dreamer(1).history * model.frames_per_step


@dataclass
class Rollout:
    frames: np.ndarray | None  # (N, T, 64, 64, 3) uint8 (None when not kept)
    variables: np.ndarray  # (N, T, V) float32
    died: np.ndarray  # (N,) step the player died at (-1: not within T)
    length: np.ndarray  # (N,) steps until the episode ended (death, or the real game's timeout)


def dream_rollout(
    model: WorldModel,
    starts: list[RealStart],
    actions: np.ndarray,
    sampling: SamplingConfig,
    seed: int = 0,
    stop_on_death: bool = True,
    keep_frames: bool = True,
) -> Rollout:
    """Dream every start forward under ``actions`` (N, T) from its last frames (every start
    must hold :func:`context_frames` frames). With ``stop_on_death`` the dreams stop once all
    have died (T shrinks); a dream never times out, so its length is its death step + 1 or T."""
    n = context_frames(model)
    if min(len(s.frames) for s in starts) < n:
        raise ValueError(f"every start needs {n} frames of real play")
    dreamer = model.dreamer(len(starts), sampling, seed)
    dreamer.start(
        np.stack([s.frames[-n:] for s in starts]),
        np.stack([s.actions[-n:] for s in starts]),
        np.stack([s.variables[-n:] for s in starts]),
    )
    out_f, out_v = [], []
    died = np.full(len(starts), -1)
    for t in range(actions.shape[1]):
        step = dreamer.step(actions[:, t])
        if keep_frames:
            out_f.append(step.frames[:, -1])
        out_v.append(step.variables if step.variables is not None else np.zeros((len(starts), 0)))
        dead = (step.done_prob > 0.5) & (died < 0)
        died[dead] = t
        if stop_on_death and (died >= 0).all():
            break
    steps = len(out_v)
    return Rollout(
        np.stack(out_f, 1) if keep_frames else None,
        np.stack(out_v, 1).astype(np.float32),
        died,
        np.where(died >= 0, died + 1, steps),
    )


def real_rollout(
    env_name: str, starts: list[RealStart], actions: np.ndarray, keep_frames: bool = True
) -> Rollout:
    """The real game from every start under ``actions`` (N, T), as :func:`dream_rollout`;
    after an episode ends its last frame and variables repeat."""
    env = make_env(env_name)
    n, t_max = actions.shape
    frames = np.zeros((n, t_max, 64, 64, 3) if keep_frames else (n, 1, 64, 64, 3), np.uint8)
    variables = np.zeros((n, t_max, len(env.variable_names)), np.float32)
    died = np.full(n, -1)
    length = np.full(n, t_max)
    try:
        for i, start in enumerate(starts):
            replay(env, start)
            for t in range(t_max):
                obs, _, term, trunc, info = env.step(int(actions[i, t]))
                frames[i, t if keep_frames else 0], variables[i, t] = obs, info["game_variables"]
                if term or trunc:
                    died[i] = t if info.get("end_reason") == "death" else -1
                    length[i] = t + 1
                    if keep_frames:
                        frames[i, t + 1 :] = obs
                    variables[i, t + 1 :] = info["game_variables"]
                    break
    finally:
        env.close()
    return Rollout(frames if keep_frames else None, variables, died, length)


def _gray(frames: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(frames, dtype=torch.float32).mean(-1)  # (..., H, W)


def horizontal_shift(a: np.ndarray, b: np.ndarray, max_shift: int = 24) -> np.ndarray:
    """Per pair of frames (N, H, W, 3): the horizontal shift dx (pixels) for which b[:, x]
    best matches a[:, x - dx] (positive: the picture moved right, as when turning left)."""
    x, y = _gray(a), _gray(b)
    w = x.shape[-1]
    errors = []
    for dx in range(-max_shift, max_shift + 1):
        lo, hi = max(0, dx), min(w, w + dx)
        diff = y[..., lo:hi] - x[..., lo - dx : hi - dx]
        errors.append((diff**2).mean(dim=(-1, -2)))
    return (torch.stack(errors, -1).argmin(-1) - max_shift).numpy()


def zoom(a: np.ndarray, b: np.ndarray, scales: np.ndarray | None = None) -> np.ndarray:
    """Per pair of frames: the scale s >= 1 of a centre zoom of a that best matches b
    (walking forward zooms in)."""
    scales = np.linspace(1.0, 1.3, 16) if scales is None else scales
    x, y = _gray(a)[:, None], _gray(b)
    errors = []
    for s in scales:
        inv = 1.0 / float(s)  # a float64 theta would not match the float32 frames
        theta = torch.tensor([[inv, 0, 0], [0, inv, 0]]).expand(len(x), 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        zoomed = F.grid_sample(x, grid, align_corners=False)[:, 0]
        m = int(x.shape[-1] * 0.15)  # ignore the borders
        errors.append(((zoomed - y)[..., m:-m, m:-m] ** 2).mean(dim=(-1, -2)))
    return scales[torch.stack(errors, -1).argmin(-1).numpy()]


def motion(frames: np.ndarray, first: np.ndarray) -> dict[str, np.ndarray]:
    """Per rollout (N, T, H, W, 3) after frame ``first`` (N, H, W, 3): total horizontal shift,
    total log-zoom, and mean absolute change per step."""
    seq = np.concatenate([first[:, None], frames], 1)
    n, t = seq.shape[:2]
    a, b = seq[:, :-1].reshape(-1, *seq.shape[2:]), seq[:, 1:].reshape(-1, *seq.shape[2:])
    shift = horizontal_shift(a, b).reshape(n, t - 1).sum(1)
    log_zoom = np.log(zoom(a, b)).reshape(n, t - 1).sum(1)
    change = np.abs(b.astype(np.float32) - a.astype(np.float32)).mean(axis=(1, 2, 3))
    return {"shift": shift, "log_zoom": log_zoom, "change": change.reshape(n, t - 1).mean(1)}


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def _ratio(a: float, b: float) -> float:
    """a / b, NaN where b is 0 (a real view that did not shift: nothing to compare against)."""
    return a / b if b else float("nan")


def following_stats(moves: dict[str, dict[str, dict[str, np.ndarray]]]) -> dict[str, dict]:
    """Summaries of :func:`motion` per held action (``moves[action][world]``, world ``dream`` or
    ``real``, from the same starts): for each turn or sidestep, the share of rollouts whose
    picture moved the right way (turning or stepping left moves it right) and the dream/real
    ratio of the mean total shift; the share of starts where forward zooms in more than noop;
    noop's change per step."""
    out: dict[str, dict] = {}
    for name, sign in (("turn_left", 1), ("turn_right", -1), ("move_left", 1), ("move_right", -1)):
        if name not in moves:
            continue
        shift = {w: moves[name][w]["shift"] for w in ("dream", "real")}
        out[name] = {
            **{f"{w}_right_way": _mean(sign * shift[w] > 0) for w in shift},
            **{f"{w}_shift": _mean(shift[w]) for w in shift},
            "shift_ratio": _ratio(_mean(shift["dream"]), _mean(shift["real"])),
        }
    if "forward" in moves and "noop" in moves:
        out["forward"] = {
            **{
                f"{w}_zooms_more_than_noop": _mean(
                    moves["forward"][w]["log_zoom"] > moves["noop"][w]["log_zoom"]
                )
                for w in ("dream", "real")
            },
            **{f"{w}_log_zoom": _mean(moves["forward"][w]["log_zoom"]) for w in ("dream", "real")},
        }
    if "noop" in moves:
        change = {w: _mean(moves["noop"][w]["change"]) for w in ("dream", "real")}
        out["noop"] = {
            "dream_change": change["dream"],
            "real_change": change["real"],
            "change_ratio": _ratio(change["dream"], change["real"]),
        }
    return out


def standing_still_stats(
    real_died: np.ndarray, dream_died: np.ndarray, cap: float = 3.0, tolerance: float = 0.15
) -> dict[str, float]:
    """How well dreamed deaths under noop match the real ones, from the same starts.

    ``real_died``/``dream_died`` (N,) are the steps each died at (-1: never; a start where the
    real player did not die is left out). A dream counts as on time if it died within
    ``tolerance`` of the real number of steps, and as running past if it had not died after
    ``cap`` times the real number."""
    ok = real_died >= 0
    real, dream = real_died[ok] + 1, dream_died[ok] + 1  # steps taken, death included
    died = (dream > 0) & (dream <= cap * real)
    return {
        "starts": int(ok.sum()),
        "within_tolerance": _mean(died & (np.abs(dream - real) <= tolerance * real)),
        "early": _mean(died & (dream < (1 - tolerance) * real)),
        "late": _mean(died & (dream > (1 + tolerance) * real)),
        "ran_past_cap": int((~died).sum()),
        "real_steps_mean": _mean(real),
        "dream_steps_mean_of_deaths": _mean(dream[died]),
        "tolerance": tolerance,
        "cap": cap,
    }


def length_stats(real: np.ndarray, dream: np.ndarray, limit: np.ndarray) -> dict[str, float]:
    """Episode lengths (N,) in the real game and the dream from the same starts under the same
    actions; ``limit`` (N,) is the real game's timeout from each start (the dream is stopped
    there too)."""
    dream = np.minimum(dream, limit)
    return {
        "episodes": len(real),
        "real_mean": _mean(real),
        "dream_mean": _mean(dream),
        "ratio": _mean(dream) / _mean(real),
        "real_median": float(np.median(real)),
        "dream_median": float(np.median(dream)),
        "real_timeouts": _mean(real >= limit),
        "dream_timeouts": _mean(dream >= limit),
    }


# Collapse thresholds on 0-255 grey levels. A real health_gathering frame always shows a dark
# ceiling or sky, walls and a lit floor: its grey levels spread over tens of levels and its
# 16x16 tiles differ in brightness by far more than these.
UNIFORM_STD = 6.0  # a frame whose grey values vary less than this is a flat wash
ONE_TEXTURE_SPREAD = 12.0  # tiles whose mean brightness spans less than this: no scene layout


def colour_stats(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame (..., H, W, 3) uint8: the mean and standard deviation of each channel,
    each (..., 3) float32."""
    x = frames.astype(np.float32)
    return x.mean(axis=(-3, -2)), x.std(axis=(-3, -2))


def collapsed(frames: np.ndarray, tile: int = 16) -> dict[str, np.ndarray]:
    """Per frame (..., H, W, 3) uint8: ``uniform`` (nearly one colour) and ``one_texture`` (no
    large-scale layout: every tile about as bright as the others), each (...) bool."""
    grey = frames.astype(np.float32).mean(-1)
    *lead, h, w = grey.shape
    tiles = grey.reshape(*lead, h // tile, tile, w // tile, tile).mean(axis=(-3, -1))
    spread = tiles.max(axis=(-2, -1)) - tiles.min(axis=(-2, -1))
    return {
        "uniform": grey.std(axis=(-2, -1)) < UNIFORM_STD,
        "one_texture": spread < ONE_TEXTURE_SPREAD,
    }


def contact_sheet(frames: np.ndarray, every: int = 50, gap: int = 2) -> np.ndarray:
    """One image of rollouts (N, T, H, W, 3): a row per rollout, a column per ``every``-th
    frame (frames 0, every, 2 * every, ...)."""
    picked = frames[:, ::every]
    n, t, h, w, _ = picked.shape
    out = np.full((n * (h + gap), t * (w + gap), 3), 255, np.uint8)
    for i in range(n):
        for j in range(t):
            out[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = picked[i, j]
    return out
