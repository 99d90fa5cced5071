"""Open-loop prediction: from k real frames, dream the next n under the real actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from worldmodel.data import EpisodeStore
from worldmodel.frames import to_model, to_uint8
from worldmodel.metrics import psnr, ssim
from worldmodel.sampling import SamplingConfig
from worldmodel.world_model import WorldModel


@dataclass
class OpenLoop:
    real: np.ndarray  # (N, n, H, W, 3) uint8: the real frames after the context
    dream: np.ndarray  # (N, n, H, W, 3) uint8: the dreamed frames under the same actions
    context: np.ndarray  # (N, k, H, W, 3) uint8
    actions: np.ndarray  # (N, k + n) int: the actions into every frame
    codes: np.ndarray  # (N, c + n / s, H', W') int64: the last c context steps, then the dream's
    psnr: np.ndarray  # (n,) mean PSNR per horizon step
    ssim: np.ndarray  # (n,) mean SSIM per horizon step


def clip_starts(store: EpisodeStore, n: int, length: int, seed: int) -> list[tuple[int, int]]:
    """``n`` (episode position, first frame) pairs of clips of ``length`` frames, drawn evenly
    over the split's episodes with a fixed seed."""
    rng = np.random.default_rng(seed)
    usable = [pos for pos, e in enumerate(store.entries) if e.length + 1 >= length]
    if not usable:
        raise ValueError(f"no episode in {store.root} has {length} frames")
    out = []
    for i in range(n):
        pos = usable[i % len(usable)]
        out.append((pos, int(rng.integers(0, store.entries[pos].length + 2 - length))))
    return out


@torch.no_grad()
def open_loop(
    model: WorldModel,
    store: EpisodeStore,
    n_clips: int,
    context: int,
    horizon: int,
    batch: int = 16,
    seed: int = 0,
    sampling: SamplingConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> OpenLoop:
    """Dream ``horizon`` frames after ``context`` real ones for ``n_clips`` clips of the split.

    Both lengths are in frames and must be multiples of the model's frames per step.
    """
    s = model.frames_per_step
    if context % s or horizon % s or context < s:
        raise ValueError(f"context and horizon must be positive multiples of {s} frames")
    starts = clip_starts(store, n_clips, context + horizon, seed)
    real, dream, ctx, acts, codes = [], [], [], [], []
    for i in range(0, len(starts), batch):
        items = [store.read(pos, f, f + context + horizon) for pos, f in starts[i : i + batch]]
        frames = np.stack([it["frames"] for it in items])  # (B, k + n, H, W, 3)
        actions = np.stack([it["actions"] for it in items])  # into each frame; -1 only at t=0
        dreamer = model.dreamer(len(items), sampling, seed + i)
        dreamer.start(frames[:, :context], actions[:, :context])
        history = [dreamer.codes.cpu().numpy()]  # enough to decode the dream again exactly
        out = []
        for t in range(context, context + horizon, s):
            step = dreamer.step(actions[:, t : t + s])
            out.append(step.frames)
            history.append(step.codes[:, None].cpu().numpy())
        dream.append(np.concatenate(out, axis=1))
        codes.append(np.concatenate(history, axis=1))
        real.append(frames[:, context:])
        ctx.append(frames[:, :context])
        acts.append(actions)
        if progress is not None:
            progress(min(i + batch, len(starts)), len(starts))
    real_a, dream_a = np.concatenate(real), np.concatenate(dream)
    return OpenLoop(
        real=real_a,
        dream=dream_a,
        context=np.concatenate(ctx),
        actions=np.concatenate(acts),
        codes=np.concatenate(codes),
        psnr=psnr(real_a, dream_a).mean(0),
        ssim=ssim(real_a, dream_a).mean(0),
    )


@torch.no_grad()
def reconstruct(
    model: WorldModel,
    store: EpisodeStore,
    n_clips: int,
    seed: int = 0,
    batch: int = 16,
    length: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Real clips (default: the tokenizer's training length) and their reconstructions."""
    length = length or model.tokenizer.config.clip_len
    real, recon = [], []
    starts = clip_starts(store, n_clips, length, seed)
    for i in range(0, len(starts), batch):
        frames = np.stack(
            [store.read(p, f, f + length)["frames"] for p, f in starts[i : i + batch]]
        )
        codes = model.tokenizer.encode(to_model(frames, model.device))
        real.append(frames)
        recon.append(to_uint8(model.tokenizer.decode(codes)))
    return np.concatenate(real), np.concatenate(recon)
