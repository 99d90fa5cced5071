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
    decoder_refine: int = field(
        default=0, metadata=_help("residual 3x3 blocks after each hidden upsampling layer")
    )
    decoder_refine_width: int = field(
        default=16, metadata=_help("channels inside each decoder refine block")
    )
    context_width: int = field(
        default=0,
        metadata=_help(
            "> 0: a context decoder that paints each frame from its codes and the frame shown "
            "before it, with this many channels at half resolution (beyond the paper; 0: off)"
        ),
    )
    context_max_flow: float = field(
        default=16.0, metadata=_help("largest motion (pixels) the context decoder warps by")
    )
    sticky: float = field(
        default=0.0,
        metadata=_help(
            "encode with hysteresis: a place keeps its previous step's code while that code's "
            "squared distance is at most (1 + sticky) x the nearest's, so still views give "
            "still codes (an encoding setting, no weight changes; beyond the paper; 0: off)"
        ),
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
        if self.context_width < 0:
            raise ValueError(f"context_width must be >= 0, got {self.context_width}")
        if self.context_width and (self.time_down != 1 or self.space_down < 4):
            raise ValueError("the context decoder needs time_down 1 and space_down >= 4")

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(T', H', W') of one training clip's codes."""
        s = self.resolution // self.space_down
        return (self.clip_len // self.time_down, s, s)

    @property
    def tokens_per_step(self) -> int:
        s = self.resolution // self.space_down
        return s * s


# Fields that change only the decoder: the decoder stage may set them on a trained tokenizer.
DECODER_FIELDS: tuple[str, ...] = (
    "decoder_refine",
    "decoder_refine_width",
    "context_width",
    "context_max_flow",
)

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


@dataclass(frozen=True)
class PriorConfig:
    n_codes: int = field(default=2048, metadata=_help("vocabulary: the tokenizer's codebook size"))
    steps: int = field(default=8, metadata=_help("latent time steps in the context window"))
    height: int = field(default=16, metadata=_help("latent rows per step"))
    width: int = field(default=16, metadata=_help("latent columns per step"))
    d_model: int = field(default=384, metadata=_help("transformer width"))
    n_layers: int = field(default=22, metadata=_help("transformer blocks"))
    n_heads: int = field(default=6, metadata=_help("attention heads"))
    dropout: float = field(default=0.1, metadata=_help("dropout after attention and MLP"))
    attn_dropout: float = field(default=0.1, metadata=_help("dropout on attention weights"))
    pos_emb: str = field(default="learned", metadata=_help("learned (t+h+w broadcast) or sincos"))
    n_actions: int = field(default=0, metadata=_help("actions of the env (0: unconditional)"))
    actions_per_step: int = field(default=1, metadata=_help("frames (and actions) per latent step"))
    action_dim: int = field(default=64, metadata=_help("embedding size of one action"))
    frame_cond: bool = field(default=False, metadata=_help("ResNet frame vector concatenated"))
    frame_cond_frames: int = field(default=1, metadata=_help("frames the ResNet conditions on"))
    frame_cond_dim: int = field(default=128, metadata=_help("size of the frame vector"))
    reward_weight: float = field(default=1.0, metadata=_help("weight of the reward loss"))
    done_weight: float = field(default=1.0, metadata=_help("weight of the termination loss"))
    done_pos_weight: float = field(default=20.0, metadata=_help("BCE weight of rare endings"))

    def __post_init__(self) -> None:
        if self.pos_emb not in ("learned", "sincos"):
            raise ValueError(f"pos_emb must be 'learned' or 'sincos', got {self.pos_emb!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} must divide by n_heads {self.n_heads}")

    @property
    def tokens_per_step(self) -> int:
        return self.height * self.width

    @property
    def block_size(self) -> int:
        return self.steps * self.tokens_per_step

    @property
    def cond_dim(self) -> int:
        return self.action_dim * self.actions_per_step if self.n_actions else 0


# Model sizes; n_codes, steps, height, width, n_actions and actions_per_step are filled in from
# the tokenizer and the env when the prior is built (see ``prior_config_for``).
PRIOR_PRESETS: dict[str, PriorConfig] = {
    "tiny": PriorConfig(
        d_model=32,
        n_layers=2,
        n_heads=2,
        action_dim=8,
        dropout=0.0,
        attn_dropout=0.0,
        frame_cond_dim=16,
    ),
    "cpu": PriorConfig(
        d_model=128, n_layers=4, n_heads=4, action_dim=32, dropout=0.1, attn_dropout=0.0
    ),
    "paper": PriorConfig(),  # hidden 384, 22 layers (paper, BAIR)
}


def prior_config_for(base: PriorConfig, vqvae: VQVAEConfig, n_actions: int) -> PriorConfig:
    """``base`` sized to a tokenizer's latent grid and an env's action set."""
    t, h, w = vqvae.latent_shape
    return dataclasses.replace(
        base,
        n_codes=vqvae.n_codes,
        steps=t,
        height=h,
        width=w,
        n_actions=n_actions,
        actions_per_step=vqvae.time_down,
    )


@dataclass(frozen=True)
class FramePriorConfig:
    """The frame-parallel prior (beyond the paper; see worldmodel/prior/frame.py).

    A *block* is one latent step: its H*W code tokens plus one token per game variable. Block t
    reads the previous step's tokens at the same places and predicts step t's, all at once, with
    attention over the ``steps`` blocks up to itself (relative time bias, so the window rolls
    without re-encoding).
    """

    n_codes: int = field(default=512, metadata=_help("the tokenizer's codebook size"))
    steps: int = field(default=16, metadata=_help("blocks (latent steps) the window holds"))
    height: int = field(default=8, metadata=_help("latent rows per step"))
    width: int = field(default=8, metadata=_help("latent columns per step"))
    state_vocab: tuple[int, ...] = field(
        default=(), metadata=_help("bins of each game variable token (empty: no state tokens)")
    )
    d_model: int = field(default=192, metadata=_help("transformer width"))
    n_layers: int = field(default=6, metadata=_help("transformer blocks"))
    n_heads: int = field(default=6, metadata=_help("attention heads"))
    dropout: float = field(default=0.0, metadata=_help("dropout after attention and MLP"))
    n_actions: int = field(default=0, metadata=_help("actions of the env (0: unconditional)"))
    actions_per_step: int = field(default=1, metadata=_help("frames (and actions) per step"))
    action_dim: int = field(default=32, metadata=_help("embedding size of one action"))
    action_input: bool = field(
        default=True, metadata=_help("also add the action to every input token (besides CondLN)")
    )
    codebook_dim: int = field(
        default=0, metadata=_help(">0: code embeddings and logits tied to the codebook vectors")
    )
    corrupt: float = field(
        default=0.0, metadata=_help("max fraction of input tokens replaced at random in training")
    )
    corrupt_levels: int = field(default=8, metadata=_help("buckets of the corruption level input"))
    state_weight: float = field(default=1.0, metadata=_help("weight of the state tokens' loss"))
    state_delta: bool = field(
        default=False,
        metadata=_help(
            "predict each game variable's change, not its value: one rule (a bite costs ~16) "
            "at every health, deaths included (see worldmodel/prior/state_delta.py; beyond the "
            "paper)"
        ),
    )
    reveal: bool = field(
        default=False,
        metadata=_help(
            "a block also reads its own step's codes revealed so far, so a frame can be drawn "
            "in several passes (MaskGIT-style iterative decoding; beyond the paper)"
        ),
    )
    copy_logit: bool = field(
        default=False,
        metadata=_help(
            "add a learned, per-place bonus to the logit of the code each place held one step "
            "before, so that keeping a code needs no learned identity map (a pointer to the "
            "last step; beyond the paper)"
        ),
    )
    group: int = field(
        default=1,
        metadata=_help(
            "codes per token along each side: 2 makes each token read and predict a 2x2 block "
            "of codes, so a 16x16 code grid costs the prior what 8x8 does (beyond the paper)"
        ),
    )

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} must divide by n_heads {self.n_heads}")
        if self.group < 1 or self.height % self.group or self.width % self.group:
            raise ValueError(f"group {self.group} must divide the code grid {self.height}")
        if self.group > 1 and (self.reveal or self.codebook_dim):
            raise ValueError("grouped tokens (group > 1) work without reveal and codebook_dim")
        if not 0.0 <= self.corrupt < 1.0:
            raise ValueError(f"corrupt must be in [0, 1), got {self.corrupt}")
        object.__setattr__(self, "state_vocab", tuple(int(v) for v in self.state_vocab))

    @property
    def code_slots(self) -> int:
        """Codes per step."""
        return self.height * self.width

    @property
    def code_tokens(self) -> int:
        """Tokens that carry a step's codes (each ``group`` x ``group`` of them)."""
        return self.code_slots // (self.group * self.group)

    @property
    def slots(self) -> int:
        """Tokens per block: codes, then one per game variable."""
        return self.code_tokens + len(self.state_vocab)

    @property
    def cond_dim(self) -> int:
        return self.action_dim * self.actions_per_step if self.n_actions else 0


FRAME_PRIOR_PRESETS: dict[str, FramePriorConfig] = {
    "tiny": FramePriorConfig(steps=4, d_model=32, n_layers=2, n_heads=2, action_dim=8),
    # Sized for 30 fps play and batched dreaming on 2 CPU cores (docs/BENCHMARKS.md).
    "cpu": FramePriorConfig(d_model=128, n_layers=4, n_heads=4, corrupt=0.1),
    "paper": FramePriorConfig(d_model=384, n_layers=12, n_heads=6, dropout=0.1),
}


def frame_prior_config_for(
    base: FramePriorConfig, vqvae: VQVAEConfig, n_actions: int, state_vocab: tuple[int, ...]
) -> FramePriorConfig:
    """``base`` sized to a tokenizer's latent grid, an env's actions and its game variables."""
    _, h, w = vqvae.latent_shape
    return dataclasses.replace(
        base,
        n_codes=vqvae.n_codes,
        height=h,
        width=w,
        n_actions=n_actions,
        actions_per_step=vqvae.time_down,
        state_vocab=tuple(state_vocab),
    )
