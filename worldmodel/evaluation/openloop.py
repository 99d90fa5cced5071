"""Open-loop prediction: from k real frames, dream the next n under the real actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from worldmodel.data import EpisodeStore
from worldmodel.evaluation.metrics import capped_psnr, ssim
from worldmodel.frames import to_model, to_uint8
from worldmodel.sampling.settings import SamplingConfig
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
    episodes: np.ndarray | None = None  # (N,) dataset episode index of each clip
    true_vars: np.ndarray | None = None  # (N, n / s, V) real game variables at each dreamed step
    pred_vars: np.ndarray | None = None  # (N, n / s, V) dreamed ones (models with game state)


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


def real_clips(store: EpisodeStore, n: int, length: int, seed: int) -> np.ndarray:
    """``n`` real clips of ``length`` frames (N, length, H, W, 3) uint8, drawn as the
    evaluation draws them (``clip_starts``)."""
    return np.stack(
        [store.read(p, f, f + length)["frames"] for p, f in clip_starts(store, n, length, seed)]
    )


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
    real, dream, ctx, acts, codes, true_v, pred_v = [], [], [], [], [], [], []
    for i in range(0, len(starts), batch):
        items = [store.read(pos, f, f + context + horizon) for pos, f in starts[i : i + batch]]
        frames = np.stack([it["frames"] for it in items])  # (B, k + n, H, W, 3)
        actions = np.stack([it["actions"] for it in items])  # into each frame; -1 only at t=0
        dreamer = model.dreamer(len(items), sampling, seed + i)
        variables = _variables(items)
        dreamer.start(
            frames[:, :context],
            actions[:, :context],
            None if variables is None else variables[:, :context],
        )
        history = [dreamer.codes.cpu().numpy()]  # enough to decode the dream again exactly
        out = []
        for t in range(context, context + horizon, s):
            out.append(dreamer.step(actions[:, t : t + s]))
            history.append(out[-1].codes[:, None].cpu().numpy())
        dream.append(np.concatenate([o.frames for o in out], axis=1))
        codes.append(np.concatenate(history, axis=1))
        if variables is not None and out[0].variables is not None:
            true_v.append(variables[:, context + s - 1 :: s])
            pred_v.append(np.stack([o.variables for o in out], 1))
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
        psnr=capped_psnr(real_a, dream_a).mean(0),
        ssim=ssim(real_a, dream_a).mean(0),
        episodes=np.array([store.entries[pos].index for pos, _ in starts]),
        true_vars=np.concatenate(true_v) if true_v else None,
        pred_vars=np.concatenate(pred_v) if pred_v else None,
    )


def _variables(items: list[dict[str, np.ndarray]]) -> np.ndarray | None:
    """(B, L, V) game variables of read windows, or None for data without them."""
    if any("variables" not in it for it in items):
        return None
    return np.stack([it["variables"] for it in items])


@dataclass
class OneStep:
    """Teacher-forced one-step prediction: per sample, PSNR of the dreamed next frame, of
    copying the last real frame, and of the tokenizer's own reconstruction (the ceiling)."""

    dream: np.ndarray  # (N,) dB
    copy: np.ndarray  # (N,) dB
    recon: np.ndarray  # (N,) dB
    actions: np.ndarray  # (N,) the real action into the predicted frame
    episodes: np.ndarray  # (N,) dataset episode index of each sample
    true_vars: np.ndarray | None  # (N, V) real game variables at the predicted frame
    pred_vars: np.ndarray | None  # (N, V) dreamed ones


@torch.no_grad()
def one_step(
    model: WorldModel,
    store: EpisodeStore,
    n: int,
    context: int,
    batch: int = 32,
    seed: int = 0,
    sampling: SamplingConfig | None = None,
) -> OneStep:
    """From ``context`` real frames and the real action, dream one step; compare with the real
    next frame (one step = ``frames_per_step`` frames; PSNR is over the step's last frame)."""
    s = model.frames_per_step
    starts = clip_starts(store, n, context + s, seed)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("d", "c", "r", "a", "e", "tv", "pv")}
    for i in range(0, len(starts), batch):
        items = [store.read(pos, f, f + context + s) for pos, f in starts[i : i + batch]]
        frames = np.stack([it["frames"] for it in items])
        actions = np.stack([it["actions"] for it in items])
        variables = _variables(items)
        dreamer = model.dreamer(len(items), sampling, seed + i)
        dreamer.start(
            frames[:, :context],
            actions[:, :context],
            None if variables is None else variables[:, :context],
        )
        out = dreamer.step(actions[:, context : context + s])
        real = frames[:, -1]
        codes = model.tokenizer.encode(to_model(frames, model.device))
        recon = to_uint8(model.tokenizer.decode_last(codes))[:, -1]
        cols["d"].append(capped_psnr(real, out.frames[:, -1]))
        cols["c"].append(capped_psnr(real, frames[:, context - 1]))
        cols["r"].append(capped_psnr(real, recon))
        cols["a"].append(actions[:, -1])
        cols["e"].append(np.array([store.entries[pos].index for pos, _ in starts[i : i + batch]]))
        if variables is not None and out.variables is not None:
            cols["tv"].append(variables[:, -1])
            cols["pv"].append(out.variables)
    cat = {k: np.concatenate(v) if v else None for k, v in cols.items()}
    return OneStep(cat["d"], cat["c"], cat["r"], cat["a"], cat["e"], cat["tv"], cat["pv"])


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
