"""The VideoGen tokenizer: a VQ-VAE over video clips (paper §3, Fig. 3).

Encoder: strided 3D convolutions down over time and space, then attention residual blocks.
Decoder: the mirror, ending in 3D transposed convolutions back to full resolution. Between
them an EMA codebook turns each latent position into one of K integer codes.

Frames inside the model are float (B, 3, T, H, W) in [-0.5, 0.5] (see ``worldmodel.frames``).
A clip of T frames becomes codes (B, T / time_down, H / space_down, W / space_down).

With ``causal=True`` every temporal operation looks only backwards: convolutions pad the past
side only, and time attention is masked to a window of past steps. Latent step j then depends
only on frames before (j + 1) * time_down, and the frames of step j only on codes up to j, so
play can decode the newest step alone (:meth:`VQVAE.decode_last`) and shown frames never change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.config import VQVAEConfig
from worldmodel.tokenizer.attention import AxialPositions, RelativeTimeBias
from worldmodel.tokenizer.context import ContextDecoder
from worldmodel.tokenizer.layers import (
    AttentionResidualBlock,
    ChannelNorm,
    Conv3d,
    ConvTranspose3d,
    RefineBlock,
)
from worldmodel.tokenizer.quantizer import EMAQuantizer, nearest_codes

# Parameters the decoder fine-tuning stage trains; everything else (encoder, pre_quant, codebook,
# and the position tables the encoder shares) stays frozen, so the codes do not change.
DECODER_PREFIXES = ("decoder.", "post_quant.", "context.")


@dataclass
class VQVAEOutput:
    recon: torch.Tensor  # (B, 3, T, H, W) float, ~[-0.5, 0.5]
    codes: torch.Tensor  # (B, T', H', W') int64
    losses: dict[str, torch.Tensor]  # "recon" (normalised MSE), "commit"
    perplexity: torch.Tensor
    dead_codes: int


def _strides(config: VQVAEConfig) -> list[tuple[int, int]]:
    """(time stride, space stride) of each resampling layer, outermost first."""
    n_t, n_s = int(math.log2(config.time_down)), int(math.log2(config.space_down))
    return [(2 if i < n_t else 1, 2 if i < n_s else 1) for i in range(max(n_t, n_s))]


def _kernel(config: VQVAEConfig, st: int, ss: int) -> tuple[int, int, int]:
    return (4 if st == 2 else config.time_kernel, 4 if ss == 2 else 3, 4 if ss == 2 else 3)


class Encoder(nn.Module):
    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        c, causal = config.hidden, config.causal
        layers: list[nn.Module] = []
        c_in = 3
        for st, ss in _strides(config):
            layers += [Conv3d(c_in, c, _kernel(config, st, ss), (st, ss, ss), causal), nn.ReLU()]
            c_in = c
        layers.append(Conv3d(c, c, (config.time_kernel, 3, 3), (1, 1, 1), causal))
        self.down = nn.Sequential(*layers)
        self.blocks = nn.ModuleList(
            AttentionResidualBlock(c, config.n_heads, config.time_kernel, causal, config.attention)
            for _ in range(config.n_blocks)
        )
        self.out = nn.Sequential(ChannelNorm(c), nn.ReLU())

    def forward(self, x: torch.Tensor, pos, time_mask) -> torch.Tensor:
        h = self.down(x)
        for block in self.blocks:
            h = block(h, pos, time_mask)
        return self.out(h)


class Decoder(nn.Module):
    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        c, causal = config.hidden, config.causal
        self.blocks = nn.ModuleList(
            AttentionResidualBlock(c, config.n_heads, config.time_kernel, causal, config.attention)
            for _ in range(config.n_blocks)
        )
        self.mid = nn.Sequential(ChannelNorm(c), nn.ReLU())
        strides = list(reversed(_strides(config)))
        layers: list[nn.Module] = []
        for i, (st, ss) in enumerate(strides):
            last = i == len(strides) - 1
            c_out = 3 if last else c
            layers.append(ConvTranspose3d(c, c_out, _kernel(config, st, ss), (st, ss, ss), causal))
            if not last:
                layers.append(nn.ReLU())
        self.up = nn.Sequential(*layers)
        # refine[i]: the blocks after hidden upsampling layer i (none in the paper's decoder)
        self.refine = nn.ModuleList(
            nn.Sequential(
                *(RefineBlock(c, config.decoder_refine_width) for _ in range(config.decoder_refine))
            )
            for _ in range(len(strides) - 1 if config.decoder_refine else 0)
        )

    def latent_stage(self, h: torch.Tensor, pos, time_mask) -> torch.Tensor:
        for block in self.blocks:
            h = block(h, pos, time_mask)
        return self.mid(h)

    @property
    def per_frame(self) -> bool:
        """True when upsampling maps each latent step to its frames alone (time kernel 1,
        time ÷1, as in the cpu preset): then it runs as 2D convolutions over frames."""
        return all(m.per_frame for m in self.up if isinstance(m, ConvTranspose3d))

    def upsample(self, h: torch.Tensor) -> torch.Tensor:
        """Latent features (B, C, T', H', W') -> frames (B, 3, T, H, W)."""
        if not self.per_frame:
            return self.upsample_3d(h)
        b, c, t, hh, ww = h.shape
        x = h.transpose(1, 2).reshape(b * t, c, hh, ww)  # (B*T', C, H', W')
        x = self.upsample_frames(x.contiguous(memory_format=torch.channels_last))
        return x.reshape(b, t, *x.shape[1:]).transpose(1, 2)

    def upsample_frames(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H', W') -> (N, 3, H, W) for a :attr:`per_frame` decoder. Channels-last
        input runs the transposed convolutions ~2x faster on CPU than the 3D path."""
        hidden = 0
        for layer in self.up:
            if isinstance(layer, ConvTranspose3d):
                x = layer.forward_frames(x)
            else:
                x = layer(x)
                if self.refine:
                    x = self.refine[hidden](x)
                    hidden += 1
        return x

    def upsample_3d(self, h: torch.Tensor) -> torch.Tensor:
        """:meth:`upsample` through the 3D layers (any decoder; refine blocks per frame)."""
        hidden = 0
        for layer in self.up:
            h = layer(h)
            if isinstance(layer, nn.ReLU) and self.refine:
                b, c, t = h.shape[:3]
                frames = h.transpose(1, 2).reshape(b * t, c, *h.shape[3:])  # (B*T, C, H, W)
                frames = self.refine[hidden](frames)
                h = frames.view(b, t, c, *h.shape[3:]).transpose(1, 2)
                hidden += 1
        return h


class VQVAE(nn.Module):
    """Video VQ-VAE; see the module docstring. ``forward`` returns losses for training."""

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config.hidden
        lat = config.latent_shape
        self.positions = (
            AxialPositions(c, lat, absolute_time=not config.causal) if config.attention else None
        )
        self.time_bias = (
            RelativeTimeBias(config.n_heads, config.time_window or lat[0])
            if config.attention and config.causal
            else None
        )
        self.encoder = Encoder(config)
        self.pre_quant = nn.Conv3d(c, config.code_dim, 1)
        self.quantizer = EMAQuantizer(
            config.n_codes, config.code_dim, config.ema_decay, config.beta, config.restart_threshold
        )
        self.post_quant = nn.Conv3d(config.code_dim, c, 1)
        self.decoder = Decoder(config)
        self.context = (
            ContextDecoder(
                config.code_dim,
                config.resolution,
                config.space_down,
                config.context_width,
                config.context_max_flow,
            )
            if config.context_width
            else None
        )
        self.register_buffer("data_variance", torch.tensor(config.data_variance))

    def _context(self, t: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        pos = self.positions(t) if self.positions is not None else None
        mask = self.time_bias(t) if self.time_bias is not None else None
        return pos, mask

    def _check(self, x: torch.Tensor) -> None:
        c = self.config
        if (
            x.ndim != 5
            or x.shape[1] != 3
            or x.shape[-1] != c.resolution
            or x.shape[-2] != c.resolution
        ):
            raise ValueError(
                f"expected (B, 3, T, {c.resolution}, {c.resolution}) frames, got {tuple(x.shape)}"
            )
        if x.shape[2] % c.time_down:
            raise ValueError(f"T={x.shape[2]} is not a multiple of time_down={c.time_down}")

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        pos, mask = self._context(x.shape[2] // self.config.time_down)
        return self.pre_quant(self.encoder(x, pos, mask))  # (B, D, T', H', W')

    def decode_latents(self, z: torch.Tensor, keep: int | None = None) -> torch.Tensor:
        """Frames (B, 3, T, H, W) for code vectors ``z`` (B, D, T', H', W'), with gradients;
        only those of the last ``keep`` latent steps if given (T = keep * time_down)."""
        pos, mask = self._context(z.shape[2])
        h = self.decoder.latent_stage(self.post_quant(z), pos, mask)
        if keep is None:
            return self.decoder.upsample(h)
        x = self.decoder.upsample(h[:, :, -(keep + self.upsample_steps - 1) :])
        return x[:, :, -keep * self.config.time_down :]

    def forward(self, x: torch.Tensor) -> VQVAEOutput:
        """Encode, quantise and decode ``x`` (B, 3, T, H, W) in [-0.5, 0.5]."""
        z = self._encode(x)
        b, d, t, h, w = z.shape
        flat = z.permute(0, 2, 3, 4, 1).reshape(-1, d)  # (B*T'*H'*W', D)
        q = self.quantizer(flat)
        zq = q.quantized.view(b, t, h, w, d).permute(0, 4, 1, 2, 3)
        recon = self.decode_latents(zq)
        losses = {"recon": F.mse_loss(recon, x) / self.data_variance, "commit": q.commitment}
        return VQVAEOutput(recon, q.codes.view(b, t, h, w), losses, q.perplexity, q.dead)

    @torch.no_grad()
    def encode_latents(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's outputs (B, D, T', H', W') before quantisation, for frames x."""
        return self._encode(x)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        """Codes (B, T / time_down, H', W') int64 for frames (B, 3, T, H, W) in [-0.5, 0.5];
        ``previous`` (B, H', W'): the codes of the step before x (``sticky`` encoding only)."""
        return self.quantize(self._encode(x), previous)

    @torch.no_grad()
    def quantize(self, z: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        """Codes (B, T', H', W') of encoder outputs z (B, D, T', H', W'): the nearest code, or
        with ``config.sticky`` > 0 the previous step's code wherever it is nearly as near."""
        b, d, t, h, w = z.shape
        codebook = self.quantizer.codebook
        flat = z.permute(0, 2, 3, 4, 1).reshape(-1, d)  # (B*T'*H'*W', D)
        codes = nearest_codes(flat, codebook).view(b, t, h, w)
        if not self.config.sticky:
            return codes
        rows = flat.view(b, t, h, w, d)
        best = (rows - codebook[codes]).pow(2).sum(-1)  # (B, T', H', W')
        for i in range(t):
            before = previous if i == 0 else codes[:, i - 1]
            if before is None:
                continue
            kept = (rows[:, i] - codebook[before]).pow(2).sum(-1)
            stay = kept <= (1 + self.config.sticky) * best[:, i]
            codes[:, i] = torch.where(stay, before, codes[:, i])
        return codes

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T', H', W') codes -> (B, D, T', H', W') code vectors."""
        return self.quantizer.lookup(codes).permute(0, 4, 1, 2, 3)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Frames (B, 3, T' * time_down, H, W), ~[-0.5, 0.5], for codes (B, T', H', W').

        With a context decoder, the clip is painted step by step from the codes alone: the
        first frame without a frame before it, each later one over the one painted before."""
        if self.context is not None:
            return self.paint_clip(codes)
        return self.decode_latents(self.embed_codes(codes))

    def paint(
        self,
        codes: torch.Tensor,
        codes_before: torch.Tensor,
        previous: torch.Tensor,
        has_previous: torch.Tensor,
        base: torch.Tensor,
        aligned: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The context decoder's frame (B, 3, H, W) for one step's codes (B, H', W'), the step
        before's codes (B, H', W'), the frame shown before (B, 3, H, W), which rows have one
        (B,) bool and the plain decoder's frame of the step ``base`` (B, 3, H, W) (see
        ``worldmodel.tokenizer.context``); with gradients. ``aligned``: also the aligned
        previous frame."""
        if self.context is None:
            raise ValueError("this tokenizer has no context decoder (vqvae.context_width = 0)")
        embed = self.quantizer.lookup  # (B, H', W') -> (B, H', W', D)
        return self.context(
            embed(codes).permute(0, 3, 1, 2),
            embed(codes_before).permute(0, 3, 1, 2),
            previous,
            has_previous,
            base,
            aligned,
        )

    def paint_clip(
        self,
        codes: torch.Tensor,
        previous: torch.Tensor | None = None,
        codes_before: torch.Tensor | None = None,
        base: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Frames (B, 3, T', H, W) painted step by step for codes (B, T', H', W'), each over
        the one painted before (``previous`` (B, 3, H, W): the frame before the first step,
        with its codes ``codes_before`` (B, H', W'); None: the first is the plain decoder's).
        ``base``: the plain decoder's frames (B, 3, T', H, W) of these steps, if already made
        (with a longer code history, say); else decoded from ``codes``. Without gradients."""
        with torch.no_grad():
            if base is None:
                base = self.decode_latents(self.embed_codes(codes))
            b = codes.shape[0]
            has = torch.full((b,), previous is not None, dtype=torch.bool, device=codes.device)
            if previous is None:
                previous = torch.zeros_like(base[:, :, 0])
            before = codes[:, 0] if codes_before is None else codes_before
            frames = []
            for t in range(codes.shape[1]):
                frame = self.paint(codes[:, t], before, previous, has, base[:, :, t])
                frames.append(frame)
                previous, before = frame, codes[:, t]
                has = torch.ones_like(has)
            return torch.stack(frames, 2)

    @torch.no_grad()
    def decode_last(self, codes: torch.Tensor) -> torch.Tensor:
        """Frames (B, 3, time_down, H, W) of the last latent step of ``codes`` (B, T', H', W').

        Causal tokenizers only. Pass at least :attr:`stream_window` trailing steps to get
        exactly what :meth:`decode` gives for those frames; fewer is allowed at an episode's
        start (the model then sees the same short history it saw in training).
        """
        if not self.config.causal:
            raise ValueError("decode_last needs a causal tokenizer (config.causal=True)")
        if self.context is not None:
            return self.paint_clip(codes[:, -self.stream_window :])[:, :, -1:]
        return self.decode_latents(self.embed_codes(codes[:, -self.stream_window :]), keep=1)

    @property
    def upsample_steps(self) -> int:
        """Trailing latent steps the upsampling convolutions need for the last step's frames."""
        # Offsets of the frames needed, relative to the last step's first frame, walked from
        # the output inwards: a causal transposed conv's output o reads inputs
        # ceil((o - k + 1) / stride) .. floor(o / stride).
        lo = 0
        for st, ss in _strides(self.config):  # outermost (full-resolution) layer first
            lo = math.ceil((lo - _kernel(self.config, st, ss)[0] + 1) / st)
        return 1 - lo

    @property
    def encode_context(self) -> int:
        """Frames before a chunk that a causal encoder needs to code the chunk exactly."""
        c = self.config
        window = c.time_window or c.latent_shape[0]
        per_block = (c.time_kernel - 1) + (window - 1 if c.attention else 0)
        lo = -(c.n_blocks * per_block + c.time_kernel - 1)  # latent steps, relative
        for st, ss in reversed(_strides(c)):  # innermost (latent-side) layer first
            lo = lo * st - (_kernel(c, st, ss)[0] - st)
        return -lo + (-lo) % c.time_down

    @property
    def stream_window(self) -> int:
        """Latent steps :meth:`decode_last` needs for an exact result."""
        c = self.config
        window = c.time_window or c.latent_shape[0]
        per_block = (c.time_kernel - 1) + (window - 1 if c.attention else 0)
        return self.upsample_steps + c.n_blocks * per_block
