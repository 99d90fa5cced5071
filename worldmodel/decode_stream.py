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

import torch
import torch.nn.functional as F

from worldmodel.attention import AxialAttention
from worldmodel.vqvae import VQVAE, AttentionResidualBlock


class _BlockState:
    """What one attention residual block carries from step to step, for B rows."""

    def __init__(
        self, batch: int, block: AttentionResidualBlock, shape: tuple[int, int, int], past: int
    ) -> None:
        h, w, c = shape
        conv = block.conv[2].conv
        self.conv_inputs = conv.weight.new_zeros(batch, c, conv.kernel_size[0] - 1, h, w)
        if block.attention:
            attn = block.attns[0]
            hs = c // attn.n_heads
            self.keys = conv.weight.new_zeros(batch, h * w, attn.n_heads, past, hs)
            self.values = torch.zeros_like(self.keys)
            self.valid = torch.zeros(batch, past, dtype=torch.bool, device=conv.weight.device)

    def assign(self, rows: torch.Tensor, other: _BlockState) -> None:
        for name, value in vars(other).items():
            getattr(self, name)[rows] = value


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


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
        self.pos: torch.Tensor | None = None
        if model.positions is not None:
            rows, cols = model.positions.rows, model.positions.cols
            self.pos = (rows[:, None, :] + cols[None, :, :]).detach()  # (H', W', C)
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
        model = self.model
        z = model.quantizer.lookup(codes)  # (B, H', W', D)
        x = F.linear(z, model.post_quant.weight[:, :, 0, 0, 0], model.post_quant.bias)
        for block, state in zip(self.decoder.blocks, self.blocks, strict=True):
            x = self._block(block, state, x)
        mid = self.decoder.mid[0]
        x = F.relu(F.layer_norm(x, mid.normalized_shape, mid.weight, mid.bias, mid.eps))
        latent = x.permute(0, 3, 1, 2)  # (B, C, H', W'), a channels-last view
        if self.upsample_steps > 1:
            frames = self._upsample_window(latent) if upsample else None
            self.latents = torch.cat([self.latents[:, :, 1:], latent[:, :, None]], 2)
            self.latent_count += 1
            return frames
        if not upsample:
            return None
        if self.decoder.per_frame:
            return self.decoder.upsample_frames(latent)[:, :, None]
        return self.decoder.up(latent[:, :, None])

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
            out[rows] = self.decoder.up(window[rows, :, n - have :])[:, :, -td:]
        return out

    def _block(
        self, block: AttentionResidualBlock, state: _BlockState, x: torch.Tensor
    ) -> torch.Tensor:
        """One latent step (B, H', W', C) through one block, updating its state."""
        norm0, _, conv0, norm1, _, conv1 = block.conv
        a = F.relu(F.layer_norm(x, norm0.normalized_shape, norm0.weight, norm0.bias, norm0.eps))
        a = a.permute(0, 3, 1, 2)  # (B, C, H', W'), channels-last
        w, pad = conv0.conv.weight, conv0.pad[:4]
        if w.shape[2] > 1:  # a time kernel: convolve over the kept inputs and this one
            stack = torch.cat([state.conv_inputs, a[:, :, None]], 2)  # (B, C, kt, H', W')
            state.conv_inputs = stack[:, :, 1:]
            a = F.conv3d(F.pad(stack, (*pad, 0, 0)), w, conv0.conv.bias)[:, :, 0]
        else:
            a = F.conv2d(F.pad(a, pad), w[:, :, 0], conv0.conv.bias)
        a = a.permute(0, 2, 3, 1)  # (B, H', W', C / 2)
        a = F.relu(F.layer_norm(a, norm1.normalized_shape, norm1.weight, norm1.bias, norm1.eps))
        x = x + F.linear(a, conv1.conv.weight[:, :, 0, 0, 0], conv1.conv.bias)
        if not block.attention:
            return x
        for norm, attn in zip(block.norms, block.attns, strict=True):
            y = F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps) + self.pos
            if attn.axis == 2:
                x = x + self._time_attention(attn, state, y)
            else:
                x = x + self._space_attention(attn, y)
        return x

    def _time_attention(
        self, attn: AxialAttention, state: _BlockState, y: torch.Tensor
    ) -> torch.Tensor:
        b, h, w, c = y.shape
        heads = attn.n_heads
        qkv = F.linear(y, attn.qkv.weight, attn.qkv.bias).view(b, h * w, 3, heads, c // heads)
        q, k, v = qkv.unbind(2)  # (B, H'W', heads, hs)
        keys = torch.cat([state.keys, k[:, :, :, None]], 3)  # (B, H'W', heads, n, hs)
        values = torch.cat([state.values, v[:, :, :, None]], 3)
        valid = torch.cat([state.valid, state.valid.new_ones(b, 1)], 1)  # (B, n)
        state.keys, state.values, state.valid = keys[:, :, :, 1:], values[:, :, :, 1:], valid[:, 1:]
        # Key i of n is n - 1 - i steps in the past: the bias table read backwards.
        n = keys.shape[3]
        bias = self.model.time_bias.bias[:, :n].flip(-1)  # (heads, n)
        mask = bias[None].masked_fill(~valid[:, None, :], float("-inf"))  # (B, heads, n)
        out = _attend(q[:, :, :, None], keys, values, mask[:, None, :, None, :])
        out = out.reshape(b, h, w, c)  # (B, H', W', C)
        return F.linear(out, attn.proj.weight, attn.proj.bias)

    @staticmethod
    def _space_attention(attn: AxialAttention, y: torch.Tensor) -> torch.Tensor:
        b, h, w, c = y.shape
        heads = attn.n_heads
        qkv = F.linear(y, attn.qkv.weight, attn.qkv.bias).view(b, h, w, 3, heads, c // heads)
        if attn.axis == 3:  # along H': sequences are columns
            qkv = qkv.permute(3, 0, 2, 4, 1, 5)  # (3, B, W', heads, H', hs)
            out = _attend(*qkv.unbind(0), None).permute(0, 3, 1, 2, 4)  # (B, H', W', heads, hs)
        else:  # along W': sequences are rows
            qkv = qkv.permute(3, 0, 1, 4, 2, 5)  # (3, B, H', heads, W', hs)
            out = _attend(*qkv.unbind(0), None).transpose(2, 3)  # (B, H', W', heads, hs)
        return F.linear(out.reshape(b, h, w, c), attn.proj.weight, attn.proj.bias)
