"""Real start windows shipped inside a world model, so that dreams start without a dataset.

A start is the tokenizer's codes of a few real consecutive latent steps, the actions into their
frames and the game variables at them: about 2 KB each, where the frames would take 200 KB.
The dreamer starts from codes directly (``start_codes``), so nothing is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class DreamStarts:
    codes: np.ndarray  # (N, n, H', W') int16: n latent steps of real codes
    actions: np.ndarray  # (N, n * s) int16: the action into each frame (-1: none)
    variables: np.ndarray  # (N, n * s, V) float32 game variables at each frame (V may be 0)
    episodes: np.ndarray  # (N,) int64 dataset episode each start comes from
    steps: np.ndarray  # (N,) int64 latent step of the episode each start begins at

    def __len__(self) -> int:
        return len(self.codes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "codes": torch.as_tensor(self.codes.astype(np.int16)),
            "actions": torch.as_tensor(self.actions.astype(np.int16)),
            "variables": torch.as_tensor(self.variables.astype(np.float32)),
            "episodes": torch.as_tensor(self.episodes.astype(np.int64)),
            "steps": torch.as_tensor(self.steps.astype(np.int64)),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DreamStarts:
        return cls(**{k: np.asarray(data[k].numpy()) for k in cls.__dataclass_fields__})


def bank_from_codes(
    codes: Any, n: int, steps: int, frames_per_step: int, seed: int = 0
) -> DreamStarts:
    """``n`` start windows of ``steps`` latent steps drawn evenly from a :class:`CodeSet`."""
    rng = np.random.default_rng(seed)
    usable = [e for e, length in enumerate(codes.lengths) if length >= steps]
    if not usable:
        raise ValueError(f"no episode has {steps} latent steps to start from")
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("c", "a", "v", "e", "s")}
    s = frames_per_step
    for i in range(n):
        e = usable[i % len(usable)]
        p = int(rng.integers(0, codes.lengths[e] - steps + 1))
        g = int(codes.starts[e]) + p
        rows["c"].append(codes.codes[g : g + steps])
        rows["a"].append(codes.actions[g : g + steps].reshape(-1))
        var = codes.variables[g : g + steps]  # at each step's last frame: repeat over its frames
        rows["v"].append(np.repeat(var, s, axis=0))
        rows["e"].append(np.int64(codes.episodes[e]))
        rows["s"].append(np.int64(p))
    return DreamStarts(
        codes=np.stack(rows["c"]).astype(np.int16),
        actions=np.stack(rows["a"]).astype(np.int16),
        variables=np.stack(rows["v"]).astype(np.float32),
        episodes=np.array(rows["e"]),
        steps=np.array(rows["s"]),
    )
