"""Drawing codes from logits (temperature, top-k, top-p, keeping likely codes), and what one
dream step returns. Both dreamers draw through :func:`sample_logits`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from worldmodel.sampling.settings import SamplingConfig


def sample_logits(
    logits: torch.Tensor,
    config: SamplingConfig,
    generator: torch.Generator | None = None,
    previous: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sample one id per row of ``logits`` (B, K) with temperature, top-k and top-p. With
    ``previous`` (B,) ids and ``config.keep_likely``, a row keeps its previous id wherever the
    model gives it at least that probability."""
    drawn = _draw(logits, config, generator)
    if previous is None or not config.keep_likely:
        return drawn
    p_previous = logits.float().softmax(-1).gather(-1, previous[:, None])[:, 0]
    return torch.where(p_previous >= config.keep_likely, previous, drawn)


def _nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """``logits`` (B, K) with every code outside the nucleus at -inf: the most likely codes up
    to and including the first one that brings their probability over ``top_p`` (and any code
    exactly as likely as that one)."""
    probs = logits.softmax(-1)
    if logits.is_cuda:
        ranked = probs.sort(dim=-1, descending=True).values
    else:  # numpy sorts values ~40x faster than torch.sort on a CPU (0.05 vs 2 ms, 64 x 512)
        ranked = torch.from_numpy(np.sort(probs.numpy(), axis=-1)[:, ::-1].copy())
    before = ranked.cumsum(-1) - ranked  # probability of the codes ranked above each one
    last = (before <= top_p).sum(-1, keepdim=True) - 1  # the first code over p
    cutoff = ranked.gather(-1, last).to(probs.device)
    return logits.masked_fill(probs < cutoff, float("-inf"))


def _draw(
    logits: torch.Tensor, config: SamplingConfig, generator: torch.Generator | None
) -> torch.Tensor:
    if config.temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / config.temperature
    if config.top_k is not None and config.top_k < logits.shape[-1]:
        kth = torch.topk(logits, config.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if config.top_p is not None and config.top_p < 1.0:
        logits = _nucleus(logits, config.top_p)
    # Inverse-CDF sampling: a third of the cost of torch.multinomial per call on a CPU.
    cdf = logits.softmax(-1).cumsum(-1)
    u = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u).clamp_(max=cdf.shape[-1] - 1)[:, 0]


@dataclass
class DreamStep:
    frames: np.ndarray  # (B, s, H, W, 3) uint8: the s new frames of each dream
    codes: torch.Tensor  # (B, H', W') int64: their latent codes
    reward: np.ndarray  # (B,) float: predicted reward of the step into these frames
    done_prob: np.ndarray  # (B,) float: predicted probability that the episode ended here
    variables: np.ndarray | None = None  # (B, V) float32 dreamed game variables, if carried
