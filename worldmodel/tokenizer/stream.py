"""Streaming decode: each new latent step runs through the decoder alone, with a state.

``VQVAE.decode_last`` re-runs the decoder's latent-resolution blocks over the last
``stream_window`` latent steps for every new step. A :class:`DecodeStream` instead keeps, per
row and per attention residual block, what later steps read from earlier ones (like a KV
cache, and like it owned by the caller):

- the time attention's keys and values of the last ``time_window - 1`` steps, with a mask of
  which of them exist (a row that started recently has fewer);
- the last ``time_kernel - 1`` inputs of the block's causal time convolution (zeros before a
  row's first step: the convolution's own causal padding);
- the last ``upsample_steps - 1`` latent feature maps, when upsampling reaches back in time.

A step then costs one latent step through the blocks plus the upsampling of its own frames,
and gives exactly what :meth:`VQVAE.decode` gives for those frames (tests hold them equal).
Inside, features are channel-last (B, H', W', C), the layout LayerNorm and Linear work in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.tokenizer.layers import AttentionResidualBlock
from worldmodel.tokenizer.vqvae import VQVAE


@dataclass
class _Norm:
    weight: torch.Tensor | None
    bias: torch.Tensor | None
    eps: float

    @classmethod
    def of(cls, norm: nn.LayerNorm) -> _Norm:
        return cls(norm.weight, norm.bias, norm.eps)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)


@dataclass
class _Attention:
    """One axial attention with its LayerNorm's gain, bias, the position embedding and the
    1/sqrt(head size) scale folded into the qkv projection (one matmul + one add per call)."""

    axis: int
    heads: int
    eps: float
    qkv_weight: torch.Tensor  # (3C, C)
    qkv_bias: torch.Tensor  # (H'W', 3C): differs by position through the embedding
    proj_weight: torch.Tensor  # (C, C)
    proj_bias: torch.Tensor  # (C,)


def _prepare_attention(norm: nn.LayerNorm, attn: nn.Module, pos: torch.Tensor | None) -> _Attention:
    c = norm.normalized_shape[0]
    shift = norm.bias if pos is None else norm.bias + pos.reshape(-1, c)  # (H'W' or 1, C)
    scale = torch.ones(3 * c, dtype=shift.dtype, device=shift.device)
    scale[:c] = (c // attn.n_heads) ** -0.5  # queries: the attention's scale, applied once
    weight = attn.qkv.weight * norm.weight[None, :] * scale[:, None]
    bias = (F.linear(shift, attn.qkv.weight) + attn.qkv.bias) * scale
    return _Attention(
        attn.axis, attn.n_heads, norm.eps, weight, bias, attn.proj.weight, attn.proj.bias
    )


@dataclass
class _Block:
    """An attention residual block's weights in the shapes the single-step path uses."""

    norm0: _Norm
    conv0_weight: torch.Tensor  # (C/2, C, kt, kh, kw)
    conv0_bias: torch.Tensor
    padding: tuple[int, int]
    norm1: _Norm
    conv1_weight: torch.Tensor  # (C, C/2): the 1x1x1 convolution as a matrix
    conv1_bias: torch.Tensor
    attentions: list[_Attention]


