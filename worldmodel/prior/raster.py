"""The VideoGen prior: an iGPT-style transformer over the tokenizer's codes (paper §2.2, §3).

Codes of a window of ``steps`` latent time steps are flattened in (time, row, column) order
and modelled autoregressively. The input at position p is code p-1 (a BOS token at p = 0)
plus the position embedding of p, so position p's output predicts code p.

**Action alignment.** Latent step t covers frames [t*s, (t+1)*s) (s = actions_per_step). Its
conditioning vector embeds the s actions that *led into* those frames: a[t*s - 1], ...,
a[(t+1)*s - 2], where a[i] is the action taken at frame i (-1, a learned "none", before an
episode's first frame). Every LayerNorm of every position of step t is modulated by that vector
(conditional LayerNorm), so an action influences the codes of the frames it produces and
everything after, never anything before: the model answers "what does the world show after
the player did this?".

**Heads.** Reward and termination of step t (the rewards of the steps into its frames, summed;
whether the episode ended there) are read from the hidden state of step t's last position,
which has seen the action and all but the final code of step t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.config import PriorConfig
from worldmodel.precision import attention
from worldmodel.prior.kv_cache import KVCache


@dataclass
class PriorOutput:
    logits: torch.Tensor  # (B, L, K) next-code logits for every position of the window
    reward: torch.Tensor  # (B, T') predicted symlog reward per latent step
    done_logit: torch.Tensor  # (B, T') termination logit per latent step
    loss: torch.Tensor | None = None  # total loss, when targets were given
    terms: dict[str, torch.Tensor] | None = None  # its named terms


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) log(1 + |x|): rewards of very different scales share one regression head."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


NormParams = tuple[torch.Tensor, torch.Tensor] | None  # (1 + gain, bias), each (B, m, d)


class CondLayerNorm(nn.Module):
    """LayerNorm whose gain and bias are affine functions of a conditioning vector.

    ``params(cond)`` computes (1 + gain, bias) once per latent step; ``forward`` applies them
    to ``x`` (B, n, d) where the n positions are split evenly over the m steps of ``params``.
    Without conditioning (cond_dim = 0) it is a plain LayerNorm.
    """

    def __init__(self, d: int, cond_dim: int) -> None:
        super().__init__()
        self.d = d
        self.norm = nn.LayerNorm(d, elementwise_affine=cond_dim == 0)
        self.affine = nn.Linear(cond_dim, 2 * d) if cond_dim else None
        if self.affine is not None:  # start as an unconditioned, unscaled LayerNorm
            nn.init.zeros_(self.affine.weight)
            nn.init.zeros_(self.affine.bias)

    def params(self, cond: torch.Tensor | None) -> NormParams:
        if self.affine is None or cond is None:
            return None
        gain, bias = self.affine(cond).chunk(2, dim=-1)  # (B, m, d) each
        return 1.0 + gain, bias

    def forward(self, x: torch.Tensor, params: NormParams) -> torch.Tensor:
        y = self.norm(x)
        if params is None:
            return y
        scale, shift = params
        b, n, d = y.shape
        m = scale.shape[1]
        y = y.view(b, m, n // m, d)  # (B, steps, positions per step, d)
        return torch.addcmul(shift[:, :, None], y, scale[:, :, None]).view(b, n, d)


def _norm(x: torch.Tensor, norm: CondLayerNorm, params: NormParams) -> torch.Tensor:
    """CondLayerNorm for (B, 1, d) with params (B, 1, d): one fused op each."""
    if params is None:
        return F.layer_norm(x, (norm.d,), norm.norm.weight, norm.norm.bias)
    return torch.addcmul(params[1], F.layer_norm(x, (norm.d,)), params[0])


class SelfAttention(nn.Module):
    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.attn_dropout = config.attn_dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.n_heads, d // self.n_heads).unbind(2)
        q, k, v = (y.transpose(1, 2) for y in (q, k, v))  # (B, heads, n, head_dim)
        past = 0
        if cache is not None:
            past = cache.length
            k, v = cache.append(layer, k, v)  # (B, heads, past + n, head_dim)
        mask = None
        if past and n > 1:  # new queries see the whole past and the causal part of the new block
            key_pos = torch.arange(past + n, device=x.device)
            mask = key_pos[None, :] <= (past + torch.arange(n, device=x.device))[:, None]
        y = attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=past == 0 and n > 1,
            dropout_p=self.attn_dropout if self.training else 0.0,
        )
        return self.resid_dropout(self.proj(y.transpose(1, 2).reshape(b, n, d)))


class Block(nn.Module):
    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        d, frame_dim = config.d_model, config.frame_cond_dim if config.frame_cond else 0
        self.ln1 = CondLayerNorm(d, config.cond_dim)
        self.attn = SelfAttention(config)
        self.ln2 = CondLayerNorm(d, config.cond_dim)
        self.fc1 = nn.Linear(d + frame_dim, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)
        self.mlp_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        norms: tuple[NormParams, NormParams],
        frame: torch.Tensor | None,
        cache: KVCache | None,
        layer: int,
    ) -> torch.Tensor:
        x = x + self.attn(self.ln1(x, norms[0]), cache, layer)
        h = self.ln2(x, norms[1])
        if frame is not None:  # paper: the frame vector is concatenated before every MLP
            h = torch.cat([h, frame[:, None].expand(-1, h.shape[1], -1)], dim=-1)
        return x + self.mlp_dropout(self.fc2(F.gelu(self.fc1(h), approximate="tanh")))


class FrameEncoder(nn.Module):
    """A small ResNet: conditioning frames (B, n, 3, H, W) in [-0.5, 0.5] -> (B, dim)."""

    def __init__(self, n_frames: int, dim: int, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3 * n_frames, width, 3, 2, 1)]
        c = width
        for _ in range(3):
            layers.append(_ResBlock2d(c, 2 * c))
            c *= 2
        self.body = nn.Sequential(*layers, nn.GroupNorm(8, c), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.out = nn.Linear(c, dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(frames.flatten(1, 2)).flatten(1))


class _ResBlock2d(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            nn.GroupNorm(8, c_in),
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, 3, 2, 1),
            nn.GroupNorm(8, c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1),
        )
        self.skip = nn.Conv2d(c_in, c_out, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.branch(x)


def sincos_table(length: int, d: int) -> torch.Tensor:
    """(length, d) fixed sine-cosine embeddings of flat positions (Vaswani et al. 2017)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10_000.0) / d))
    table = torch.zeros(length, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return table


class Prior(nn.Module):
    """See the module docstring. Codes are (B, T', H', W') int64 in [0, n_codes)."""

    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.bos = config.n_codes  # an extra input id before the first code of a window
        self.tok_emb = nn.Embedding(config.n_codes + 1, d)
        if config.pos_emb == "learned":
            self.pos_t = nn.Parameter(torch.randn(config.steps, d) * 0.02)
            self.pos_h = nn.Parameter(torch.randn(config.height, d) * 0.02)
            self.pos_w = nn.Parameter(torch.randn(config.width, d) * 0.02)
        else:
            self.register_buffer("pos_table", sincos_table(config.block_size, d), persistent=False)
        self.action_emb = (
            nn.Embedding(config.n_actions + 1, config.action_dim) if config.n_actions else None
        )
        self.frame_encoder = (
            FrameEncoder(config.frame_cond_frames, config.frame_cond_dim)
            if config.frame_cond
            else None
        )
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_f = CondLayerNorm(d, config.cond_dim)
        self.head = nn.Linear(d, config.n_codes, bias=False)
        self.reward_head = nn.Linear(d, 1)
        self.done_head = nn.Linear(d, 1)
        self.apply(self._init)
        for block in self.blocks:  # GPT-2: residual projections scaled by depth
            for proj in (block.attn.proj, block.fc2):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * config.n_layers))
        for norm in self._norms():
            if norm.affine is not None:
                nn.init.zeros_(norm.affine.weight)
                nn.init.zeros_(norm.affine.bias)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def _norms(self) -> list[CondLayerNorm]:
        return [n for b in self.blocks for n in (b.ln1, b.ln2)] + [self.ln_f]

    # ---- pieces the sampler reuses -------------------------------------------------------

    def position_table(self) -> torch.Tensor:
        """(block_size, d) position embeddings in flat (t, h, w) order."""
        if self.config.pos_emb == "sincos":
            return self.pos_table
        c = self.config
        table = self.pos_t[:, None, None] + self.pos_h[None, :, None] + self.pos_w[None, None, :]
        return table.reshape(c.block_size, c.d_model)  # (T, H, W, d) -> (L, d)

    def condition(self, actions: torch.Tensor | None) -> torch.Tensor | None:
        """(B, m, s) actions (-1 = none) -> (B, m, cond_dim) step conditioning vectors."""
        if self.action_emb is None:
            return None
        if actions is None:
            raise ValueError("this prior is action-conditioned: pass the actions")
        idx = torch.where(actions < 0, self.config.n_actions, actions)
        return self.action_emb(idx).flatten(2)  # (B, m, s * action_dim)

    def norm_params(self, cond: torch.Tensor | None) -> list[NormParams]:
        """Per-LayerNorm (1 + gain, bias) for step conditioning vectors (B, m, cond_dim)."""
        return [norm.params(cond) for norm in self._norms()]

    def frame_vector(self, frames: torch.Tensor | None) -> torch.Tensor | None:
        """(B, n, 3, H, W) conditioning frames in [-0.5, 0.5] -> (B, frame_cond_dim)."""
        if self.frame_encoder is None:
            return None
        if frames is None:
            raise ValueError("this prior is frame-conditioned: pass the conditioning frames")
        return self.frame_encoder(frames)

    def run(
        self,
        inputs: torch.Tensor,
        start: int,
        norms: list[NormParams],
        frame: torch.Tensor | None = None,
        cache: KVCache | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Hidden states (B, n, d) after the final norm for input ids (B, n) at positions
        ``start .. start + n - 1``. ``norms[i]`` covers those positions' steps (see
        CondLayerNorm). With a cache, keys/values are appended and its length advanced."""
        n = inputs.shape[1]
        table = self.position_table() if positions is None else positions
        x = self.drop(self.tok_emb(inputs) + table[start : start + n])
        for i, block in enumerate(self.blocks):
            x = block(x, (norms[2 * i], norms[2 * i + 1]), frame, cache, i)
        if cache is not None:
            cache.advance(n)
        return self.ln_f(x, norms[-1])

    def decode_step(
        self,
        token: torch.Tensor,
        pos: int,
        norms: list[NormParams],
        frame: torch.Tensor | None,
        cache: KVCache,
        positions: torch.Tensor,
    ) -> torch.Tensor:
        """The fast path of :meth:`run` for one new token per row: (B, 1) ids -> (B, d).

        Same maths as ``run`` (a test holds them equal) with plain functional calls: on a CPU
        a token's cost is dominated by per-op overhead, not arithmetic. Inference only.
        """
        c = self.config
        b, d, nh = token.shape[0], c.d_model, c.n_heads
        past = cache.length
        x = F.embedding(token, self.tok_emb.weight) + positions[pos]  # (B, 1, d)
        for i, blk in enumerate(self.blocks):
            h = _norm(x, blk.ln1, norms[2 * i])
            qkv = F.linear(h, blk.attn.qkv.weight, blk.attn.qkv.bias).view(b, 3, nh, d // nh)
            cache.keys[i, :, :, past] = qkv[:, 1]
            cache.values[i, :, :, past] = qkv[:, 2]
            y = F.scaled_dot_product_attention(
                qkv[:, 0, :, None],
                cache.keys[i, :, :, : past + 1],
                cache.values[i, :, :, : past + 1],
            )  # (B, heads, 1, head_dim)
            x = x + F.linear(y.view(b, 1, d), blk.attn.proj.weight, blk.attn.proj.bias)
            h = _norm(x, blk.ln2, norms[2 * i + 1])
            if frame is not None:
                h = torch.cat([h, frame[:, None]], dim=-1)
            h = F.gelu(F.linear(h, blk.fc1.weight, blk.fc1.bias), approximate="tanh")
            x = x + F.linear(h, blk.fc2.weight, blk.fc2.bias)
        cache.advance(1)
        return _norm(x, self.ln_f, norms[-1])[:, 0]

    def heads(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., d) last-position hidden states -> (symlog reward, termination logit)."""
        return self.reward_head(hidden)[..., 0], self.done_head(hidden)[..., 0]

    # ---- training --------------------------------------------------------------------------

    def forward(
        self,
        codes: torch.Tensor,
        actions: torch.Tensor | None = None,
        cond_frames: torch.Tensor | None = None,
        rewards: torch.Tensor | None = None,
        dones: torch.Tensor | None = None,
    ) -> PriorOutput:
        """Teacher-forced pass over whole windows; with ``rewards`` and ``dones`` also the loss.

        Args:
            codes: (B, T', H', W') int64, T' <= steps.
            actions: (B, T', s) int64, the actions into each step's frames (-1: none).
            cond_frames: (B, n, 3, H, W) frames for the frame-conditioning ResNet.
            rewards: (B, T') float, the summed reward into each step's frames.
            dones: (B, T') bool, whether the episode ended at each step.
        """
        b, t = codes.shape[:2]
        flat = codes.reshape(b, -1)  # (B, L)
        bos = torch.full((b, 1), self.bos, dtype=flat.dtype, device=flat.device)
        inputs = torch.cat([bos, flat[:, :-1]], dim=1)
        norms = self.norm_params(self.condition(actions))
        hidden = self.run(inputs, 0, norms, self.frame_vector(cond_frames))
        last = hidden.view(b, t, -1, hidden.shape[-1])[:, :, -1]  # (B, T', d)
        reward, done = self.heads(last)
        out = PriorOutput(self.head(hidden), reward, done)
        if rewards is not None and dones is not None:
            out.loss, out.terms = self._loss(out, flat, rewards, dones)
        return out

    def _loss(
        self, out: PriorOutput, targets: torch.Tensor, rewards: torch.Tensor, dones: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Step 0 of a window has no earlier step in view, so its reward and termination are
        not trained (the dream always predicts them with context)."""
        c = self.config
        ce = F.cross_entropy(out.logits.flatten(0, 1), targets.reshape(-1))
        reward_loss = F.mse_loss(out.reward[:, 1:], symlog(rewards[:, 1:].float()))
        pos_weight = torch.tensor(c.done_pos_weight, device=targets.device)
        done_loss = F.binary_cross_entropy_with_logits(
            out.done_logit[:, 1:], dones[:, 1:].float(), pos_weight=pos_weight
        )
        total = ce + c.reward_weight * reward_loss + c.done_weight * done_loss
        terms = {
            "ce": ce,
            "bits_per_dim": ce / math.log(2),
            "reward": reward_loss,
            "done": done_loss,
        }
        return total, terms
