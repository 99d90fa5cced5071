"""Typed configurations of the tokenizer and the prior, and the named presets.

Presets: ``tiny`` (tests run it in seconds), ``cpu`` (trains on 2 CPU cores in well under an
hour and plays in real time there), ``paper`` (the paper's BAIR sizes, for a GPU).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

PRESETS = ("tiny", "cpu", "paper")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class VQVAEConfig:
    resolution: int = field(default=64, metadata=_help("frame height and width"))
    clip_len: int = field(default=16, metadata=_help("frames per training clip"))
    hidden: int = field(default=240, metadata=_help("channels of the conv/attention stacks"))
    n_blocks: int = field(default=4, metadata=_help("attention residual blocks per side"))
    n_heads: int = field(default=2, metadata=_help("heads of each axial attention"))
    time_down: int = field(default=2, metadata=_help("time downsampling factor (1, 2, 4)"))
    space_down: int = field(default=4, metadata=_help("space downsampling factor (4, 8)"))
    n_codes: int = field(default=2048, metadata=_help("codebook size K"))
    code_dim: int = field(default=256, metadata=_help("code dimension D"))
    attention: bool = field(default=True, metadata=_help("axial attention in the residual blocks"))
    causal: bool = field(default=True, metadata=_help("causal in time (needed for streaming)"))
    time_window: int | None = field(
        default=None, metadata=_help("latent steps each time attention sees (None: whole clip)")
    )
    time_kernel: int = field(default=3, metadata=_help("temporal kernel of stride-1 convs"))
    beta: float = field(default=0.25, metadata=_help("commitment loss weight"))
    ema_decay: float = field(default=0.99, metadata=_help("codebook EMA decay"))
    restart_threshold: float = field(
        default=1.0, metadata=_help("restart codes used less than this per step (EMA)")
    )
    data_variance: float = field(
        default=0.06, metadata=_help("variance of [-0.5, 0.5] frames (set from the data)")
    )

    def __post_init__(self) -> None:
        for name in ("time_down", "space_down"):
            v = getattr(self, name)
            if v < 1 or v & (v - 1):
                raise ValueError(f"{name} must be a power of two, got {v}")
        if self.space_down < 2:
            raise ValueError("space_down must be at least 2")
        if self.clip_len % self.time_down or self.resolution % self.space_down:
            raise ValueError("clip_len and resolution must divide by the downsampling factors")
        if self.hidden % (2 * self.n_heads):
            raise ValueError(f"hidden {self.hidden} must divide by 2 * n_heads")

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(T', H', W') of one training clip's codes."""
        s = self.resolution // self.space_down
        return (self.clip_len // self.time_down, s, s)

    @property
    def tokens_per_step(self) -> int:
        s = self.resolution // self.space_down
        return s * s


VQVAE_PRESETS: dict[str, VQVAEConfig] = {
    "tiny": VQVAEConfig(
        clip_len=4,
        hidden=16,
        n_blocks=1,
        n_heads=2,
        time_down=1,
        space_down=8,
        n_codes=32,
        code_dim=8,
        time_window=2,
        time_kernel=1,
    ),
    "cpu": VQVAEConfig(
        clip_len=8,
        hidden=64,
        n_blocks=2,
        n_heads=4,
        time_down=1,
        space_down=8,
        n_codes=512,
        code_dim=64,
        time_window=4,
        time_kernel=1,
    ),
    "paper": VQVAEConfig(),  # BAIR sizes: space /4, time /2, 4 blocks, 2048 x 256 codes, 240
}


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config, ignoring keys this version does not know."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
