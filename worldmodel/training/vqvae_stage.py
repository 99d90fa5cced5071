"""Training stage of the tokenizer: normalised-MSE + commitment loss on random clips."""

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
    ) -> None:
        self.env, self.preset, self.out_dir, self.device = env, preset, out_dir, device
        self.workers = workers
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
        for batch in step_batches(self.train_set, start, batch_size, seed, rank, self.workers):
            yield to_model(batch["frames"], self.device)

    def loss(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(x)
        loss = out.losses["recon"] + out.losses["commit"]
        logs = {k: float(v.detach()) for k, v in out.losses.items()}
        logs.update(
            loss=float(loss.detach()), perplexity=float(out.perplexity), dead_codes=out.dead_codes
        )
        return loss, logs

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
        return {
            "kind": "vqvae",
            "env": self.env,
            "preset": self.preset,
            "action_names": self.action_names,
            "config": to_dict(self.config),
        }

    def check_resume(self, blob: dict[str, Any]) -> None:
        theirs = from_dict(VQVAEConfig, blob["config"])
        if blob["env"] != self.env:
            raise CheckpointError(f"the checkpoint to resume was trained on {blob['env']!r}")
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
