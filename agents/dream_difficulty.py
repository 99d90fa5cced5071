"""How hard a dream is next to the real game, measured before any agent trains in it.

An agent learns what its dream rewards. Three checks say whether that is the real game's lesson:

- **Deaths:** from the same recorded starts, how many dreams under random actions die within
  k steps, against how many of the recorded episodes died within k steps of those starts.
- **Imminent deaths:** from recorded starts k steps before a recorded death, dreaming on with the
  recorded actions, how many dreams die by then (the recording: all of them). A dream that kills
  at the right rate but not here kills at random, and teaches no dodging.
- **Blind policies:** how long a dream lasts under policies that never look (each action held,
  random, sweeping side to side). Where the real game ranks them (take_cover: sweeping lives
  about 4x longer than standing still), a dream worth training in ranks them the same way.

``tools/dream_difficulty.py`` prints all three for several ``state_change_odds``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from worldmodel.data import EpisodeStore
from worldmodel.dream_env import VecDreamEnv
from worldmodel.sampling import SamplingConfig
from worldmodel.world_model import WorldModel

# A blind policy: (steps each dream has run (B,), rng) -> actions (B,)
BlindPolicy = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def blind_policies(action_names: Sequence[str], sweep: int = 20) -> dict[str, BlindPolicy]:
    """Random, each action held, and (given move_left and move_right) alternating between the
    two every ``sweep`` steps."""
    n = len(action_names)
    policies: dict[str, BlindPolicy] = {"random": lambda t, rng: rng.integers(0, n, len(t))}
    for a, name in enumerate(action_names):
        policies[f"hold {name}"] = lambda t, rng, a=a: np.full(len(t), a)
    if "move_left" in action_names and "move_right" in action_names:
        left, right = action_names.index("move_left"), action_names.index("move_right")
        policies[f"sweep every {sweep}"] = lambda t, rng: np.where((t // sweep) % 2, right, left)
    return policies


def recorded_deaths_within(
    data: Path | str, split: str, env: str, context: int, horizons: Sequence[int]
) -> np.ndarray:
    """(len(horizons),) share of the start windows of ``context`` frames (all of them, as
    dreams draw them) whose recorded episode died within k steps after the window."""
    store = EpisodeStore(data, split, env=env)
    hits, total = np.zeros(len(horizons)), 0
    for e in store.entries:
        # windows end on frames context-1 .. length-1; the death is frame `length`
        left = e.length - np.arange(context - 1, e.length)
        total += len(left)
        if e.terminated:
            hits += [(left <= k).sum() for k in horizons]
    return hits / max(total, 1)


def dream_runs(
    model: WorldModel,
    data: Path | str,
    sampling: SamplingConfig,
    policy: BlindPolicy,
    dreams: int,
    max_steps: int,
    batch: int = 16,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Play ``dreams`` dreams from ``data``'s starts under ``policy``: the steps each lasted
    (dreams,) and whether it ended in death (dreams,) rather than at ``max_steps``."""
    env = VecDreamEnv(model, batch, data, model.env, max_steps=max_steps, sampling=sampling)
    try:
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        steps, died, ran = [], [], np.zeros(batch, dtype=np.int64)
        while len(steps) < dreams:
            _, _, terminated, truncated, _ = env.step(policy(ran, rng))
            ran += 1
            for i in np.flatnonzero(terminated | truncated):
                steps.append(ran[i])
                died.append(bool(terminated[i]))
                ran[i] = 0
    finally:
        env.close()
    return np.array(steps[:dreams]), np.array(died[:dreams])


def context_frames(model: WorldModel, data: Path | str) -> int:
    """Real frames each dream of ``model`` starts from (as :class:`VecDreamEnv` draws them)."""
    env = VecDreamEnv(model, 2, data, model.env, max_steps=1)
    try:
        return env.dreams.context_frames
    finally:
        env.close()


def imminent_deaths(
    model: WorldModel,
    data: Path | str,
    split: str,
    sampling: SamplingConfig,
    ahead: Sequence[int],
    episodes: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """(len(ahead),) share of dreams that die within k + 2 steps when started k steps before a
    recorded death and fed the recorded actions (then the last one held), over up to
    ``episodes`` fatal episodes of ``split``."""
    store = EpisodeStore(data, split, env=model.env)
    dreamer = model.dreamer(1, sampling, seed=seed)  # only for its history length
    n = dreamer.history * dreamer.s
    fatal = [i for i, e in enumerate(store.entries) if e.terminated and e.length >= n + max(ahead)]
    fatal = fatal[:episodes]
    if not fatal:
        raise ValueError(f"no {split!r} episode of {data} dies after {n + max(ahead)} steps")
    dreamer = model.dreamer(len(fatal), sampling, seed=seed)
    shares = []
    for k in ahead:
        windows = [
            store.read(i, e - k - n + 1, e + 1)
            for i, e in ((i, store.entries[i].length) for i in fatal)
        ]
        frames = np.stack([w["frames"][:n] for w in windows])
        actions = np.stack([w["actions"][:n] for w in windows])
        variables = np.stack([w["variables"][:n] for w in windows])
        then = np.stack([w["actions"][n:] for w in windows])  # (B, k): the actions into the death
        dreamer.start(frames, actions, variables)
        died = np.zeros(len(fatal), dtype=bool)
        for t in range(k + 2):
            out = dreamer.step(then[:, min(t, k - 1), None])
            died |= out.done_prob > 0.5
        shares.append(died.mean())
    return np.array(shares)
