"""The adversarial loss both tokenizer stages can add to their reconstruction loss.

A patch discriminator (``worldmodel.tokenizer.discriminator``, trained here from scratch)
scores frames as real or decoded; the decoder gets a hinge loss against it plus L1 feature
matching on its activations, so it is pushed towards the local texture statistics of real
frames, which an MSE loss averages away. The decoder's adversarial terms ramp in after
``gan_start`` steps and are weighted adaptively, so their gradient at the decoder's last layer
is ``adv_weight`` times that of the reconstruction loss (Esser et al. 2021), which keeps one
setting sane across decoders. No pretrained network enters any loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from worldmodel.tokenizer.discriminator import PatchDiscriminator, feature_matching, hinge_d_loss


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class AdversarialConfig:
    """``train.py --stage vqvae --set gan.enabled=true``: a tokenizer trained adversarially
    from its first step (beyond the paper; the paper's tokenizer is MSE only)."""

    enabled: bool = field(default=False, metadata=_help("add the adversarial loss"))
    adv_weight: float = field(default=0.5, metadata=_help("adversarial / recon gradient ratio"))
    fm_weight: float = field(default=1.0, metadata=_help("weight of feature matching"))
    gan_start: int = field(default=500, metadata=_help("steps before the decoder's GAN terms"))
    gan_ramp: int = field(default=300, metadata=_help("steps over which they ramp up to full"))
    disc_channels: int = field(default=32, metadata=_help("discriminator's first-layer width"))
    disc_layers: int = field(default=3, metadata=_help("discriminator's stride-2 layers"))
    disc_lr: float = field(default=2e-4, metadata=_help("discriminator learning rate (stage)"))

    def discriminator(self) -> PatchDiscriminator:
        return PatchDiscriminator(self.disc_channels, self.disc_layers)


def gan_factor(step: int, start: int, ramp: int) -> float:
    """0 before ``start``, then a linear ramp to 1 over ``ramp`` steps."""
    return float(np.clip((step - start + 1) / max(1, ramp), 0.0, 1.0))


def discriminator_terms(
    disc: PatchDiscriminator, real: torch.Tensor, fake: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, float]]:
    """The discriminator's hinge loss on real and (detached) decoded frames (B, 3, T, H, W),
    its features of the real frames (for feature matching) and logs."""
    real_logits, real_features = disc(real)
    fake_logits, _ = disc(fake.detach())
    d_loss = hinge_d_loss(real_logits, fake_logits)
    logs = {
        "d_loss": float(d_loss.detach()),
        "d_real": float(real_logits.detach().mean()),
        "d_fake": float(fake_logits.detach().mean()),
    }
    return d_loss, real_features, logs


def generator_terms(
    disc: PatchDiscriminator,
    fake: torch.Tensor,
    rec: torch.Tensor,
    real_features: list[torch.Tensor],
    last: torch.Tensor,
    adv_weight: float,
    fm_weight: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Adversarial + feature-matching loss of the decoder through a frozen discriminator,
    the adversarial part scaled so its gradient at ``last`` (the decoder's last weight) is
    ``adv_weight`` times that of the reconstruction loss ``rec``."""
    for p in disc.parameters():
        p.requires_grad_(False)
    try:
        logits, features = disc(fake)
    finally:
        for p in disc.parameters():
            p.requires_grad_(True)
    adv = -logits.mean()
    fm = feature_matching(features, real_features)
    g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adv, last, retain_graph=True)[0]
    weight = (g_rec.norm() / (g_adv.norm() + 1e-6)).clamp(max=1e4).detach()
    loss = adv_weight * weight * adv + fm_weight * fm
    logs = {"g_adv": float(adv.detach()), "fm": float(fm.detach()), "adv_scale": float(weight)}
    return loss, logs
