"""Action-following: an inverse-dynamics model (frames t, t+1 -> action) trained on real play.

Its accuracy on dream transitions, next to its accuracy on held-out real ones, says whether
the dream moves the way the pressed keys say (MineWorld measures action-following this way).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.data import EpisodeStore
from worldmodel.frames import to_model


class InverseDynamics(nn.Module):
    """A small CNN over two stacked frames: (B, 2, 3, H, W) in [-0.5, 0.5] -> (B, A) logits."""

    def __init__(self, n_actions: int, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(9, width, 5, 2, 2),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 4 * width, 3, 2, 1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * width, n_actions),
        )

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        a, b = pairs[:, 0], pairs[:, 1]
        return self.net(torch.cat([a, b, b - a], dim=1))  # the difference makes motion explicit


def _pairs(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (B, 2, H, W, 3) -> float (B, 2, 3, H, W)."""
    return to_model(frames, device).transpose(1, 2)


def sample_transitions(store: EpisodeStore, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random real transitions: frames (n, 2, H, W, 3) uint8 and the actions between."""
    rng = np.random.default_rng(seed)
    frames, actions = [], []
    for _ in range(n):
        pos = int(rng.integers(len(store)))
        t = int(rng.integers(store.entries[pos].length))
        item = store.read(pos, t, t + 2)
        frames.append(item["frames"])
        actions.append(item["actions"][1])
    return np.stack(frames), np.array(actions)


def train_idm(
    store: EpisodeStore,
    n_actions: int,
    steps: int,
    device: torch.device,
    seed: int = 0,
    batch: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> InverseDynamics:
    """Fit the inverse-dynamics model on real transitions of ``store`` (the train split)."""
    torch.manual_seed(seed)
    model = InverseDynamics(n_actions).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    frames, actions = sample_transitions(store, steps * batch // 4, seed)  # each seen ~4 times
    rng = np.random.default_rng(seed)
    model.train()
    for step in range(steps):
        idx = rng.integers(0, len(actions), batch)
        logits = model(_pairs(frames[idx], device))
        loss = F.cross_entropy(logits, torch.as_tensor(actions[idx], device=device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if progress is not None and (step + 1) % 50 == 0:
            progress(step + 1, steps)
    return model.eval()


@torch.no_grad()
def idm_accuracy(
    model: InverseDynamics,
    frames: np.ndarray,
    actions: np.ndarray,
    device: torch.device,
    n_actions: int,
) -> dict[str, float]:
    """Accuracy and balanced (per-action mean) accuracy on transitions (N, 2, H, W, 3)."""
    preds = np.concatenate(
        [
            model(_pairs(frames[i : i + 256], device)).argmax(-1).cpu().numpy()
            for i in range(0, len(frames), 256)
        ]
    )
    per_class = [
        float((preds[actions == a] == a).mean()) for a in range(n_actions) if (actions == a).any()
    ]
    return {
        "accuracy": float((preds == actions).mean()),
        "balanced_accuracy": float(np.mean(per_class)),
        "transitions": len(actions),
    }


def dream_transitions(
    context: np.ndarray,
    dream: np.ndarray,
    actions: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive-frame pairs of open-loop dreams (the first pairs the last real context frame
    with the first dreamed one) and the actions between them."""
    k = context.shape[1]
    seq = np.concatenate([context[:, -1:], dream], axis=1)  # (N, 1 + n, H, W, 3)
    pairs = np.stack([seq[:, :-1], seq[:, 1:]], axis=2)  # (N, n, 2, H, W, 3)
    acts = actions[:, k:]  # the actions into each dreamed frame
    return pairs.reshape(-1, *pairs.shape[2:]), acts.reshape(-1)
