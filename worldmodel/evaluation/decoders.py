"""Several decoders of one tokenizer's codes, scored on the same real clips in one run.

Decoders that share an encoder and codebook reconstruct the same codes, so their PSNR, SSIM
and reconstruction FVD differ only by the decoder. The real clips' I3D features are computed
once, and a second, disjoint draw of real clips gives the real-vs-real FVD floor beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from worldmodel.evaluation.metrics import detail, psnr, ssim
from worldmodel.frames import to_model, to_uint8
from worldmodel.tokenizer.vqvae import VQVAE


@dataclass
class DecoderScores:
    psnr: float
    ssim: float
    detail_ratio: (
        float  # fine texture relative to the real clips' (worldmodel.evaluation.metrics.detail)
    )
    fvd: float | None  # reconstructions vs real clips (None without I3D)


@torch.no_grad()
def reconstructions(
    encoder: VQVAE, decoders: dict[str, VQVAE], clips: np.ndarray, batch: int = 16
) -> dict[str, np.ndarray]:
    """Each decoder's reconstruction of ``clips`` from the codes ``encoder`` gives them."""
    out: dict[str, list[np.ndarray]] = {name: [] for name in decoders}
    device = next(encoder.parameters()).device
    for i in range(0, len(clips), batch):
        codes = encoder.encode(to_model(clips[i : i + batch], device))
        for name, model in decoders.items():
            out[name].append(to_uint8(model.decode(codes)))
    return {name: np.concatenate(v) for name, v in out.items()}


@torch.no_grad()
def redecode(
    decoders: dict[str, VQVAE],
    codes: np.ndarray,
    steps: int,
    batch: int = 16,
    previous: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Each decoder's frames (N, steps * s, H, W, 3) of the last ``steps`` latent steps of
    ``codes`` (N, T', H', W'), e.g. a dream's codes after its context. A context decoder paints
    them over ``previous`` (N, H, W, 3) uint8, the frame shown before them (the dream's last
    real context frame), as the dream does; without it, from the codes alone."""
    out: dict[str, list[np.ndarray]] = {name: [] for name in decoders}
    for name, model in decoders.items():
        device = next(model.parameters()).device
        s = model.config.time_down
        for i in range(0, len(codes), batch):
            c = torch.as_tensor(codes[i : i + batch], device=device)
            if model.context is not None and previous is not None:
                last = to_model(previous[i : i + batch, None], device)[:, :, 0]
                base = model.decode_latents(model.embed_codes(c))[:, :, -steps:]
                frames = model.paint_clip(c[:, -steps:], last, c[:, -steps - 1], base)
            else:
                frames = model.decode(c)[:, :, -steps * s :]
            out[name].append(to_uint8(frames))
    return {name: np.concatenate(v) for name, v in out.items()}


def score_decoders(
    real: np.ndarray,
    recons: dict[str, np.ndarray],
    features=None,
    real_features: np.ndarray | None = None,
) -> dict[str, DecoderScores]:
    """PSNR, SSIM and (given the I3D ``features`` callable) FVD of each reconstruction."""
    from worldmodel.fvd import feature_stats, frechet_distance

    scores = {}
    real_stats = feature_stats(real_features) if real_features is not None else None
    for name, recon in recons.items():
        value = None
        if features is not None and real_stats is not None:
            value = frechet_distance(*real_stats, *feature_stats(features(recon)))
        scores[name] = DecoderScores(
            float(psnr(real, recon).mean()),
            float(ssim(real, recon).mean()),
            detail(recon) / detail(real),
            value,
        )
    return scores


def stills(real: np.ndarray, recons: list[np.ndarray], picks: list[tuple[int, int]], scale: int):
    """One image: a row per (clip, frame) pick, columns real then each reconstruction,
    enlarged ``scale``x with nearest neighbour (uint8 (rows*H*scale, cols*W*scale, 3))."""
    gap = 2 * scale
    h, w = real.shape[2] * scale, real.shape[3] * scale
    cols = [real, *recons]
    out = np.full(
        (len(picks) * (h + gap) - gap, len(cols) * (w + gap) - gap, 3), 255, dtype=np.uint8
    )
    for r, (clip, frame) in enumerate(picks):
        for c, video in enumerate(cols):
            tile = video[clip, frame].repeat(scale, 0).repeat(scale, 1)
            out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    return out
