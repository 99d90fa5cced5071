"""How hard a dream is next to the real game, measured before any agent trains in it.

An agent learns what its dream rewards. Three checks say whether that is the real game's lesson:

- **Deaths:** from the same recorded starts, how many dreams under random actions die within
  k steps, against how many of the recorded episodes died within k steps of those starts.
- **Imminent hits and deaths:** from recorded starts k steps before a recorded hit (HEALTH
  falls) or death, dreaming on with the recorded actions, how many dreams have it too, on time
  (the recording: all of them). A dream that kills at the right rate but not here kills at
  random, and teaches no dodging; one that keeps hits at k = 1 but loses them by k = 4 loses
  the fireballs open loop.
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
from worldmodel.dream.env import VecDreamEnv
from worldmodel.sampling.settings import SamplingConfig
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


def imminent(
    model: WorldModel,
    data: Path | str,
    split: str,
    sampling: SamplingConfig,
    ahead: Sequence[int],
    event: str = "death",
    count: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """(len(ahead),) share of dreams started k steps before a recorded event of ``split`` and
    fed the recorded actions (the last one held after it) that dream the event too: a death by
    dreamed step k + 1, or a hit (HEALTH falls) on dreamed step k - 1, k or k + 1. Over the
    first ``count`` events that leave room for the longest ``ahead``."""
    if event not in ("death", "hit"):
        raise ValueError(f"event must be 'death' or 'hit', got {event!r}")
    store = EpisodeStore(data, split, env=model.env)
    probe = model.dreamer(1, sampling)
    n, h = probe.history * probe.s, model.game.health_index
    first = n + max(ahead) - 1  # the earliest event step with a full window before it
    events: list[tuple[int, int]] = []
    for i, e in enumerate(store.entries):
        if event == "death":
            events += [(i, e.length)] if e.terminated and e.length >= first else []
        else:
            health = store.read(i, 0, e.length + 1)["variables"][:, h]
            events += [(i, int(t)) for t in np.flatnonzero(np.diff(health) < 0) + 1 if t >= first]
    events = events[:count]
    if not events:
        raise ValueError(f"no {event} in the {split!r} split of {data} after step {first}")
    dreamer = model.dreamer(len(events), sampling, seed=seed)
    shares = []
    for k in ahead:
        windows = [store.read(i, t - k - n + 1, t + 1) for i, t in events]
        variables = np.stack([w["variables"][:n] for w in windows])
        dreamer.start(
            np.stack([w["frames"][:n] for w in windows]),
            np.stack([w["actions"][:n] for w in windows]),
            variables,
        )
        then = np.stack([w["actions"][n:] for w in windows])  # (B, k): the actions into it
        health, seen = variables[:, -1, h], np.zeros((len(events), k + 1), dtype=bool)
        for step in range(k + 1):
            out = dreamer.step(then[:, min(step, k - 1), None])
            now = out.variables[:, h]
            seen[:, step] = out.done_prob > 0.5 if event == "death" else now < health
            health = now
        hit = seen.any(1) if event == "death" else seen[:, max(0, k - 2) :].any(1)
        shares.append(hit.mean())
    return np.array(shares)
