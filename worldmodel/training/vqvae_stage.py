"""Training stage of the tokenizer: normalised-MSE + commitment loss on random clips.

With an :class:`~worldmodel.training.adversarial.AdversarialConfig` (``--set gan.enabled=true``,
beyond the paper) the decoder also learns against a patch discriminator from the first step.
The discriminator is the stage's own (its optimizer too, stepped inside :meth:`loss`), so the
checkpoint's ``model`` stays a plain tokenizer that every reader of ``vqvae.pt`` knows; its
state rides along in the checkpoint (``disc``) so ``--resume`` continues it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from worldmodel.checkpoint import CheckpointError
from worldmodel.config import VQVAEConfig, from_dict, to_dict
from worldmodel.data import EpisodeStore, WindowDataset
from worldmodel.evaluation.media import clip_grid, write_gif
from worldmodel.evaluation.metrics import psnr, ssim
from worldmodel.frames import to_model, to_uint8
from worldmodel.tokenizer.vqvae import VQVAE
from worldmodel.training.adversarial import (
    AdversarialConfig,
    discriminator_terms,
    gan_factor,
    generator_terms,
)
from worldmodel.training.batches import evenly_spaced, step_batches


def estimate_variance(dataset: WindowDataset, n: int = 64) -> float:
    """Variance of frames scaled to [-0.5, 0.5], over ``n`` evenly spaced windows."""
    frames = np.stack([dataset[i]["frames"] for i in evenly_spaced(len(dataset), n)])
    return float((frames.astype(np.float64) / 255.0 - 0.5).var())


class VQVAEStage:
    name = "vqvae"

    def __init__(
        self,
        env: str,
        data: Path,
        config: VQVAEConfig,
        preset: str,
        out_dir: Path,
        device: torch.device,
        resume: bool,
        eval_clips: int = 64,
        workers: int = 0,
        adversarial: AdversarialConfig | None = None,
    ) -> None:
        self.env, self.preset, self.out_dir, self.device = env, preset, out_dir, device
        self.workers = workers
        self.gan = adversarial if adversarial is not None and adversarial.enabled else None
        self.disc = self.disc_opt = None
        if self.gan is not None:
            self.disc = self.gan.discriminator().to(device)
            self.disc_opt = torch.optim.AdamW(
                self.disc.parameters(), lr=self.gan.disc_lr, betas=(0.5, 0.9)
            )
        self.step = 0
        train_store = EpisodeStore(data, "train", env=env)
        self.action_names = list(train_store.manifest.action_names)
        self.train_set = WindowDataset(train_store, config.clip_len)
        self.val_set = WindowDataset(EpisodeStore(data, "val", env=env), config.clip_len)
        if not resume:  # on resume the checkpoint's variance is loaded with the weights
            config = dataclasses.replace(config, data_variance=estimate_variance(self.train_set))
        self.config = config
        self.model = VQVAE(config)
        self.eval_index = evenly_spaced(len(self.val_set), eval_clips)

    def batches(
        self, start: int, batch_size: int, seed: int, rank: int, world: int
    ) -> Iterator[Any]:
        loader = step_batches(self.train_set, start, batch_size, seed, rank, self.workers)
        for self.step, batch in enumerate(loader, start):
            yield to_model(batch["frames"], self.device)

    def loss(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(x)
        loss = out.losses["recon"] + out.losses["commit"]
        logs = {k: float(v.detach()) for k, v in out.losses.items()}
        if self.gan is not None:
            loss = loss + self._adversarial(model, x, out.recon, out.losses["recon"], logs)
        logs.update(
            loss=float(loss.detach()), perplexity=float(out.perplexity), dead_codes=out.dead_codes
        )
        return loss, logs

    def _adversarial(
        self, model: nn.Module, x: torch.Tensor, recon: torch.Tensor, rec: torch.Tensor, logs: dict
    ) -> torch.Tensor:
        """Step the discriminator on this batch, then the decoder's adversarial terms."""
        assert self.gan is not None and self.disc is not None and self.disc_opt is not None
        d_loss, real_features, d_logs = discriminator_terms(self.disc, x, recon)
        self.disc_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.disc_opt.step()
        logs.update(d_logs)
        factor = gan_factor(self.step, self.gan.gan_start, self.gan.gan_ramp)
        if factor == 0:
            return recon.new_zeros(())
        last = model.decoder.up[-1].conv.weight
        features = [f.detach() for f in real_features]
        g_loss, g_logs = generator_terms(
            self.disc, recon, rec, features, last, self.gan.adv_weight, self.gan.fm_weight
        )
        logs.update(g_logs)
        return factor * g_loss

    @torch.no_grad()
    def evaluate(self, step: int) -> dict[str, float]:
        model = self.model
        real, recon, codes = [], [], []
        for i in range(0, len(self.eval_index), 16):
            frames = np.stack([self.val_set[j]["frames"] for j in self.eval_index[i : i + 16]])
            x = to_model(frames, self.device)
            c = model.encode(x)
            real.append(frames)
            recon.append(to_uint8(model.decode(c)))
            codes.append(c.flatten().cpu())
        real_a, recon_a = np.concatenate(real), np.concatenate(recon)
        x, y = real_a.astype(np.float64) / 255 - 0.5, recon_a.astype(np.float64) / 255 - 0.5
        counts = torch.bincount(torch.cat(codes), minlength=self.config.n_codes).double()
        p = counts / counts.sum()
        perplexity = float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))
        dead = int((model.quantizer.cluster_size < self.config.restart_threshold).sum())
        write_gif(
            self.out_dir / "samples" / f"vqvae_{step:07d}.gif", clip_grid([real_a[:6], recon_a[:6]])
        )
        return {
            "psnr": float(np.mean(psnr(real_a, recon_a))),
            "ssim": float(np.mean(ssim(real_a, recon_a))),
            "nmse": float(((x - y) ** 2).mean() / self.config.data_variance),
            "perplexity": perplexity,
            "dead_codes": dead,
            "codes_used": int((counts > 0).sum()),
        }

    def payload(self) -> dict[str, Any]:
        payload = {
            "kind": "vqvae",
            "env": self.env,
            "preset": self.preset,
            "action_names": self.action_names,
            "config": to_dict(self.config),
        }
        if self.gan is not None and self.disc is not None and self.disc_opt is not None:
            payload["gan"] = to_dict(self.gan)
            payload["disc"] = {"model": self.disc.state_dict(), "opt": self.disc_opt.state_dict()}
        return payload

    def check_resume(self, blob: dict[str, Any]) -> None:
        theirs = from_dict(VQVAEConfig, blob["config"])
        if blob["env"] != self.env:
            raise CheckpointError(f"the checkpoint to resume was trained on {blob['env']!r}")
        mine_gan = to_dict(self.gan) if self.gan is not None else None
        if blob.get("gan") != mine_gan:
            raise CheckpointError(
                "cannot resume: the checkpoint's adversarial settings (gan.*) differ from this "
                "run's; use the same --set flags, or a new --out"
            )
        if self.disc is not None and self.disc_opt is not None:
            self.disc.load_state_dict(blob["disc"]["model"])
            self.disc_opt.load_state_dict(blob["disc"]["opt"])
        mine = dataclasses.replace(self.config, data_variance=theirs.data_variance)
        if theirs != mine:
            diff = {
                k: (v, getattr(mine, k))
                for k, v in to_dict(theirs).items()
                if getattr(mine, k) != v
            }
            raise CheckpointError(
                f"cannot resume: the checkpoint's tokenizer config differs {diff} "
                "(checkpoint, requested); use the same --preset and flags, or a new --out"
            )
        self.config = theirs
