"""The frame-parallel prior: the next frame's codes and game state in one pass (beyond the paper).

The paper's prior (``worldmodel.prior.raster``) writes a frame's 64 codes one at a time. In a game
most of a frame is the previous frame moved by the player's action, so here each latent step is one
*block* of tokens, and block t's input at every place is what was there one step before: the
previous step's code at the same (row, column) and the previous value of each game variable. Block
t predicts all of step t's tokens at once, reading the action into step t (conditional LayerNorm,
as in the paper, plus an input embedding). Each layer attends along time at each place (causal,
over the last ``steps`` blocks), then across the places of each block (bidirectional; since the
inputs are the previous frame, this is where motion is read), then applies its MLP: space-time
factorised attention, as in Genie, at a tenth of the cost of full attention over the window.

Time enters only as a learned per-head bias on the distance between blocks, never as an
absolute position, so the window rolls: the dream keeps the last ``steps`` blocks' time keys
and values in a ring (``worldmodel.prior.ring_cache``) and never re-encodes its context.

Alignment (per latent step t of a window, s = actions per step):
    inputs  codes[t - 1], state[t - 1]   (BOS / "none" before an episode's first step)
    cond    actions[t] (the s actions into step t's frames; -1 = none)
    targets codes[t], state[t]

Iterative decoding (``config.reveal``, beyond the paper; MaskGIT-style): block t also reads,
at each place, step t's own code where it is already revealed (MASK elsewhere). Trained with a
random share of each block's codes revealed and the loss on the hidden ones, the prior can draw
a frame in a few passes, each committing its most confident codes, so the codes of one frame
are drawn together rather than each on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.config import FramePriorConfig
from worldmodel.precision import attention
from worldmodel.prior.raster import CondLayerNorm, NormParams
from worldmodel.prior.state_delta import change_targets

# copy_logit's starting bonus for a place's last code: with the head's near-zero first logits
# over 512 codes it gives keeping a code ~10%, about how often a code stays across a step
COPY_BIAS_INIT = 4.0


@dataclass
class FramePriorOutput:
    code_logits: torch.Tensor  # (B, T, H*W, K)
    state_logits: list[torch.Tensor]  # per variable (B, T, bins)
    loss: torch.Tensor | None = None
    terms: dict[str, torch.Tensor] | None = None


def time_mask(steps: int, bias: torch.Tensor) -> torch.Tensor:
    """(heads, steps, steps) additive mask of the time attention: block t sees blocks
    t - window + 1 .. t, with ``bias[h, d]`` for a key ``d`` blocks back."""
    t = torch.arange(steps, device=bias.device)
    dist = t[:, None] - t[None, :]  # query block minus key block
    mask = bias[:, dist.clamp(0, bias.shape[1] - 1)]
    return mask.masked_fill((dist < 0) | (dist >= bias.shape[1]), float("-inf"))


def _heads(x: torch.Tensor, qkv: nn.Linear, n_heads: int) -> tuple[torch.Tensor, ...]:
    """(N, n, d) -> q, k, v each (N, heads, n, head_dim)."""
    n_rows, n, d = x.shape
    q, k, v = qkv(x).view(n_rows, n, 3, n_heads, d // n_heads).unbind(2)
    return tuple(y.transpose(1, 2) for y in (q, k, v))


class Block(nn.Module):
    """Space-time factorised (as in Genie): attention along time at each place, causal over the
    window; attention over the places of each block, bidirectional; then the MLP. Every norm is
    a conditional LayerNorm of the block's action."""

    def __init__(self, config: FramePriorConfig) -> None:
        super().__init__()
        d, cd = config.d_model, config.cond_dim
        self.n_heads = config.n_heads
        self.ln_t, self.ln_s, self.ln_m = (CondLayerNorm(d, cd) for _ in range(3))
        self.qkv_t, self.proj_t = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.qkv_s, self.proj_s = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)
        self.drop = nn.Dropout(config.dropout)

    def time_attention(
        self, x: torch.Tensor, norm: NormParams, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, T, S, d) -> residual update, and keys/values (B*S, heads, T, head_dim)."""
        b, t, s, d = x.shape
        h = self.ln_t(x.reshape(b, t * s, d), norm).view(b, t, s, d)
        h = h.transpose(1, 2).reshape(b * s, t, d)  # (B*S, T, d): one sequence per place
        q, k, v = _heads(h, self.qkv_t, self.n_heads)
        y = attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).reshape(b, s, t, d).transpose(1, 2)
        return self.proj_t(y), k, v

    def space_attention(self, x: torch.Tensor, norm: NormParams) -> torch.Tensor:
        """x (B, T, S, d) -> residual update; each block's places attend to each other."""
        b, t, s, d = x.shape
        h = self.ln_s(x.reshape(b, t * s, d), norm).view(b * t, s, d)
        q, k, v = _heads(h, self.qkv_s, self.n_heads)
        y = attention(q, k, v)
        return self.proj_s(y.transpose(1, 2).reshape(b, t, s, d))

    def mlp(self, x: torch.Tensor, norm: NormParams) -> torch.Tensor:
        b, t, s, d = x.shape
        h = self.ln_m(x.reshape(b, t * s, d), norm).view(b, t, s, d)
        return self.fc2(F.gelu(self.fc1(h), approximate="tanh"))

    def forward(
        self, x: torch.Tensor, norms: tuple[NormParams, ...], mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, T, S, d) -> x, and the time attention's keys/values (for a cache)."""
        h, k, v = self.time_attention(x, norms[0], mask)
        x = x + self.drop(h)
        x = x + self.drop(self.space_attention(x, norms[1]))
        x = x + self.drop(self.mlp(x, norms[2]))
        return x, k, v


