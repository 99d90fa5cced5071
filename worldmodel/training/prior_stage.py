"""Training stage of the prior: next-code cross-entropy plus reward and termination heads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from worldmodel.checkpoint import CheckpointError, load_checkpoint
from worldmodel.config import PriorConfig, VQVAEConfig, from_dict, to_dict
from worldmodel.data import EpisodeStore
from worldmodel.data.codes import CodeSet, cached_codes
from worldmodel.evaluation.media import clip_grid, write_gif
from worldmodel.evaluation.teacher import eval_windows, teacher_forced_metrics
from worldmodel.frames import to_model
from worldmodel.prior.raster import Prior
from worldmodel.sampling.raster import Dreamer
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.tokenizer.vqvae import VQVAE


def load_tokenizer(path: Path, env: str, device: torch.device) -> tuple[VQVAE, dict[str, Any]]:
    """The trained tokenizer in ``path`` (refusing another env's) and its checkpoint."""
    if not path.exists():
        raise CheckpointError(
            f"no tokenizer at {path}; train it first: python train.py --env {env} --stage vqvae "
            f"--out {path.parent}"
        )
    blob = load_checkpoint(path, "vqvae", env)
    model = VQVAE(from_dict(VQVAEConfig, blob["config"]))
    model.load_state_dict(blob["model"])
    return model.to(device).eval(), blob


class PriorStage:
    name = "prior"

    def __init__(
        self,
        env: str,
        data: Path,
        config: PriorConfig,
        preset: str,
        out_dir: Path,
        device: torch.device,
        eval_limit: int = 256,
        progress: bool = True,
    ) -> None:
        self.env, self.preset, self.out_dir, self.device = env, preset, out_dir, device
        self.tokenizer, tok_blob = load_tokenizer(out_dir / "vqvae.pt", env, device)
        self.tokenizer_state = {
            "config": tok_blob["config"],
            "model": tok_blob["model"],
            "step": tok_blob["step"],
        }
        self.action_names = list(tok_blob["action_names"])
        self.config = config
        self.model = Prior(config)
        tok_id = {"step": int(tok_blob["step"]), "config": tok_blob["config"]}
        self.train_codes = cached_codes(
            self.tokenizer, tok_id, data, env, "train", out_dir, device, progress
        )
        self.val_codes = cached_codes(
            self.tokenizer, tok_id, data, env, "val", out_dir, device, progress
        )
        self.train_starts = self.train_codes.window_starts(config.steps)
        if len(self.train_starts) == 0:
            raise CheckpointError(f"no training episode has {config.steps} latent steps")
        self.eval_index, self.eval_mask = eval_windows(self.val_codes, config.steps, eval_limit)
        self.stores = {split: EpisodeStore(data, split, env=env) for split in ("train", "val")}
        self.store_pos = {
            split: {e.index: i for i, e in enumerate(store.entries)}
            for split, store in self.stores.items()
        }

    def _cond_frames(self, split: str, codes: CodeSet, starts: np.ndarray) -> torch.Tensor | None:
        """First frames of each window, for frame conditioning: (B, n, 3, H, W)."""
        if not self.config.frame_cond:
            return None
        s, n = self.config.actions_per_step, self.config.frame_cond_frames
        frames = []
        for g in starts:
            e = int(np.searchsorted(codes.starts, g, side="right") - 1)
            pos = self.store_pos[split][int(codes.episodes[e])]
            first = int(g - codes.starts[e]) * s
            frames.append(self.stores[split].read(pos, first, first + n)["frames"])
        return to_model(np.stack(frames), self.device).transpose(1, 2)

    def _batch(self, split: str, codes: CodeSet, starts: np.ndarray) -> dict[str, Any]:
        windows = [codes.window(int(g), self.config.steps) for g in starts]
        batch = {
            k: torch.as_tensor(np.stack([w[k] for w in windows]), device=self.device)
            for k in windows[0]
        }
        batch["cond_frames"] = self._cond_frames(split, codes, starts)
        return batch

    def batches(
        self, start: int, batch_size: int, seed: int, rank: int, world: int
    ) -> Iterator[Any]:
        step = start
        while True:
            rng = np.random.default_rng([seed, step, rank])
            picks = self.train_starts[rng.integers(0, len(self.train_starts), batch_size)]
            yield self._batch("train", self.train_codes, picks)
            step += 1

    def loss(
        self, model: nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        actions = batch["actions"] if self.config.n_actions else None
        out = model(batch["codes"], actions, batch["cond_frames"], batch["rewards"], batch["dones"])
        logs = {"loss": float(out.loss.detach())}
        logs.update({k: float(v.detach()) for k, v in out.terms.items()})
        return out.loss, logs

    @torch.no_grad()
    def evaluate(self, step: int) -> dict[str, float]:
        frames = None
        if self.config.frame_cond:
            frames = lambda starts: self._cond_frames("val", self.val_codes, starts)  # noqa: E731
        metrics = teacher_forced_metrics(
            self.model, self.val_codes, self.eval_index, self.eval_mask, self.device, frames
        )
        self._dream_gif(step)
        return metrics

    def _dream_gif(self, step: int, n: int = 4) -> None:
        """Real val clips vs dreams from the same first frames under the same actions."""
        c, s = self.config, self.config.actions_per_step
        starts = [
            self.eval_index[i]
            for i in np.linspace(0, len(self.eval_index) - 1, n).round().astype(int)
        ]
        real = []
        for g in starts:
            e = int(np.searchsorted(self.val_codes.starts, g, side="right") - 1)
            pos = self.store_pos["val"][int(self.val_codes.episodes[e])]
            first = int(g - self.val_codes.starts[e]) * s
            real.append(self.stores["val"].read(pos, first, first + c.steps * s))
        frames = np.stack([r["frames"] for r in real])  # (n, T, H, W, 3)
        actions = np.stack([r["actions"] for r in real])
        context = max(1, c.steps // 2)
        dreamer = Dreamer(
            self.tokenizer,
            self.model,
            len(starts),
            SamplingConfig(),
            torch.Generator(self.device).manual_seed(step),
        )
        dreamer.start(frames[:, : context * s], actions[:, : context * s])
        dreamed = [frames[:, : context * s]]
        for t in range(context, c.steps):
            dreamed.append(dreamer.step(actions[:, t * s : (t + 1) * s]).frames)
        write_gif(
            self.out_dir / "samples" / f"prior_{step:07d}.gif",
            clip_grid([frames, np.concatenate(dreamed, axis=1)]),
        )

    def payload(self) -> dict[str, Any]:
        return {
            "kind": "prior",
            "env": self.env,
            "preset": self.preset,
            "action_names": self.action_names,
            "config": to_dict(self.config),
            "tokenizer": self.tokenizer_state,
        }

    def check_resume(self, blob: dict[str, Any]) -> None:
        check_prior_resume(
            from_dict(PriorConfig, blob["config"]),
            blob["tokenizer"]["step"],
            self.config,
            self.tokenizer_state["step"],
        )


def check_prior_resume(
    theirs: Any, tokenizer_step: int, ours: Any, our_tokenizer_step: int
) -> None:
    """Refuse to resume a prior whose config (``theirs``) differs from the requested one
    (``ours``), or that began on another tokenizer than the one now in the run folder."""
    if theirs != ours:
        diff = {
            k: (v, getattr(ours, k)) for k, v in to_dict(theirs).items() if getattr(ours, k) != v
        }
        raise CheckpointError(
            f"cannot resume: the checkpoint's prior config differs {diff} (checkpoint, "
            "requested); use the same --preset and flags, or a new --out"
        )
    if tokenizer_step != our_tokenizer_step:
        raise CheckpointError(
            "cannot resume: the tokenizer in --out changed since this prior began"
        )
