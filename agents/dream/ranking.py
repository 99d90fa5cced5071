"""Does the dream rank policies as the real game does? Each from the same real starts, in both.

An agent trained in a dream learns the dream's best policy. That is worth something in the real
game only if the dream orders policies as the game does: a take_cover dream in which a blind
sweep outlives an agent that dodges by sight (as the real game does not) will teach the sweep,
however long PPO runs. So before an agent trains, play policies of known real worth (scripted
sweeps, agents trained in the real game, earlier dream agents) in the dream and in the game from
the same starts (``agents.dream.exploit``'s: fixed seeds, then noops until the dream has its
context) and compare the orders: Kendall's tau of the mean steps survived, and where the dream's
favourite stands in the game. ``tools/dream_ranking.py`` prints the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agents.dream.exploit import dream_play, noop_starts, scored_cap
from agents.dream.measures import context_frames
from agents.dream.training import DreamConfig
from agents.policies import Policy
from agents.scoring import EVAL_SEED, play_real
from worldmodel.world_model import WorldModel


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-a of two score lists: +1 same order, -1 reversed (tied pairs count 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"tau needs two lists of the same length >= 2, got {len(a)}, {len(b)}")
    i, j = np.triu_indices(len(a), k=1)
    return float(np.mean(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])))


@dataclass
class Ranking:
    """Policies played from the same starts: steps survived (P, N) in the dream (the mean over
    the dream seeds) and in the real game, after a ``prefix`` of unscored noop steps."""

    names: list[str]
    dream_steps: np.ndarray
    real_steps: np.ndarray
    prefix: int

    @property
    def tau(self) -> float:
        return kendall_tau(self.dream_steps.mean(1), self.real_steps.mean(1))

    def tics(self, steps: np.ndarray, frame_skip: int) -> np.ndarray:
        """Tics survived from the reset, the unscored prefix included."""
        return (steps + self.prefix) * frame_skip

    def real_rank_of_dream_best(self) -> int:
        """Where (1 = best) the dream's longest-lived policy stands in the real game."""
        return int(_ranks(self.real_steps.mean(1))[np.argmax(self.dream_steps.mean(1))])

    def to_dict(self, frame_skip: int) -> dict:
        out = {"tau": self.tau, "prefix_steps": self.prefix, "policies": {}}
        for name, d, r in zip(self.names, self.dream_steps, self.real_steps, strict=True):
            out["policies"][name] = {
                "dream_tics_mean": float(self.tics(d.mean(), frame_skip)),
                "real_tics_mean": float(self.tics(r.mean(), frame_skip)),
                "dream_steps": d.tolist(),
                "real_steps": r.tolist(),
            }
        return out

    def table(self, frame_skip: int) -> str:
        """Markdown: tics survived from the reset, mean ± standard error, and each policy's
        rank on both sides."""
        n = self.dream_steps.shape[1]
        dream, real = self.dream_steps.mean(1), self.real_steps.mean(1)
        d_rank, r_rank = _ranks(dream), _ranks(real)
        lines = [
            f"| policy ({n} starts) | dream tics | real tics | dream rank | real rank |",
            "|---|---|---|---|---|",
        ]
        for k, name in enumerate(self.names):
            d = self.tics(self.dream_steps[k], frame_skip)
            r = self.tics(self.real_steps[k], frame_skip)
            lines.append(
                f"| {name} | {d.mean():.1f} ± {d.std() / np.sqrt(n):.1f} "
                f"| {r.mean():.1f} ± {r.std() / np.sqrt(n):.1f} | {d_rank[k]} | {r_rank[k]} |"
            )
        lines.append("")
        lines.append(
            f"Kendall's tau, dream vs real order: {self.tau:+.2f}; the dream's favourite "
            f"({self.names[int(np.argmax(dream))]}) is #{self.real_rank_of_dream_best()} "
            "in the real game"
        )
        return "\n".join(lines)


def _ranks(scores: np.ndarray) -> np.ndarray:
    """1 for the highest score, 2 for the next, ... (ties in list order)."""
    return 1 + np.argsort(np.argsort(-scores, kind="stable"), kind="stable")


def rank_policies(
    model: WorldModel,
    policies: dict[str, Callable[[], Policy]],
    dream: DreamConfig,
    n_starts: int,
    dream_seeds: int = 1,
    seed: int = EVAL_SEED,
) -> Ranking:
    """Each policy (``policies[name]()`` makes a fresh one per side and seed) from ``n_starts``
    real starts, dreamed ``dream_seeds`` times and played once in the real game."""
    if len(policies) < 2:
        raise ValueError(f"ranking needs at least 2 policies, got {len(policies)}")
    env_name = model.env
    starts = noop_starts(env_name, n_starts, context_frames(model), seed)
    prefix = len(starts[0].prefix)
    cap = scored_cap(env_name, prefix)
    dream_steps, real_steps = [], []
    for make in policies.values():
        runs = [
            dream_play(model, make(), starts, dream, cap, seed=s)[1] for s in range(dream_seeds)
        ]
        dream_steps.append(np.mean(runs, axis=0))
        real, _ = play_real(
            make(), env_name, [st.seed for st in starts], [st.prefix for st in starts], cap=cap
        )
        real_steps.append(real.steps.astype(np.float64))
    return Ranking(list(policies), np.stack(dream_steps), np.stack(real_steps), prefix)
