"""Does the dream rank policies as the real game does? Each from the same real starts, in both.

An agent trained in a dream learns the dream's best policy. That is worth something in the real
game only if the dream orders policies as the game does: a take_cover dream in which a blind
sweep outlives an agent that dodges by sight (as the real game does not) will teach the sweep,
however long PPO runs. So before an agent trains, play policies of known real worth (scripted
sweeps, agents trained in the real game, earlier dream agents) in the dream and in the game from
the same starts (``agents.dream.exploit``'s: fixed seeds, then noops until the dream has its
context) and compare the orders: Kendall's tau of the mean steps survived (``by="steps"``,
take_cover) or of the mean return (``by="return"``, defend_the_center, where the score is kills),
and where the dream's favourite stands in the game. ``tools/dream_ranking.py`` prints the table.
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
    """Policies played from the same starts: steps survived and returns (P, N) in the dream
    (the mean over the dream seeds) and in the real game, after a ``prefix`` of unscored noop
    steps; ordered ``by`` ``steps`` or ``return``."""

    names: list[str]
    dream_steps: np.ndarray
    real_steps: np.ndarray
    prefix: int
    dream_returns: np.ndarray | None = None
    real_returns: np.ndarray | None = None
    by: str = "steps"

    def __post_init__(self) -> None:
        if self.by not in ("steps", "return"):
            raise ValueError(f"a ranking is by 'steps' or 'return', got {self.by!r}")
        if self.by == "return" and (self.dream_returns is None or self.real_returns is None):
            raise ValueError("a ranking by return needs the returns")

    def scores(self) -> tuple[np.ndarray, np.ndarray]:
        """What the ranking orders, (P, N) in the dream and in the real game."""
        if self.by == "return":
            return self.dream_returns, self.real_returns  # type: ignore[return-value]
        return self.dream_steps, self.real_steps

    @property
    def tau(self) -> float:
        dream, real = self.scores()
        return kendall_tau(dream.mean(1), real.mean(1))

    def tics(self, steps: np.ndarray, frame_skip: int) -> np.ndarray:
        """Tics survived from the reset, the unscored prefix included."""
        return (steps + self.prefix) * frame_skip

    def real_rank_of_dream_best(self) -> int:
        """Where (1 = best) the dream's favourite policy stands in the real game."""
        dream, real = self.scores()
        return int(_ranks(real.mean(1))[np.argmax(dream.mean(1))])

    def to_dict(self, frame_skip: int) -> dict:
        out = {"tau": self.tau, "by": self.by, "prefix_steps": self.prefix, "policies": {}}
        for k, name in enumerate(self.names):
            d, r = self.dream_steps[k], self.real_steps[k]
            row = {
                "dream_tics_mean": float(self.tics(d.mean(), frame_skip)),
                "real_tics_mean": float(self.tics(r.mean(), frame_skip)),
                "dream_steps": d.tolist(),
                "real_steps": r.tolist(),
            }
            if self.dream_returns is not None and self.real_returns is not None:
                row["dream_return_mean"] = float(self.dream_returns[k].mean())
                row["real_return_mean"] = float(self.real_returns[k].mean())
            out["policies"][name] = row
        return out

    def table(self, frame_skip: int) -> str:
        """Markdown: what the ranking orders (tics survived from the reset, or the return),
        mean ± standard error, and each policy's rank on both sides."""
        dream_s, real_s = self.scores()
        n = dream_s.shape[1]
        dream, real = dream_s.mean(1), real_s.mean(1)
        d_rank, r_rank = _ranks(dream), _ranks(real)
        what = "return" if self.by == "return" else "tics"
        lines = [
            f"| policy ({n} starts) | dream {what} | real {what} | dream rank | real rank |",
            "|---|---|---|---|---|",
        ]
        for k, name in enumerate(self.names):
            d, r = dream_s[k], real_s[k]
            if self.by == "steps":
                d, r = self.tics(d, frame_skip), self.tics(r, frame_skip)
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
    by: str = "steps",
) -> Ranking:
    """Each policy (``policies[name]()`` makes a fresh one per side and seed) from ``n_starts``
    real starts, dreamed ``dream_seeds`` times and played once in the real game; ordered
    ``by`` steps survived or return."""
    if len(policies) < 2:
        raise ValueError(f"ranking needs at least 2 policies, got {len(policies)}")
    env_name = model.env
    starts = noop_starts(env_name, n_starts, context_frames(model), seed)
    prefix = len(starts[0].prefix)
    cap = scored_cap(env_name, prefix)
    dream_steps, real_steps, dream_returns, real_returns = [], [], [], []
    for make in policies.values():
        runs = [dream_play(model, make(), starts, dream, cap, seed=s) for s in range(dream_seeds)]
        dream_returns.append(np.mean([r[0] for r in runs], axis=0))
        dream_steps.append(np.mean([r[1] for r in runs], axis=0))
        real, _ = play_real(
            make(), env_name, [st.seed for st in starts], [st.prefix for st in starts], cap=cap
        )
        real_steps.append(real.steps.astype(np.float64))
        real_returns.append(real.returns.astype(np.float64))
    return Ranking(
        list(policies),
        np.stack(dream_steps),
        np.stack(real_steps),
        prefix,
        np.stack(dream_returns),
        np.stack(real_returns),
        by,
    )
