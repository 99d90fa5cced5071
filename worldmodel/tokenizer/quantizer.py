"""Vector quantisation with an EMA codebook (VQ-VAE, van den Oord et al. 2017; Razavi 2019).

The codebook is not trained by gradients: each training step moves every code towards the mean
of the encoder outputs assigned to it (exponential moving averages of counts and sums). Codes
start as copies of encoder outputs, and codes that fall out of use are restarted from current
encoder outputs (Dhariwal et al. 2020), which keeps the whole codebook alive.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


@dataclass
class QuantizerOutput:
    quantized: torch.Tensor  # (N, D) straight-through: forward = code vectors, grad -> inputs
    codes: torch.Tensor  # (N,) int64
    commitment: torch.Tensor  # scalar: mean squared distance of inputs to their codes
    perplexity: torch.Tensor  # scalar: exp(entropy of this batch's code usage)
    dead: int  # codes whose EMA usage was below the restart threshold (before restarting)


def nearest_codes(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest code (L2) for each row of ``z`` (N, D); codebook is (K, D)."""
    d = z.pow(2).sum(1, keepdim=True) - 2 * z @ codebook.t() + codebook.pow(2).sum(1)[None]
    return d.argmin(1)


def ema_update(
    cluster_size: torch.Tensor,
    embed_sum: torch.Tensor,
    counts: torch.Tensor,
    sums: torch.Tensor,
    decay: float,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Update EMA statistics in place and return the new codebook (K, D).

    ``counts`` (K,) and ``sums`` (K, D) are this step's assignments. Cluster sizes are
    Laplace-smoothed so that a code with no assignments does not divide by zero.
    """
    cluster_size.mul_(decay).add_(counts, alpha=1 - decay)
    embed_sum.mul_(decay).add_(sums, alpha=1 - decay)
    n = cluster_size.sum()
    smoothed = (cluster_size + eps) / (n + cluster_size.numel() * eps) * n
    return embed_sum / smoothed[:, None]


def sample_rows(z: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``k`` rows of ``z`` (N, D) drawn at random (with replacement only if N < k)."""
    n = z.shape[0]
    if n >= k:
        idx = torch.randperm(n, generator=generator, device="cpu")[:k]
    else:
        idx = torch.randint(0, n, (k,), generator=generator, device="cpu")
    return z[idx.to(z.device)]


def _broadcast(t: torch.Tensor) -> None:
    """Make every DDP rank agree on ``t`` (rank 0's copy) after a random choice."""
    if dist.is_available() and dist.is_initialized():
        dist.broadcast(t, 0)


def _all_reduce(t: torch.Tensor) -> None:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)


class EMAQuantizer(nn.Module):
    """K codes of dimension D, updated by EMA during training.

    Args:
        n_codes: K.
        code_dim: D.
        decay: EMA decay of counts and sums.
        beta: weight of the commitment loss ``beta * ||z - sg[e]||^2``.
        restart_threshold: a code whose EMA usage (expected assignments per step) falls below
            this is restarted from a random current encoder output.
    """

    def __init__(
        self,
        n_codes: int,
        code_dim: int,
        decay: float = 0.99,
        beta: float = 0.25,
        restart_threshold: float = 1.0,
    ) -> None:
        super().__init__()
        self.n_codes, self.code_dim = n_codes, code_dim
        self.decay, self.beta, self.restart_threshold = decay, beta, restart_threshold
        self.register_buffer("codebook", torch.randn(n_codes, code_dim))
        self.register_buffer("cluster_size", torch.zeros(n_codes))
        self.register_buffer("embed_sum", self.codebook.clone())
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _init_codebook(self, z: torch.Tensor) -> None:
        init = sample_rows(z, self.n_codes)
        _broadcast(init)
        self.codebook.copy_(init)
        self.embed_sum.copy_(init)
        self.cluster_size.fill_(1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _restart_dead(self, z: torch.Tensor) -> int:
        dead = self.cluster_size < self.restart_threshold
        n_dead = int(dead.sum())
        if n_dead:
            fresh = sample_rows(z, self.n_codes)
            _broadcast(fresh)
            self.codebook[dead] = fresh[dead]
            self.embed_sum[dead] = fresh[dead]
            self.cluster_size[dead] = 1.0
        return n_dead

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Code vectors (..., D) for integer codes (...)."""
        return F.embedding(codes, self.codebook)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantise encoder outputs ``z`` (N, D), in fp32 under any autocast: nearest codes
        and the EMA sums need the precision, and the cost is small."""
        with torch.autocast(z.device.type, enabled=False):
            return self._quantize(z.float())

    def _quantize(self, z: torch.Tensor) -> QuantizerOutput:
        if self.training and not bool(self.initialized):
            self._init_codebook(z.detach())
        codes = nearest_codes(z.detach(), self.codebook)
        quantized = self.lookup(codes)
        commitment = F.mse_loss(z, quantized.detach())
        counts = torch.bincount(codes, minlength=self.n_codes).to(z.dtype)
        probs = counts / counts.sum()
        perplexity = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
        dead = 0
        if self.training:
            with torch.no_grad():
                sums = torch.zeros_like(self.embed_sum).index_add_(0, codes, z.detach().float())
                _all_reduce(counts)
                _all_reduce(sums)
                self.codebook.copy_(
                    ema_update(self.cluster_size, self.embed_sum, counts, sums, self.decay)
                )
                dead = self._restart_dead(z.detach())
        quantized = z + (quantized - z).detach()
        return QuantizerOutput(quantized, codes, self.beta * commitment, perplexity, dead)
