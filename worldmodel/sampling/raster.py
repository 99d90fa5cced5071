"""Dreaming with the paper's raster prior, code by code.

:class:`Dreamer` holds B dreams that step together. ``start`` encodes real context frames as a
code prefix; each ``step(actions)`` samples one latent step of codes token by token with a KV
cache, reads the reward and termination heads, and decodes the new frames with the causal
tokenizer. When the prior's window is full the oldest ``slide`` steps are dropped and the rest
re-encoded into a fresh cache, so time and memory per step stay bounded for any rollout
length, and the context never falls below ``steps - slide`` latent steps (nothing like a
periodic flush of the whole context).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from worldmodel.frames import to_model, to_uint8
from worldmodel.prior.kv_cache import KVCache
from worldmodel.prior.raster import Prior, symexp
from worldmodel.sampling.draw import DreamStep, sample_logits
from worldmodel.sampling.settings import ONE_PASS_ONLY, SamplingConfig
from worldmodel.tokenizer.vqvae import VQVAE


class Dreamer:
    """B synchronised dreams over a causal tokenizer and a prior (see module docstring)."""

    def __init__(
        self,
        tokenizer: VQVAE,
        prior: Prior,
        batch: int = 1,
        sampling: SamplingConfig | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if not tokenizer.config.causal:
            raise ValueError("dreaming streams frames: it needs a causal tokenizer")
        self.tokenizer, self.prior = tokenizer.eval(), prior.eval()
        self.sampling = sampling or SamplingConfig()
        if self.sampling.passes not in (None, 1):
            raise ValueError(ONE_PASS_ONLY)
        self.sampling = dataclasses.replace(self.sampling, passes=1)
        c = prior.config
        self.batch, self.window, self.hw, self.s = (
            batch,
            c.steps,
            c.tokens_per_step,
            c.actions_per_step,
        )
        self.slide = self.sampling.slide or max(1, c.steps // 2)
        if not 1 <= self.slide < c.steps:
            raise ValueError(f"slide must be in [1, {c.steps - 1}], got {self.slide}")
        self.device = next(prior.parameters()).device
        self.generator = generator
        self.history = max(c.steps, tokenizer.stream_window)
        self.cache = KVCache(
            c.n_layers, batch, c.n_heads, c.block_size, c.d_model // c.n_heads, self.device
        )
        with torch.no_grad():
            self.positions = prior.position_table().detach()
        self.codes = torch.zeros(batch, 0, c.height, c.width, dtype=torch.long, device=self.device)
        self.actions = torch.zeros(batch, 0, self.s, dtype=torch.long, device=self.device)
        self.in_window = 0  # latent steps currently in the prior's cache
        self.frame_vec: torch.Tensor | None = None
        self.timing: dict[str, float] = {}  # seconds spent in the last step, by part

    @property
    def context_frames(self) -> int:
        """Frames a row restart must bring: as many as the other rows have in their history."""
        return self.codes.shape[1] * self.s

    @torch.inference_mode()
    def start(
        self,
        frames: np.ndarray,
        actions: np.ndarray,
        variables: np.ndarray | None = None,
        rows: list[int] | None = None,
    ) -> None:
        """(Re)start dreams from real frames (``variables`` is ignored: this prior carries no
        game state).

        Args:
            frames: (b, n, H, W, 3) uint8 real frames, n a positive multiple of
                actions_per_step. The prior's context is the last ``steps - 1`` latent steps of
                them at most; the tokenizer may use more (up to its stream window).
            actions: (b, n) int, the action that led into each frame (-1: none/unknown).
            rows: restart only these rows (b = len(rows)); they must bring
                :attr:`context_frames` frames, so that every row's history is its own.
        """
        n = frames.shape[1]
        if n == 0 or n % self.s:
            raise ValueError(f"need a positive multiple of {self.s} context frames, got {n}")
        if rows is not None and n != self.context_frames:
            raise ValueError(f"restarted rows need {self.context_frames} context frames, got {n}")
        steps = n // self.s
        x = to_model(frames, self.device)
        codes = self.tokenizer.encode(x)[:, -self.history :]  # (b, <= history, H', W')
        acts = torch.as_tensor(actions, device=self.device).view(-1, steps, self.s)
        acts = acts[:, -self.history :]
        frame_vec = None
        if self.prior.frame_encoder is not None:
            first = x[:, :, : self.prior.config.frame_cond_frames].transpose(1, 2)
            frame_vec = self.prior.frame_vector(first)  # (b, frame_cond_dim)
        if rows is None:
            self.codes, self.actions, self.frame_vec = codes, acts, frame_vec
            self.in_window = min(codes.shape[1], self.window - 1)
            self.cache.reset()
            k = self.in_window
            self._prefill(self.cache, codes[:, -k:], acts[:, -k:], frame_vec)
            return
        if self.in_window == 0:
            raise RuntimeError("start all rows before restarting some")
        idx = torch.as_tensor(rows, device=self.device)
        self.codes[idx], self.actions[idx] = codes, acts
        if frame_vec is not None:
            self.frame_vec[idx] = frame_vec
        part = KVCache(batch=len(rows), **self._cache_shape())
        k = self.in_window
        self._prefill(part, codes[:, -k:], acts[:, -k:], frame_vec)
        self.cache.keys[:, idx, :, : part.length] = part.keys[:, :, :, : part.length]
        self.cache.values[:, idx, :, : part.length] = part.values[:, :, :, : part.length]

    def _cache_shape(self) -> dict:
        c = self.prior.config
        return {
            "n_layers": c.n_layers,
            "n_heads": c.n_heads,
            "capacity": c.block_size,
            "head_dim": c.d_model // c.n_heads,
            "device": self.device,
        }

    def _prefill(self, cache: KVCache, codes: torch.Tensor, acts: torch.Tensor, frame_vec) -> None:
        """Feed [BOS, all codes but the last] of ``codes`` (b, m, H', W') into ``cache``."""
        b = codes.shape[0]
        flat = codes.reshape(b, -1)
        bos = torch.full((b, 1), self.prior.bos, dtype=torch.long, device=self.device)
        inputs = torch.cat([bos, flat[:, :-1]], 1)
        norms = self.prior.norm_params(self.prior.condition(acts))
        self.prior.run(inputs, 0, norms, frame_vec, cache, self.positions)

    def _slide(self) -> None:
        keep = self.window - self.slide
        self.cache.reset()
        self._prefill(self.cache, self.codes[:, -keep:], self.actions[:, -keep:], self.frame_vec)
        self.in_window = keep

    @torch.inference_mode()
    def step(self, actions: np.ndarray | torch.Tensor) -> DreamStep:
        """Dream one latent step for every row given its actions (B, s) (or (B,) if s = 1)."""
        if self.in_window == 0:
            raise RuntimeError("call start() with real context frames first")
        acts = torch.as_tensor(actions, dtype=torch.long, device=self.device).view(
            self.batch, 1, self.s
        )
        n_act = self.prior.config.n_actions
        if n_act and (acts.min() < 0 or acts.max() >= n_act):
            raise ValueError(f"actions must be in [0, {n_act}), got {acts.flatten().tolist()}")
        t0 = time.perf_counter()
        if self.in_window == self.window:
            self._slide()
        norms = self.prior.norm_params(self.prior.condition(acts))
        pos = self.in_window * self.hw
        token = self.codes[:, -1].reshape(self.batch, -1)[:, -1:]  # last code not yet fed
        new = torch.empty(self.batch, self.hw, dtype=torch.long, device=self.device)
        last = self.codes[:, -1].reshape(self.batch, -1)  # the same places one step before
        for i in range(self.hw):
            hidden = self.prior.run(
                token, pos + i, norms, self.frame_vec, self.cache, self.positions
            )
            logits = self.prior.head(hidden[:, -1])
            token = sample_logits(logits, self.sampling, self.generator, last[:, i])[:, None]
            new[:, i] = token[:, 0]
        reward, done_logit = self.prior.heads(hidden[:, -1])
        step_codes = new.view(self.batch, 1, *self.codes.shape[2:])
        self.codes = torch.cat([self.codes, step_codes], 1)[:, -self.history :]
        self.actions = torch.cat([self.actions, acts], 1)[:, -self.history :]
        self.in_window += 1
        t1 = time.perf_counter()
        frames = self.tokenizer.decode_last(self.codes)  # (B, 3, s, H, W)
        self.timing = {"prior": t1 - t0, "decode": time.perf_counter() - t1}
        return DreamStep(
            frames=to_uint8(frames),
            codes=step_codes[:, 0],
            reward=symexp(reward).float().cpu().numpy(),
            done_prob=torch.sigmoid(done_logit).float().cpu().numpy(),
        )


def dream(
    tokenizer: VQVAE,
    prior: Prior,
    frames: np.ndarray,
    actions: np.ndarray,
    action_stream: Iterable[np.ndarray],
    sampling: SamplingConfig | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[DreamStep]:
    """Dream from real context ``frames`` (B, n, H, W, 3) uint8 with ``actions`` (B, n) into
    them, then follow ``action_stream`` (each item (B, s)), one latent step per item."""
    dreamer = Dreamer(tokenizer, prior, frames.shape[0], sampling, generator)
    dreamer.start(frames, actions)
    for step_actions in action_stream:
        yield dreamer.step(step_actions)