class FramePrior(nn.Module):
    """See the module docstring. Codes are int64 in [0, n_codes); ``n_codes`` is BOS/none.
    State bins are int64 per variable in [0, vocab_v); -1 is none."""

    def __init__(self, config: FramePriorConfig) -> None:
        super().__init__()
        self.config = c = config
        d = c.d_model
        self.bos = c.n_codes
        # one table per place inside a token's group of codes (one table when group is 1)
        self.tok_emb = nn.Embedding(c.group * c.group * (c.n_codes + 1), d)
        if c.codebook_dim:  # filled from the tokenizer by set_codebook()
            self.register_buffer("codebook", torch.zeros(c.n_codes, c.codebook_dim))
            self.code_in = nn.Linear(c.codebook_dim, d, bias=False)
            self.code_out = nn.Linear(d, c.codebook_dim)
            self.code_bias = nn.Parameter(torch.zeros(c.n_codes))
        self.state_offsets = [sum(c.state_vocab[:i]) + i for i in range(len(c.state_vocab))]
        self.state_emb = nn.Embedding(sum(c.state_vocab) + len(c.state_vocab), d)
        self.slot_emb = nn.Parameter(torch.randn(c.slots, d) * 0.02)
        self.action_emb = nn.Embedding(c.n_actions + 1, c.action_dim) if c.n_actions else None
        self.action_in = nn.Linear(c.cond_dim, d) if c.n_actions and c.action_input else None
        self.level_emb = nn.Embedding(c.corrupt_levels, d) if c.corrupt > 0 else None
        self.mask_id = c.n_codes  # a hidden place of the current step (reveal only)
        self.reveal_emb = nn.Embedding(c.n_codes + 1, d) if c.reveal else None
        self.time_bias = nn.Parameter(torch.zeros(c.n_heads, c.steps))
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.ln_f = CondLayerNorm(d, c.cond_dim)
        g2 = c.group * c.group
        self.head = None if c.codebook_dim else nn.Linear(d, g2 * c.n_codes, bias=False)
        # copy_logit: each place's bonus for keeping its last code, read off its token
        self.copy_gate = nn.Linear(d, g2) if c.copy_logit else None
        self.state_head = nn.Linear(d, max(1, sum(c.state_vocab)))
        self.apply(self._init)
        for block in self.blocks:  # GPT-2: residual projections scaled by depth
            for proj in (block.proj_t, block.proj_s, block.fc2):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * c.n_layers))
        for norm in self._norms():  # conditional norms start as plain LayerNorms
            if norm.affine is not None:
                nn.init.zeros_(norm.affine.weight)
                nn.init.zeros_(norm.affine.bias)
        if self.reveal_emb is not None:  # starts as a no-op: a prior without it, fine-tuned
            nn.init.zeros_(self.reveal_emb.weight)
        if self.copy_gate is not None:  # starts as a fixed lean toward keeping a code
            nn.init.zeros_(self.copy_gate.weight)
            nn.init.constant_(self.copy_gate.bias, COPY_BIAS_INIT)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def _norms(self) -> list[CondLayerNorm]:
        return [n for b in self.blocks for n in (b.ln_t, b.ln_s, b.ln_m)] + [self.ln_f]

    def block_norms(self, norms: list[NormParams], i: int) -> tuple[NormParams, ...]:
        """Block ``i``'s three norm parameters out of :meth:`norm_params`' list."""
        return tuple(norms[3 * i : 3 * i + 3])

    def set_codebook(self, codebook: torch.Tensor) -> None:
        """Tie code embeddings and logits to the tokenizer's (K, D) code vectors."""
        if not self.config.codebook_dim:
            raise ValueError("this prior was built without codebook_dim")
        # Scaled to unit mean norm: the tokenizer's codes are ~8 long, which would make the
        # first logits so peaked that training starts far from a uniform guess.
        cb = codebook.detach()
        self.codebook.copy_(cb / cb.norm(dim=-1).mean().clamp(min=1e-6))

    # ---- pieces the dreamer reuses --------------------------------------------------------

    def condition(self, actions: torch.Tensor | None) -> torch.Tensor | None:
        """(B, T, s) actions (-1 = none) -> (B, T, cond_dim)."""
        if self.action_emb is None:
            return None
        if actions is None:
            raise ValueError("this prior is action-conditioned: pass the actions")
        idx = torch.where(actions < 0, self.config.n_actions, actions)
        return self.action_emb(idx).flatten(2)

    def norm_params(self, cond: torch.Tensor | None) -> list[NormParams]:
        return [norm.params(cond) for norm in self._norms()]

    def embed(
        self,
        codes: torch.Tensor,
        state: torch.Tensor,
        cond: torch.Tensor | None,
        level: torch.Tensor | None = None,
        current: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Input tokens (B, T, slots, d) of blocks whose previous step held ``codes``
        (B, T, H*W) (BOS allowed) and ``state`` (B, T, V) bins (-1 = none). ``current``
        (B, T, H*W): each block's own codes revealed so far, ``mask_id`` where hidden (reveal
        priors only; None: all hidden)."""
        c = self.config
        x = self._embed_codes(codes)
        if self.reveal_emb is not None:
            x = x + self.reveal_emb(
                torch.full_like(codes, self.mask_id) if current is None else current
            )
        elif current is not None:
            raise ValueError("this prior was trained without reveal: it draws a frame in one pass")
        if c.codebook_dim:
            vec = F.embedding(codes.clamp(max=c.n_codes - 1), self.codebook)
            x = x + self.code_in(vec) * (codes < c.n_codes)[..., None]
        if state.shape[-1]:
            offsets = torch.as_tensor(self.state_offsets, device=state.device)
            vocab = torch.as_tensor(c.state_vocab, device=state.device)
            idx = torch.where(state < 0, vocab, state) + offsets  # "none" is each var's last id
            x = torch.cat([x, self.state_emb(idx)], dim=2)
        x = x + self.slot_emb
        if self.action_in is not None:
            x = x + self.action_in(cond)[:, :, None]
        if self.level_emb is not None:
            lv = (
                torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
                if level is None
                else level
            )
            x = x + self.level_emb(lv)[:, None, None]
        return x

    def _embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T, H*W) codes -> (B, T, tokens, d): each token the sum of its group's codes,
        each embedded by the table of its place in the group."""
        c, g = self.config, self.config.group
        if g == 1:
            return self.tok_emb(codes)
        b, t = codes.shape[:2]
        grid = codes.view(b, t, c.height // g, g, c.width // g, g).permute(0, 1, 2, 4, 3, 5)
        grid = grid.reshape(b, t, c.code_tokens, g * g)  # (B, T, tokens, g*g)
        place = torch.arange(g * g, device=codes.device) * (c.n_codes + 1)
        return self.tok_emb(grid + place).sum(-2)

    def _ungroup(self, logits: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """(B, T, tokens, g*g*k) -> (B, T, H*W, k) in the codes' row-major order (k: the
        values per code, n_codes by default)."""
        c, g = self.config, self.config.group
        k = c.n_codes if k is None else k
        b, t = logits.shape[:2]
        x = logits.view(b, t, c.height // g, c.width // g, g, g, k)
        return x.permute(0, 1, 2, 4, 3, 5, 6).reshape(b, t, c.code_slots, k)

    def logits(
        self, hidden: torch.Tensor, last: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, T, slots, d) final hidden states -> code logits (B, T, H*W, K) and per-variable
        state logits (B, T, bins). ``last`` (B, T, H*W): the codes each block read, the step
        before it (BOS allowed); a ``copy_logit`` prior needs them."""
        c = self.config
        h_codes, h_state = hidden[:, :, : c.code_tokens], hidden[:, :, c.code_tokens :]
        if c.codebook_dim:
            code_logits = self.code_out(h_codes) @ self.codebook.T + self.code_bias
        else:
            code_logits = self._ungroup(self.head(h_codes))
        if self.copy_gate is not None:
            if last is None:
                raise ValueError("a copy_logit prior needs the codes of the step before")
            code_logits = self._add_copy(code_logits, self.copy_gate(h_codes), last)
        state_logits = []
        start = 0
        for v, n in enumerate(c.state_vocab):
            state_logits.append(self.state_head(h_state[:, :, v])[..., start : start + n])
            start += n
        return code_logits, state_logits

    def _add_copy(
        self, logits: torch.Tensor, gate: torch.Tensor, last: torch.Tensor
    ) -> torch.Tensor:
        """Logits (B, T, H*W, K) with each place's gate (B, T, tokens, g*g) added to the logit
        of its last code (none where the last step was BOS)."""
        c = self.config
        gate = self._ungroup(gate, 1)[..., 0] * (last < c.n_codes)  # (B, T, H*W)
        index = last.clamp(max=c.n_codes - 1)[..., None]
        return logits.scatter_add(-1, index, gate[..., None].to(logits.dtype))

    def final(self, x: torch.Tensor, norms: list[NormParams]) -> torch.Tensor:
        """x (B, T, S, d) -> final-normed hidden states of the same shape."""
        b, t, s, d = x.shape
        return self.ln_f(x.reshape(b, t * s, d), norms[-1]).view(b, t, s, d)

    # ---- training --------------------------------------------------------------------------

    def forward(
        self,
        in_codes: torch.Tensor,
        in_state: torch.Tensor,
        actions: torch.Tensor | None,
        level: torch.Tensor | None = None,
        targets: tuple[torch.Tensor, torch.Tensor] | None = None,
        valid: torch.Tensor | None = None,
        current: torch.Tensor | None = None,
    ) -> FramePriorOutput:
        """Teacher-forced pass over whole windows.

        Args:
            in_codes: (B, T, H, W) int64, the codes one step before each block (BOS allowed).
            in_state: (B, T, V) int64 state bins one step before each block (-1: none).
            actions: (B, T, s) int64, the actions into each block's frames.
            level: (B,) int64 corruption level bucket of each window (None: 0).
            targets: codes (B, T, H, W) and state bins (B, T, V) of each block, for the loss.
            valid: (B, T) bool, blocks that count in the loss (default: all).
            current: (B, T, H, W) int64, each block's own codes where revealed, ``mask_id``
                where hidden (reveal priors; None: all hidden). Only hidden codes count in
                the loss.
        """
        b, t = in_codes.shape[:2]
        cond = self.condition(actions)
        norms = self.norm_params(cond)
        cur = None if current is None else current.reshape(b, t, -1)
        x = self.embed(in_codes.reshape(b, t, -1), in_state, cond, level, cur)  # (B, T, S, d)
        mask = time_mask(t, self.time_bias)
        for i, block in enumerate(self.blocks):
            x, _, _ = block(x, self.block_norms(norms, i), mask)
        hidden = self.final(x, norms)
        code_logits, state_logits = self.logits(hidden, in_codes.reshape(b, t, -1))
        out = FramePriorOutput(code_logits, state_logits)
        if targets is not None:
            hidden = None if cur is None else cur == self.mask_id
            if self.config.state_delta:
                codes, state = targets
                targets = (codes, change_targets(state, in_state, self.config.state_vocab))
            out.loss, out.terms = self._loss(out, targets, valid, hidden)
        return out

    def _loss(
        self,
        out: FramePriorOutput,
        targets: tuple[torch.Tensor, torch.Tensor],
        valid: torch.Tensor | None,
        hidden: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        codes, state = targets
        b, t = codes.shape[:2]
        w = torch.ones(b, t, device=codes.device) if valid is None else valid.float()
        ce = F.cross_entropy(
            out.code_logits.flatten(0, 2), codes.reshape(-1), reduction="none"
        ).view(b, t, -1)
        denom = w.sum().clamp(min=1.0)
        if hidden is None:
            code_loss = (ce.mean(-1) * w).sum() / denom
        else:  # revealed codes are given: only the hidden ones are predicted
            wp = hidden.float() * w[..., None]
            code_loss = (ce * wp).sum() / wp.sum().clamp(min=1.0)
        terms = {"ce": code_loss, "bits_per_dim": code_loss / math.log(2)}
        total = code_loss
        if out.state_logits:
            state_loss = torch.zeros((), device=codes.device)
            for v, logits in enumerate(out.state_logits):
                ce_v = F.cross_entropy(
                    logits.flatten(0, 1), state[..., v].reshape(-1), reduction="none"
                )
                state_loss = state_loss + (ce_v.view(b, t) * w).sum() / denom
            terms["state_ce"] = state_loss
            total = total + self.config.state_weight * state_loss
        with torch.no_grad():
            hit = (out.code_logits.argmax(-1) == codes.reshape(b, t, -1)).float()
            if hidden is None:
                terms["code_acc"] = (hit.mean(-1) * w).sum() / denom
            else:
                terms["code_acc"] = (hit * wp).sum() / wp.sum().clamp(min=1.0)
        return total, terms
