"""A rolling key/value cache of whole blocks for the frame-parallel prior.

The frame prior knows time only as the distance between blocks, so keys never need re-encoding:
the cache keeps the last ``blocks`` blocks' keys and values in a ring and, per row, each ring
slot's age (how many steps back its block is; -1 = empty). Each step ages every block by one,
overwrites the slot whose block fell out of the window, and attends over the whole ring with a
mask made from the ages. Time and memory per step are constant for any rollout length.
"""

from __future__ import annotations

import torch


class RingKVCache:
    """Time-attention keys/values (layers, B * slots, heads, blocks, head_dim) and the ages
    (B, blocks) of the blocks in each ring slot; row r's places are rows r*slots .. of the keys.
    """

    def __init__(
        self,
        n_layers: int,
        batch: int,
        n_heads: int,
        blocks: int,
        slots: int,
        head_dim: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        shape = (n_layers, batch * slots, n_heads, blocks, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.age = torch.full((batch, blocks), -1, dtype=torch.long, device=device)
        self.blocks, self.slots = blocks, slots
        self.next = 0  # the ring slot the next block goes to

    def begin_step(self) -> None:
        """Age every block by one step and give the next ring slot to the new block (age 0)."""
        self.age = torch.where(self.age >= 0, self.age + 1, self.age)
        self.age[self.age >= self.blocks] = -1
        self.age[:, self.next] = 0

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store the new block's (B * slots, heads, 1, head_dim) keys/values of ``layer``."""
        self.keys[layer, :, :, self.next] = k[:, :, 0]
        self.values[layer, :, :, self.next] = v[:, :, 0]

    def end_step(self) -> None:
        self.next = (self.next + 1) % self.blocks

    def mask(self, bias: torch.Tensor) -> torch.Tensor:
        """(B * slots, heads, 1, blocks) additive mask: ``bias[h, age]`` for each key's block,
        -inf for empty slots."""
        m = bias[:, self.age.clamp(min=0)].permute(1, 0, 2)  # (B, heads, blocks)
        m = m.masked_fill((self.age < 0)[:, None], float("-inf"))
        return m.repeat_interleave(self.slots, dim=0)[:, :, None]

    def _rows(self, rows: torch.Tensor) -> torch.Tensor:
        places = torch.arange(self.slots, device=rows.device)
        return (rows[:, None] * self.slots + places[None]).reshape(-1)

    def fill(
        self, rows: torch.Tensor, keys: list[torch.Tensor], values: list[torch.Tensor]
    ) -> None:
        """Put ``rows``' context: per layer (b * slots, heads, k, head_dim) keys/values of k
        consecutive blocks, the last being the most recent (age 0); other slots of those rows
        are emptied. The ring's ``next`` slot is kept, so rows can be filled mid-rollout."""
        k = keys[0].shape[2]
        if k > self.blocks:
            raise ValueError(f"{k} context blocks do not fit a ring of {self.blocks}")
        self.age[rows] = -1
        flat = self._rows(rows)
        ring = [(self.next - k + j) % self.blocks for j in range(k)]
        ring_t = torch.as_tensor(ring, device=self.age.device)
        for layer, (kk, vv) in enumerate(zip(keys, values, strict=True)):
            self.keys[layer, flat[:, None], :, ring_t[None]] = kk.permute(0, 2, 1, 3)
            self.values[layer, flat[:, None], :, ring_t[None]] = vv.permute(0, 2, 1, 3)
        for j, r in enumerate(ring):
            self.age[rows, r] = k - 1 - j

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.values.nbytes
