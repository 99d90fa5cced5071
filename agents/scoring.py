"""Scoring agents in the real game: episodes from fixed seeds, played in parallel games.

Every real-game score in the project comes from here (the dream-agent experiment, its exploit
check, and the agent report at the end of a collection), so the same seeds mean the same
episodes everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.doom_env import make_env
from agents.policies import Policy, new_episode

# Scenarios without a timeout (take_cover) end only at death; real episodes are capped here,
# as World Models capped its take_cover episodes at 2100 frames.
CAP_TICS = 2100
EVAL_SEED = 10_000  # real-game episodes are reset with seeds EVAL_SEED, EVAL_SEED + 1, ...


@dataclass
class Scores:
    """Real-game episodes: return and steps survived (each ``frame_skip`` tics) per episode."""

    returns: np.ndarray  # (N,) float64
    steps: np.ndarray  # (N,) int64


def episode_cap(env_name: str) -> int | None:
    """Steps after which a real episode is cut: None where the scenario has its own timeout."""
    env = make_env(env_name)
    try:
        timeout, skip = env.rules["episode_timeout_tics"], env.frame_skip
    finally:
        env.close()
    return None if timeout > 0 else CAP_TICS // skip


def play_real(
    policy: Policy,
    env_name: str,
    seeds: Sequence[int],
    prefixes: Sequence[Sequence[int]] | None = None,
    cap: int | None = None,
    n_envs: int = 8,
    record: int | None = None,
) -> tuple[Scores, list[tuple[np.ndarray, float]]]:
    """One real episode per seed, ``n_envs`` at a time, played by ``policy``.

    Episode i is reset with ``seeds[i]``, replays ``prefixes[i]`` (not scored), then the
    policy plays until the game ends or ``cap`` scored steps. Returns the scores and, for
    episode ``record``, each scored step's (frame, HEALTH) (empty without ``record``).
    """
    n = len(seeds)
    prefixes = prefixes if prefixes is not None else [()] * n
    envs = [make_env(env_name) for _ in range(min(n_envs, n))]
    health = envs[0].variable_names.index("HEALTH") if "HEALTH" in envs[0].variable_names else None
    returns, steps = np.zeros(n), np.zeros(n, dtype=np.int64)
    frames: list[tuple[np.ndarray, float]] = []
    slot = np.full(len(envs), -1)  # the episode each env plays (-1: none left)
    obs = np.zeros((len(envs), *envs[0].observation_space.shape), dtype=np.uint8)
    todo = iter(range(n))

    def begin(k: int) -> None:
        i = next(todo, -1)
        slot[k] = i
        if i < 0:
            return
        obs[k], _ = envs[k].reset(seed=int(seeds[i]))
        new_episode(policy, k, prefixes[i])
        for a in prefixes[i]:
            obs[k], _, term, trunc, _ = envs[k].step(int(a))
            if term or trunc:
                raise ValueError(f"episode {i}'s prefix ends the game before it is scored")

    try:
        for k in range(len(envs)):
            begin(k)
        while (slot >= 0).any():
            live = np.flatnonzero(slot >= 0)
            actions = policy.act(obs[live], live)
            for k, a in zip(live, actions, strict=True):
                i = slot[k]
                obs[k], r, term, trunc, info = envs[k].step(int(a))
                returns[i] += r
                steps[i] += 1
                if i == record:
                    h = info["game_variables"][health] if health is not None else 0.0
                    frames.append((obs[k].copy(), float(h)))
                if term or trunc or (cap is not None and steps[i] >= cap):
                    begin(k)
    finally:
        for env in envs:
            env.close()
    return Scores(returns, steps), frames


def score_real(policy: Policy, env_name: str, episodes: int, seed: int = EVAL_SEED) -> Scores:
    """``episodes`` real episodes from the fixed seeds ``seed``, ``seed + 1``, ..."""
    seeds = range(seed, seed + episodes)
    return play_real(policy, env_name, seeds, cap=episode_cap(env_name))[0]
