"""Game variables predicted as changes (``FramePriorConfig.state_delta``; beyond the paper).

A prior with absolute state tokens learns "next HEALTH is 37" separately for every value
before it, so a rule it has seen at 80 HP (a bite costs ~16) is unknown at 12 HP, the values
just before a death, which the data holds least of. With this switch each variable's head
predicts the change instead: one class per step of change, centred on "no change", so the same
bite is one class at every health and a death is simply a change that reaches 0. The inputs stay
absolute (the model still sees how much health is left).

A variable of ``n`` bins has ``n`` change classes, ``-(n // 2)`` to ``n - 1 - n // 2`` (so
a prior's heads keep their shapes whichever way it predicts), and the new value is the old
plus the change, clamped to the bins.
"""

from __future__ import annotations

import numpy as np
import torch

IGNORE = -100  # cross-entropy's ignore_index: no earlier value, so no change to predict


def offset(bins: int) -> int:
    """The class of "no change" for a variable of ``bins`` values."""
    return bins // 2


def change_targets(state: torch.Tensor, in_state: torch.Tensor, vocab: tuple[int, ...]):
    """The change classes (B, T, V) that take ``in_state`` to ``state`` (both absolute bins);
    :data:`IGNORE` where there is no earlier value (``in_state`` -1)."""
    out = torch.empty_like(state)
    for v, n in enumerate(vocab):
        change = (state[..., v] - in_state[..., v] + offset(n)).clamp(0, n - 1)
        out[..., v] = torch.where(in_state[..., v] < 0, IGNORE, change)
    return out


def apply_change(old: torch.Tensor, classes: torch.Tensor, bins: int) -> torch.Tensor:
    """The new absolute bin of a variable from its old bin and a change class (same shape)."""
    return (old + classes - offset(bins)).clamp(0, bins - 1)


def apply_change_np(old: np.ndarray, classes: np.ndarray, bins: int) -> np.ndarray:
    return np.clip(old + classes - offset(bins), 0, bins - 1)


def zero_probability(probs: torch.Tensor, old: torch.Tensor, bins: int) -> torch.Tensor:
    """P(the new value is bin 0) from change probabilities (..., bins) and old bins (...):
    every change that reaches 0 or below counts (the clamp makes them all 0)."""
    change = torch.arange(bins, device=probs.device) - offset(bins)  # (bins,)
    reaches = (old[..., None] + change) <= 0
    return (probs * reaches).sum(-1)
