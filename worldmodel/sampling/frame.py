"""Dreaming with the frame-parallel prior: one forward pass per frame, a rolling window.

:class:`FrameDreamer` has the interface of :class:`worldmodel.sampling.raster.Dreamer` (``start``,
``step``, ``context_frames``, ``timing``) and adds the game state: ``start`` takes the real
frames' game variables, and every step returns the dreamed variables, the reward the
scenario's rules give for them and whether the player died.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from worldmodel.frames import to_model, to_uint8
from worldmodel.game_state import GameState
from worldmodel.prior.frame import Block, FramePrior, _heads, time_mask
from worldmodel.prior.ring_cache import RingKVCache
from worldmodel.sampling.draw import DreamStep, sample_logits
from worldmodel.sampling.settings import ONE_PASS_ONLY, SamplingConfig
from worldmodel.sampling.state import draw_state
from worldmodel.tokenizer.stream import DecodeStream
from worldmodel.tokenizer.vqvae import VQVAE

# Passes per frame of a prior trained with ``reveal`` unless the sampling says otherwise.
REVEAL_PASSES = 4


def default_passes(prior: FramePrior) -> int:
    """Passes per dreamed frame when the sampling does not say: more only for a prior trained
    to draw in passes (``reveal``)."""
    return REVEAL_PASSES if prior.config.reveal else 1


class FrameDreamer:
    """B synchronised dreams over a causal tokenizer and a :class:`FramePrior`."""

    def __init__(
        self,
        tokenizer: VQVAE,
        prior: FramePrior,
        game: GameState,
        batch: int = 1,
        sampling: SamplingConfig | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if not tokenizer.config.causal:
            raise ValueError("dreaming streams frames: it needs a causal tokenizer")
        c = prior.config
        if len(c.state_vocab) != game.size:
            raise ValueError(
                f"the prior carries {len(c.state_vocab)} variables, the game {game.size}"
            )
        self.tokenizer, self.prior, self.game = tokenizer.eval(), prior.eval(), game
        self.sampling = sampling or SamplingConfig()
        if self.sampling.passes is None:
            self.sampling = dataclasses.replace(self.sampling, passes=default_passes(prior))
        if self.sampling.passes < 1:
            raise ValueError(f"passes must be at least 1, got {self.sampling.passes}")
        if self.sampling.passes > 1 and not c.reveal:
            raise ValueError(ONE_PASS_ONLY)
        self.batch, self.s, self.window = batch, c.actions_per_step, c.steps
        self.device = next(prior.parameters()).device
        self.generator = generator
        # one step more than the window: the oldest block reads the step before it
        self.history = max(c.steps + 1, tokenizer.stream_window)
        self.cache = RingKVCache(
            c.n_layers, batch, c.n_heads, c.steps, c.slots, c.d_model // c.n_heads, self.device
        )
        self.codes = torch.zeros(batch, 0, c.height, c.width, dtype=torch.long, device=self.device)
        self.state = torch.zeros(batch, game.size, dtype=torch.long, device=self.device)
        self.started = False
        self.timing: dict[str, float] = {}
        # Each new step decodes through a DecodeStream (its own state per row, like the prior's
        # KV cache) rather than re-running the decoder over the stream window: the same frames
        # (tests hold them equal), ~3x less decode time at batch 1. False: decode_last.
        self.streaming = True
        self.stream = DecodeStream(tokenizer, batch)

    @property
    def context_frames(self) -> int:
        """Frames a row restart must bring: as many as the other rows have in their history."""
        return self.codes.shape[1] * self.s

    @property
    def variables(self) -> np.ndarray:
        """(B, V) float32: each dream's current game variables."""
        return self.game.dequantize(self.state.cpu().numpy())

    def _blocks(
        self, codes: torch.Tensor, acts: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inputs of the blocks for steps 0..m-1 (codes (b, m, H', W'), actions (b, m, s),
        state (b, m, V)): block j reads step j-1 and predicts step j. Step 0 has no earlier
        step in view, so it is a block only at an episode start (its action is -1), with BOS
        input; the third output (b,) says which rows are at one."""
        bos_codes = torch.full_like(codes[:, :1], self.prior.bos)
        none_state = torch.full_like(state[:, :1], -1)
        in_codes = torch.cat([bos_codes, codes[:, :-1]], 1)
        in_state = torch.cat([none_state, state[:, :-1]], 1)
        return in_codes, in_state, (acts[:, 0] < 0).all(-1)

    @torch.inference_mode()
    def start(
        self,
        frames: np.ndarray,
        actions: np.ndarray,
        variables: np.ndarray | None = None,
        rows: list[int] | None = None,
    ) -> None:
        """(Re)start dreams from real frames.

        Args:
            frames: (b, n, H, W, 3) uint8 real frames, n a positive multiple of actions_per_step.
            actions: (b, n) int, the action that led into each frame (-1: none/unknown).
            variables: (b, n, V) the game variables at each frame (needed if the model carries
                state: it starts from the last frame's).
            rows: restart only these rows; they must bring :attr:`context_frames` frames.
        """
        n = frames.shape[1]
        if n == 0 or n % self.s:
            raise ValueError(f"need a positive multiple of {self.s} context frames, got {n}")
        codes = self.tokenizer.encode(to_model(frames, self.device))
        self._start(codes, actions, variables, rows, frames[:, -1])

    def _set_shown(self, frames: np.ndarray, rows: list[int] | None) -> None:
        """Remember each dream's last shown frame (for ``copy_unchanged``)."""
        if rows is None:
            self.shown = np.ascontiguousarray(frames)
        else:
            self.shown[rows] = frames

    @torch.inference_mode()
    def start_codes(
        self,
        codes: torch.Tensor | np.ndarray,
        actions: np.ndarray,
        variables: np.ndarray | None = None,
        rows: list[int] | None = None,
    ) -> None:
        """:meth:`start` from the real frames' codes (b, m, H', W') instead of the frames
        (``actions`` and ``variables`` as there, for the m * actions_per_step frames)."""
        self._start(codes, actions, variables, rows, None)

    def _start(
        self,
        codes: torch.Tensor | np.ndarray,
        actions: np.ndarray,
        variables: np.ndarray | None,
        rows: list[int] | None,
        shown: np.ndarray | None,
    ) -> None:
        """Start from codes; ``shown`` (b, H, W, 3) uint8: the last real frame, or None (the
        codes' reconstruction is shown instead, where a step needs the last frame shown)."""
        codes = torch.as_tensor(codes, device=self.device).long()
        n = np.asarray(actions).shape[1]
        if n != codes.shape[1] * self.s:
            raise ValueError(f"{n} actions do not match {codes.shape[1]} latent steps of codes")
        codes = codes[:, -self.history :]
        if rows is not None and codes.shape[1] * self.s != self.context_frames:
            raise ValueError(
                f"restarted rows need {self.context_frames} context frames, "
                f"got {codes.shape[1] * self.s}"
            )
        if self.game.size and variables is None:
            raise ValueError(
                "this world model carries the game state: start it from frames with their "
                f"game variables ({', '.join(self.game.names)})"
            )
        steps = n // self.s
        acts = torch.as_tensor(np.asarray(actions), device=self.device).long()
        acts = acts.view(-1, steps, self.s)[:, -codes.shape[1] :]
        if self.game.size:
            per_step = np.asarray(variables)[:, self.s - 1 :: self.s][:, -codes.shape[1] :]
            state = torch.as_tensor(self.game.quantize(per_step), device=self.device)
        else:
            state = torch.zeros(
                codes.shape[0], codes.shape[1], 0, dtype=torch.long, device=self.device
            )
        in_codes, in_state, first = self._blocks(codes, acts, state)
        current = codes if self.prior.config.reveal else None  # real steps: all revealed
        idx = torch.arange(self.batch, device=self.device)
        if rows is not None:
            idx = torch.as_tensor(rows, device=self.device)
        if rows is None:
            self.codes = codes
            self.state = state[:, -1].clone()
            self.stream.prime(codes)
        else:
            if not self.started:
                raise RuntimeError("start all rows before restarting some")
            self.codes[idx] = codes
            self.state[idx] = state[:, -1]
            self.stream.prime(codes, idx.cpu())
        # Rows at an episode start have one more block (BOS -> step 0) than the others.
        for at_start in (True, False):
            sel = torch.nonzero(first == at_start)[:, 0]
            k = min(self.window, codes.shape[1] - (0 if at_start else 1))
            if len(sel) == 0 or k <= 0:
                continue
            cur = None if current is None else current[sel, -k:]
            keys, values = self._prefill(
                in_codes[sel, -k:], in_state[sel, -k:], acts[sel, -k:], cur
            )
            self.cache.fill(idx[sel], keys, values)
        self.started = True
        if shown is not None:
            self._set_shown(shown, rows)
        elif self.sampling.copy_unchanged or self.tokenizer.context is not None:
            self._set_shown(self.decode_current(rows), rows)

    def _copy_unchanged(
        self, frames: np.ndarray, previous: torch.Tensor, new: torch.Tensor
    ) -> np.ndarray:
        """Keep the last shown pixels wherever a code and its 8 neighbours did not change: the
        decoder would redraw them slightly differently each step (its reconstruction is not
        exact), while the game shows them unchanged. frames (B, s, H, W, 3) uint8."""
        changed = (new != previous).float()[:, None]  # (B, 1, H', W')
        near = F.max_pool2d(changed, 3, stride=1, padding=1)[:, 0] > 0
        f = frames.shape[2] // near.shape[1]
        keep = (~near).repeat_interleave(f, 1).repeat_interleave(f, 2).cpu().numpy()
        out = np.where(keep[:, None, :, :, None], self.shown[:, None], frames)
        self.shown = np.ascontiguousarray(out[:, -1])
        return out

    def _paint(
        self, codes: torch.Tensor, before: torch.Tensor, base: torch.Tensor | None
    ) -> np.ndarray:
        """The context decoder's frames (B, 1, H, W, 3) uint8 of the new step's codes
        (B, H', W'), over each dream's last shown frame (the step before had ``before``);
        ``base``: the plain decoder's frames (B, 3, 1, H, W) (None: decoded here)."""
        tok = self.tokenizer
        if base is None:  # the stream's frames, decoded over the stream window instead
            base = tok.decode_latents(tok.embed_codes(self.codes[:, -tok.stream_window :]), keep=1)
        shown = to_model(self.shown[:, None], self.device)[:, :, 0]  # (B, 3, H, W)
        has = torch.ones(self.batch, dtype=torch.bool, device=self.device)
        frame = tok.paint(codes, before, shown, has, base[:, :, 0])
        return to_uint8(frame[:, :, None])

    @torch.inference_mode()
    def decode_current(self, rows: list[int] | None = None) -> np.ndarray:
        """(b, H, W, 3) uint8: the last frame of each dream's (or ``rows``') current step."""
        codes = self.codes if rows is None else self.codes[torch.as_tensor(rows)]
        return to_uint8(self.tokenizer.decode_last(codes))[:, -1]

    def _prefill(
        self,
        in_codes: torch.Tensor,
        in_state: torch.Tensor,
        acts: torch.Tensor,
        current: torch.Tensor | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every layer's time-attention keys/values (b * slots, heads, k, head_dim) of k
        context blocks (``current``: their own codes, for a reveal prior)."""
        p = self.prior
        b, k = in_codes.shape[:2]
        cond = p.condition(acts)
        norms = p.norm_params(cond)
        cur = None if current is None else current.reshape(b, k, -1)
        x = p.embed(in_codes.reshape(b, k, -1), in_state, cond, current=cur)
        mask = time_mask(k, p.time_bias)
        keys, values = [], []
        for i, block in enumerate(p.blocks):
            x, kk, vv = block(x, p.block_norms(norms, i), mask)
            keys.append(kk)
            values.append(vv)
        return keys, values

    @torch.inference_mode()
    def step(self, actions: np.ndarray | torch.Tensor) -> DreamStep:
        """Dream one latent step for every row given its actions (B, s) (or (B,) if s = 1)."""
        if not self.started:
            raise RuntimeError("call start() with real context frames first")
        c = self.prior.config
        acts = torch.as_tensor(actions, dtype=torch.long, device=self.device).view(
            self.batch, 1, self.s
        )
        if c.n_actions and (acts.min() < 0 or acts.max() >= c.n_actions):
            raise ValueError(
                f"actions must be in [0, {c.n_actions}), got {acts.flatten().tolist()}"
            )
        t0 = time.perf_counter()
        new, state_logits = self._draw(acts)
        step_codes = new.view(self.batch, 1, c.height, c.width)
        before = self.variables
        for v, logits in enumerate(state_logits):
            self.state[:, v] = self._sample_state(logits[:, 0], v)
        previous = self.codes[:, -1]
        self.codes = torch.cat([self.codes, step_codes], 1)[:, -self.history :]
        t1 = time.perf_counter()
        if self.tokenizer.context is not None:  # the plain frame, refined over the last shown
            base = self.stream.step(step_codes) if self.streaming else None
            frames = self._paint(step_codes[:, 0], previous, base)  # (B, 1, H, W, 3)
        elif self.streaming:
            frames = to_uint8(self.stream.step(step_codes))  # (B, s, H, W, 3)
        else:
            frames = to_uint8(self.tokenizer.decode_last(self.codes))
        if self.sampling.copy_unchanged:
            frames = self._copy_unchanged(frames, previous, step_codes[:, 0])
        else:
            self.shown = np.ascontiguousarray(frames[:, -1])
        self.timing = {"prior": t1 - t0, "decode": time.perf_counter() - t1}
        variables = self.variables
        dead = self.game.dead(variables)
        return DreamStep(
            frames=frames,
            codes=step_codes[:, 0],
            reward=self.game.reward(variables, before).astype(np.float32),
            done_prob=dead.astype(np.float32),
            variables=variables,
        )

    def _draw(self, acts: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The new step's codes (B, H'*W') for actions (B, 1, s), and its state logits.

        With ``passes`` > 1 (a reveal prior), pass k draws every hidden code and commits the
        most confident ones (the drawn code's probability), so that after it a share
        1 - cos(pi/2 * k / passes) of the places is revealed; the last pass commits the rest.
        Each pass rewrites the new block's keys in the ring, so the window keeps the last."""
        p, c = self.prior, self.prior.config
        cond = p.condition(acts)
        norms = p.norm_params(cond)
        last = self.codes[:, -1].reshape(self.batch, 1, -1)
        passes, places = self.sampling.passes, c.code_slots
        current = (
            torch.full_like(last[:, 0], p.mask_id) if c.reveal else None
        )  # (B, H'*W'), mask_id where hidden
        self.cache.begin_step()
        mask = self.cache.mask(p.time_bias)
        revealed = 0  # places committed so far, the same in every row
        for k in range(1, passes + 1):
            cur = None if current is None else current[:, None]
            x = p.embed(last, self.state[:, None], cond, current=cur)[:, 0]  # (B, slots, d)
            for i, block in enumerate(p.blocks):
                x = _cached_block(block, x, p.block_norms(norms, i), mask, self.cache, i)
            code_logits, state_logits = p.logits(p.final(x[:, None], norms), last)
            logits = code_logits[:, 0]  # (B, H'*W', K)
            drawn = sample_logits(
                logits.reshape(-1, c.n_codes), self.sampling, self.generator, last.reshape(-1)
            ).view(self.batch, places)
            if current is None:
                new = drawn
                break
            hidden = current == p.mask_id
            if k == passes:
                new = torch.where(hidden, drawn, current)
                break
            sure = logits.float().log_softmax(-1).gather(-1, drawn[..., None])[..., 0]
            sure = sure.masked_fill(~hidden, float("-inf"))
            shown = places - math.ceil(places * math.cos(math.pi / 2 * k / passes))
            if shown > revealed:
                pick = sure.topk(shown - revealed, dim=-1).indices
                current.scatter_(1, pick, drawn.gather(1, pick))
                revealed = shown
        self.cache.end_step()
        return new, state_logits

    def _sample_state(self, logits: torch.Tensor, v: int) -> torch.Tensor:
        """Variable ``v``'s next bin (B,) from its logits (B, classes), with the state
        temperature and ``state_change_odds`` (:func:`worldmodel.sampling.state.draw_state`).

        The odds are health's alone (hits, pickups, deaths) where the game has HEALTH: raising
        them for ammo or kills would spend ammo nobody fired and count kills nobody made."""
        health = self.game.health_index
        odds = self.sampling.state_change_odds if health is None or v == health else 1.0
        return draw_state(
            logits,
            self.state[:, v],
            self.sampling,
            self.generator,
            self.prior.config.state_delta,
            odds,
        )


def _cached_block(
    block: Block, x: torch.Tensor, norms: tuple, mask: torch.Tensor, cache: RingKVCache, layer: int
) -> torch.Tensor:
    """One layer for the new block's tokens x (B, S, d), its time attention over the ring."""
    b, s, d = x.shape
    h = block.ln_t(x, norms[0]).reshape(b * s, 1, d)
    q, k, v = _heads(h, block.qkv_t, block.n_heads)  # (B*S, heads, 1, hd)
    cache.write(layer, k, v)
    y = F.scaled_dot_product_attention(q, cache.keys[layer], cache.values[layer], attn_mask=mask)
    x = x + block.proj_t(y.reshape(b, s, d))
    x4 = x[:, None]  # (B, 1, S, d): one block
    x = x + block.space_attention(x4, norms[1])[:, 0]
    return x + block.mlp(x[:, None], norms[2])[:, 0]