def _prepare_block(block: AttentionResidualBlock, pos: torch.Tensor | None) -> _Block:
    norm0, _, conv0, norm1, _, conv1 = block.conv
    kh, kw = conv0.conv.kernel_size[1:]
    assert kh % 2 and kw % 2, "odd spatial kernels pad the same on both sides"
    attentions = []
    if block.attention:
        attentions = [
            _prepare_attention(n, a, pos) for n, a in zip(block.norms, block.attns, strict=True)
        ]
    return _Block(
        _Norm.of(norm0),
        conv0.conv.weight,
        conv0.conv.bias,
        (kh // 2, kw // 2),
        _Norm.of(norm1),
        conv1.conv.weight[:, :, 0, 0, 0],
        conv1.conv.bias,
        attentions,
    )


class _BlockState:
    """What one attention residual block carries from step to step, for B rows."""

    def __init__(
        self, batch: int, block: AttentionResidualBlock, shape: tuple[int, int, int], past: int
    ) -> None:
        h, w, c = shape
        conv = block.conv[2].conv
        self.conv_inputs = conv.weight.new_zeros(batch, c, conv.kernel_size[0] - 1, h, w)
        if block.attention:
            heads = block.attns[0].n_heads
            self.keys = conv.weight.new_zeros(batch, h * w, heads, past, c // heads)
            self.values = torch.zeros_like(self.keys)
            self.valid = torch.zeros(batch, past, dtype=torch.bool, device=conv.weight.device)

    def assign(self, rows: torch.Tensor, other: _BlockState) -> None:
        for name, value in vars(other).items():
            getattr(self, name)[rows] = value


class DecodeStream:
    """Frames of one new latent step at a time for ``batch`` rows of codes.

    A fresh stream decodes as if each row's codes started at its first step (an episode's
    start). :meth:`prime` fills the state from a code history instead, for all rows or some.
    Made by :meth:`VQVAE.stream`; valid for the tokenizer's weights at that moment.
    """

    def __init__(self, model: VQVAE, batch: int) -> None:
        c = model.config
        if not c.causal:
            raise ValueError("streaming decode needs a causal tokenizer (config.causal=True)")
        self.model, self.batch = model, batch
        self.decoder = model.decoder
        _, h, w = c.latent_shape
        self.shape = (h, w, c.hidden)
        self.upsample_steps = model.upsample_steps
        with torch.no_grad():
            pos = None
            if model.positions is not None:
                rows, cols = model.positions.rows, model.positions.cols
                pos = rows[:, None, :] + cols[None, :, :]  # (H', W', C)
            self.weights = [_prepare_block(b, pos) for b in self.decoder.blocks]
            # Code -> post_quant vector in one lookup.
            self.embedding = F.linear(
                model.quantizer.codebook,
                model.post_quant.weight[:, :, 0, 0, 0],
                model.post_quant.bias,
            )  # (K, C)
            self.mid = _Norm.of(self.decoder.mid[0])
            self.time_bias = None
            if model.time_bias is not None:
                # Key i of the window is window - 1 - i steps back: the bias table reversed.
                self.time_bias = model.time_bias.bias.flip(-1)  # (heads, window)
        past = model.time_bias.window - 1 if model.time_bias is not None else 0
        self.blocks = [_BlockState(batch, b, self.shape, past) for b in self.decoder.blocks]
        # (B, C, steps, H', W') latent features of earlier steps for the upsampling, and how
        # many of them each row really has (fewer right after a start).
        weight = model.post_quant.weight
        self.latents = weight.new_zeros(batch, c.hidden, self.upsample_steps - 1, h, w)
        self.latent_count = torch.zeros(batch, dtype=torch.long)

    @torch.no_grad()
    def prime(self, codes: torch.Tensor, rows: list[int] | torch.Tensor | None = None) -> None:
        """Restart rows from their code history (b, T', H', W') int64, the last step being
        the one before the next :meth:`step`; ``rows`` (b of them) or all rows (b = B)."""
        b = codes.shape[0]
        if rows is None and b != self.batch:
            raise ValueError(f"prime expects codes for all {self.batch} rows, got {b}")
        fresh = DecodeStream(self.model, b)
        # Steps before the last stream_window - 1 no longer reach the next step's frames.
        for t in range(max(0, codes.shape[1] - (self.model.stream_window - 1)), codes.shape[1]):
            fresh._advance(codes[:, t], upsample=False)
        if rows is None:
            self.blocks, self.latents, self.latent_count = (
                fresh.blocks,
                fresh.latents,
                fresh.latent_count,
            )
            return
        idx = torch.as_tensor(rows, dtype=torch.long)
        if len(idx) != b:
            raise ValueError(f"{len(idx)} rows but codes for {b}")
        for mine, theirs in zip(self.blocks, fresh.blocks, strict=True):
            mine.assign(idx, theirs)
        self.latents[idx] = fresh.latents
        self.latent_count[idx] = fresh.latent_count

    @torch.no_grad()
    def step(self, codes: torch.Tensor) -> torch.Tensor:
        """Frames (B, 3, time_down, H, W), ~[-0.5, 0.5], of the new latent step ``codes``
        (B, H', W') or (B, 1, H', W') int64."""
        if codes.ndim == 4:
            codes = codes[:, 0]
        if codes.shape[0] != self.batch:
            raise ValueError(f"step expects codes for {self.batch} rows, got {codes.shape[0]}")
        return self._advance(codes, upsample=True)

    def _advance(self, codes: torch.Tensor, upsample: bool) -> torch.Tensor | None:
        b = codes.shape[0]
        h, w, c = self.shape
        x = F.embedding(codes.reshape(b, h * w), self.embedding)  # (B, H'W', C)
        for weights, state in zip(self.weights, self.blocks, strict=True):
            x = self._block(weights, state, x)
        x = F.relu(self.mid(x))
        latent = x.view(b, h, w, c).permute(0, 3, 1, 2)  # (B, C, H', W'), channels-last
        if self.upsample_steps > 1:
            frames = self._upsample_window(latent) if upsample else None
            self.latents = torch.cat([self.latents[:, :, 1:], latent[:, :, None]], 2)
            self.latent_count += 1
            return frames
        if not upsample:
            return None
        if self.decoder.per_frame:
            return self.decoder.upsample_frames(latent)[:, :, None]
        return self.decoder.upsample_3d(latent[:, :, None])

    def _upsample_window(self, latent: torch.Tensor) -> torch.Tensor:
        """Upsample the new step with the earlier ones its frames reach back to; rows with
        fewer earlier steps see only those, as the full decode of their codes does."""
        n = self.upsample_steps - 1
        td = self.model.config.time_down
        window = torch.cat([self.latents, latent[:, :, None]], 2)  # (B, C, n + 1, H', W')
        counts = self.latent_count.clamp(max=n)
        res = self.model.config.resolution
        out = window.new_empty(self.batch, 3, td, res, res)
        for have in counts.unique().tolist():
            rows = (counts == have).nonzero()[:, 0]
            out[rows] = self.decoder.upsample_3d(window[rows, :, n - have :])[:, :, -td:]
        return out

    def _block(self, weights: _Block, state: _BlockState, x: torch.Tensor) -> torch.Tensor:
        """One latent step (B, H'W', C) through one block, updating its state."""
        b, (h, w, c) = x.shape[0], self.shape
        a = F.relu(weights.norm0(x)).view(b, h, w, c).permute(0, 3, 1, 2)  # channels-last
        kernel = weights.conv0_weight
        if kernel.shape[2] > 1:  # a time kernel: convolve over the kept inputs and this one
            stack = torch.cat([state.conv_inputs, a[:, :, None]], 2)  # (B, C, kt, H', W')
            state.conv_inputs = stack[:, :, 1:]
            a = F.conv3d(stack, kernel, weights.conv0_bias, padding=(0, *weights.padding))
            a = a[:, :, 0]
        else:
            a = F.conv2d(a, kernel[:, :, 0], weights.conv0_bias, padding=weights.padding)
        a = a.permute(0, 2, 3, 1).reshape(b, h * w, -1)  # (B, H'W', C/2)
        a = F.relu(weights.norm1(a))
        x = F.linear(a, weights.conv1_weight, weights.conv1_bias).add_(x)
        for attn in weights.attentions:
            y = F.layer_norm(x, (c,), eps=attn.eps)
            qkv = F.linear(y, attn.qkv_weight).add_(attn.qkv_bias)  # (B, H'W', 3C)
            if attn.axis == 2:
                out = self._time_attention(attn, state, qkv)
            else:
                out = self._space_attention(attn, qkv)
            x = F.linear(out, attn.proj_weight, attn.proj_bias).add_(x)
        return x

    def _time_attention(
        self, attn: _Attention, state: _BlockState, qkv: torch.Tensor
    ) -> torch.Tensor:
        """The new step's queries against the kept keys and its own: (B, H'W', C)."""
        b, p, c3 = qkv.shape
        q, k, v = qkv.view(b, p, 3, attn.heads, c3 // (3 * attn.heads)).unbind(2)
        keys = torch.cat([state.keys, k[:, :, :, None]], 3)  # (B, H'W', heads, n, hs)
        values = torch.cat([state.values, v[:, :, :, None]], 3)
        valid = torch.cat([state.valid, state.valid.new_ones(b, 1)], 1)  # (B, n)
        state.keys, state.values, state.valid = keys[:, :, :, 1:], values[:, :, :, 1:], valid[:, 1:]
        n = keys.shape[3]
        # Elementwise products, not matmuls: B*H'W'*heads products of 1 x n are too small.
        scores = (q[:, :, :, None] * keys).sum(-1)  # (B, H'W', heads, n)
        bias = self.time_bias[:, -n:]  # (heads, n)
        if not bool(valid.all()):
            bias = bias.masked_fill(~valid[:, None, None, :], float("-inf"))  # (B, 1, heads, n)
        weights = torch.softmax(scores + bias, -1)
        return (weights[..., None] * values).sum(3).view(b, p, -1)

    def _space_attention(self, attn: _Attention, qkv: torch.Tensor) -> torch.Tensor:
        """Attention along H' (axis 3) or W' (axis 4) within the step: (B, H'W', C)."""
        b, (h, w, c) = qkv.shape[0], self.shape
        heads = attn.heads
        qkv = qkv.view(b, h, w, 3, heads, c // heads)
        if attn.axis == 3:  # along H': sequences are columns
            seq = qkv.permute(3, 0, 2, 4, 1, 5).reshape(3, b * w, heads, h, c // heads)
            out = F.scaled_dot_product_attention(*seq.unbind(0), scale=1.0)
            out = out.view(b, w, heads, h, -1).permute(0, 3, 1, 2, 4)  # (B, H', W', heads, hs)
        else:  # along W': sequences are rows
            seq = qkv.permute(3, 0, 1, 4, 2, 5).reshape(3, b * h, heads, w, c // heads)
            out = F.scaled_dot_product_attention(*seq.unbind(0), scale=1.0)
            out = out.view(b, h, heads, w, -1).transpose(2, 3)  # (B, H', W', heads, hs)
        return out.reshape(b, h * w, c)
