"""Batches that depend only on (seed, step, rank): resuming at step s replays the same data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader


class StepSampler:
    """An endless batch sampler: step ``s`` draws ``batch_size`` indices from a generator
    seeded with ``(seed, s, rank)``, so no sampler state needs saving to resume."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, rank: int = 0) -> None:
        self.n, self.batch_size, self.seed, self.start, self.rank = n, batch_size, seed, start, rank

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start
        while True:
            rng = np.random.default_rng([self.seed, step, self.rank])
            yield rng.integers(0, self.n, self.batch_size).tolist()
            step += 1


def step_batches(
    dataset: Any, start: int, batch_size: int, seed: int, rank: int, workers: int
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless batches of ``dataset`` items (dicts of arrays, collated to tensors)."""
    sampler = StepSampler(len(dataset), batch_size, seed, start, rank)
    loader = DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, persistent_workers=workers > 0
    )
    return iter(loader)


def evenly_spaced(n_items: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n_items)`` (fixed evaluation sets)."""
    k = min(k, n_items)
    return np.linspace(0, n_items - 1, k).round().astype(int).tolist()
