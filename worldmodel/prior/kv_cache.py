"""The prior's key/value cache: an explicit object the caller owns and passes in."""

from __future__ import annotations

import torch


class KVCache:
    """Keys and values of every layer for ``batch`` sequences of up to ``capacity`` tokens.

    Preallocated once, so incremental decoding never reallocates; ``length`` tokens are valid.
    Shapes: keys/values are (layers, B, heads, capacity, head_dim).
    """

    def __init__(
        self,
        n_layers: int,
        batch: int,
        n_heads: int,
        capacity: int,
        head_dim: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        shape = (n_layers, batch, n_heads, capacity, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.capacity = capacity
        self.length = 0

    def reset(self) -> None:
        self.length = 0

    def append(
        self, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store (B, heads, n, head_dim) new keys/values after the valid ones; return all valid
        keys/values of ``layer``. The caller advances ``length`` once all layers are done."""
        end = self.length + k.shape[2]
        if end > self.capacity:
            raise RuntimeError(f"KV cache overflow: {end} > capacity {self.capacity}")
        self.keys[layer, :, :, self.length : end] = k
        self.values[layer, :, :, self.length : end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def advance(self, n: int) -> None:
        self.length += n

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.values.nbytes
