"""Teacher-forced game-state metrics of the frame prior over every step of held-out episodes:
the error of each predicted variable and how well the dreamed death matches the real one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from worldmodel.data.codes import CodeSet
from worldmodel.data.frame_windows import frame_batch
from worldmodel.game_state import GameState
from worldmodel.prior.frame import FramePrior
from worldmodel.prior.state_delta import apply_change, zero_probability


@dataclass
class StateEval:
    true: np.ndarray  # (N, V) real variables at every scored step
    pred: np.ndarray  # (N, V) predicted (most likely bin) variables
    dead_prob: np.ndarray  # (N,) predicted probability that HEALTH <= 0
    died: np.ndarray  # (N,) bool: the real episode ended in death at this step
    episodes: np.ndarray  # (N,) dataset episode index of each step
    steps: np.ndarray  # (N,) latent step within its episode

    def mae(self) -> np.ndarray:
        return np.abs(self.pred - self.true).mean(0)

    def termination(self, threshold: float = 0.5) -> dict[str, float]:
        """Precision and recall of predicted deaths (dead_prob > threshold) on the real ones."""
        pred = self.dead_prob > threshold
        tp = int((pred & self.died).sum())
        return {
            "precision": tp / max(1, int(pred.sum())),
            "recall": tp / max(1, int(self.died.sum())),
            "deaths": int(self.died.sum()),
            "predicted": int(pred.sum()),
        }


def combat(ev: StateEval, previous: np.ndarray, has_previous: np.ndarray, game: GameState) -> dict:
    """Scenarios with a gun: how often each variable is predicted exactly, and the kills.

    ``previous`` (N, V) are the real values one step before each scored step (``has_previous``
    (N,) bool: there was one). A real kill is a step whose KILLCOUNT rose; a predicted kill, a
    step whose predicted KILLCOUNT is above the real one before it (the prior sees the real
    history, so this is its call of a kill on that step). Precision and recall over steps."""
    out: dict = {
        "exact": {
            name: float((ev.pred[:, v] == ev.true[:, v]).mean())
            for v, name in enumerate(game.names)
        }
    }
    k = game.index("KILLCOUNT")
    if k is not None:
        real = has_previous & (ev.true[:, k] > previous[:, k])
        pred = has_previous & (ev.pred[:, k] > previous[:, k])
        tp = int((real & pred).sum())
        out["kills"] = {
            "precision": tp / max(1, int(pred.sum())),
            "recall": tp / max(1, int(real.sum())),
            "real": int(real.sum()),
            "predicted": int(pred.sum()),
        }
    a = game.index("AMMO2")
    if a is not None:  # with no ammo left nothing is spent and nothing appears
        empty = has_previous & (previous[:, a] == 0)
        out["ammo_empty_steps"] = int(empty.sum())
        out["ammo_stays_empty"] = float((ev.pred[empty, a] == 0).mean()) if empty.any() else None
    return out


@torch.no_grad()
def teacher_forced_state(
    prior: FramePrior, codes: CodeSet, game: GameState, device: torch.device, batch: int = 16
) -> StateEval:
    """Every latent step of every episode scored once, each with up to ``steps`` blocks of
    real history (windows of 2 * steps blocks, scoring their second half; an episode's first
    window scores all of it, but its first step where the prior predicts changes)."""
    if not game.size:
        raise ValueError("this model carries no game state")
    w = prior.config.steps
    span = 2 * w
    picks: list[tuple[int, int]] = []  # (window start, first scored block)
    # a prior predicting changes has nothing to change at an episode's first step
    first = 1 if prior.config.state_delta else 0
    for s, n in zip(codes.starts.tolist(), codes.lengths.tolist(), strict=True):
        if n < span:
            continue
        picks.append((s, first))
        covered = s + span  # steps before this are scored
        while covered < s + n:
            start = min(covered - w, s + n - span)
            picks.append((start, covered - start))
            covered = start + span
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("t", "p", "d", "y", "e", "s")}
    health = game.health_index
    for i in range(0, len(picks), batch):
        chunk = picks[i : i + batch]
        b = frame_batch(codes, np.array([p for p, _ in chunk]), span, game, prior.config.n_codes)
        out = prior(
            torch.as_tensor(b.in_codes, device=device),
            torch.as_tensor(b.in_state, device=device),
            torch.as_tensor(b.actions, device=device),
        )
        bins = torch.stack([logits.argmax(-1) for logits in out.state_logits], -1)
        dead = torch.zeros(bins.shape[:2])
        if prior.config.state_delta:  # change classes: the value is the real one before, changed
            before = torch.as_tensor(b.in_state, device=device)
            for v, n in enumerate(prior.config.state_vocab):
                bins[..., v] = apply_change(before[..., v], bins[..., v], n)
            if health is not None:
                probs = out.state_logits[health].softmax(-1)
                dead = zero_probability(probs, before[..., health], probs.shape[-1])
        elif health is not None:
            dead = out.state_logits[health].softmax(-1)[..., 0]
        bins, dead = bins.cpu().numpy(), dead.cpu().numpy()
        for row, (start, first) in enumerate(chunk):
            g = start + np.arange(first, span)
            e = codes.episode_of(int(start))
            cols["t"].append(codes.variables[g])
            cols["p"].append(game.dequantize(bins[row, first:]))
            cols["d"].append(dead[row, first:])
            cols["y"].append(codes.dones[g])
            cols["e"].append(np.full(len(g), codes.episodes[e]))
            cols["s"].append(g - codes.starts[e])
    cat = {k: np.concatenate(v) for k, v in cols.items()}
    return StateEval(cat["t"], cat["p"], cat["d"], cat["y"].astype(bool), cat["e"], cat["s"])
