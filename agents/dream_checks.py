"""Checks of the dream against the real game from the same real starts, under the same keys.

A *start* is a real game reset with a seed, then a short prefix of human-like play (ViZDoom
replays a seed and an action list exactly, so a start can be reached again for every action
under test). The dream starts from the start's last frames and game variables; the real game
carries on from the replayed start. Measured here:

- action following: hold one action for 8 steps; how far the image turns (sum of the
  per-step horizontal shifts), how much it zooms (per-step scale), how much it changes;
- standing still: hold noop until death, in both;
- random play: uniformly random actions until the episode ends, in both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from agents.behaviours import HumanLikePolicy
from agents.doom_env import DoomEnv, make_env
from worldmodel.sampling import SamplingConfig
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


def dream_rollout(
    model: WorldModel,
    starts: list[RealStart],
    actions: np.ndarray,
    sampling: SamplingConfig,
    seed: int = 0,
    stop_on_death: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dream every start forward under ``actions`` (N, T) from its last frames; returns frames
    (N, T, 64, 64, 3), variables (N, T, V) and the step each dream died at (N,) (-1: never).
    Every start must hold :func:`context_frames` frames."""
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
        out_f.append(step.frames[:, -1])
        out_v.append(step.variables if step.variables is not None else np.zeros((len(starts), 0)))
        dead = (step.done_prob > 0.5) & (died < 0)
        died[dead] = t
        if stop_on_death and (died >= 0).all():
            break
    return np.stack(out_f, 1), np.stack(out_v, 1), died


def real_rollout(
    env_name: str, starts: list[RealStart], actions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The real game from every start under ``actions`` (N, T), as :func:`dream_rollout`."""
    env = make_env(env_name)
    n, t_max = actions.shape
    frames = np.zeros((n, t_max, 64, 64, 3), np.uint8)
    variables = np.zeros((n, t_max, len(env.variable_names)), np.float32)
    died = np.full(n, -1)
    try:
        for i, start in enumerate(starts):
            replay(env, start)
            for t in range(t_max):
                obs, _, term, trunc, info = env.step(int(actions[i, t]))
                frames[i, t], variables[i, t] = obs, info["game_variables"]
                if term or trunc:
                    died[i] = t if info.get("end_reason") == "death" else -1
                    frames[i, t + 1 :], variables[i, t + 1 :] = obs, info["game_variables"]
                    break
    finally:
        env.close()
    return frames, variables, died


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
        theta = torch.tensor([[1.0 / s, 0, 0], [0, 1.0 / s, 0]]).expand(len(x), 2, 3)
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
