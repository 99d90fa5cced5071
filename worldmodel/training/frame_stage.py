"""Training stage of the frame-parallel prior: next-step codes and game state, all at once.

Evaluation reports, besides the teacher-forced likelihood, what a player sees: one-step PSNR of
the dreamed frame beside copying the last real frame (and the tokenizer's ceiling), open-loop
PSNR over 16 dreamed steps beside freezing the last real frame, and the game state's error.
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
from worldmodel.config import FramePriorConfig, from_dict, to_dict
from worldmodel.data import DatasetError, EpisodeStore, load_manifest
from worldmodel.data.codes import cached_codes
from worldmodel.data.frame_windows import FrameBatch, frame_batch, window_starts
from worldmodel.evaluation.media import clip_grid, write_gif
from worldmodel.evaluation.metrics import capped_psnr
from worldmodel.evaluation.openloop import one_step, open_loop
from worldmodel.game_state import GameRules, GameState
from worldmodel.prior.frame import FramePrior
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.training.prior_stage import check_prior_resume, load_tokenizer
from worldmodel.world_model import WorldModel


def game_state_of(data: Path, env: str, use_state: bool = True) -> GameState:
    """The game variables and rules a dataset records (none for a version 1 dataset)."""
    manifest = load_manifest(data, env)
    if not (use_state and manifest.has_variables):
        return GameState()
    return GameState(tuple(manifest.variable_names), GameRules.from_manifest(manifest.rules))


class FramePriorStage:
    name = "prior"

    def __init__(
        self,
        env: str,
        data: Path,
        config: FramePriorConfig,
        game: GameState,
        preset: str,
        out_dir: Path,
        device: torch.device,
        progress: bool = True,
        eval_samples: int = 64,
        sticky: float | None = None,
    ) -> None:
        self.env, self.preset, self.out_dir, self.device = env, preset, out_dir, device
        self.game, self.config = game, config
        self.tokenizer, tok_blob = load_tokenizer(out_dir / "vqvae.pt", env, device)
        if sticky is not None and sticky != self.tokenizer.config.sticky:
            # encode (and let the exported model start its dreams) with sticky codes
            self.tokenizer.config = dataclasses.replace(self.tokenizer.config, sticky=sticky)
            tok_blob = {**tok_blob, "config": {**tok_blob["config"], "sticky": sticky}}
        self.tokenizer_state = {
            "config": tok_blob["config"],
            "model": tok_blob["model"],
            "step": tok_blob["step"],
        }
        self.action_names = list(tok_blob["action_names"])
        self.model = FramePrior(config)
        if config.codebook_dim:
            self.model.set_codebook(self.tokenizer.quantizer.codebook)
        tok_id = {"step": int(tok_blob["step"]), "config": tok_blob["config"]}
        self.train_codes = cached_codes(
            self.tokenizer, tok_id, data, env, "train", out_dir, device, progress
        )
        self.blocks = config.steps * 2  # windows twice the attention span: see ARCHITECTURE
        self.train_starts = window_starts(self.train_codes, self.blocks)
        if len(self.train_starts) == 0:
            raise DatasetError(f"no training episode has {self.blocks} latent steps")
        self.val = EpisodeStore(data, "val", env=env)
        self.eval_samples = eval_samples

    def batches(
        self, start: int, batch_size: int, seed: int, rank: int, world: int
    ) -> Iterator[FrameBatch]:
        step, c = start, self.config
        while True:
            rng = np.random.default_rng([seed, step, rank])
            picks = self.train_starts[rng.integers(0, len(self.train_starts), batch_size)]
            yield frame_batch(
                self.train_codes,
                picks,
                self.blocks,
                self.game,
                c.n_codes,
                c.corrupt,
                c.corrupt_levels,
                rng,
                reveal_codes=c.reveal,
            )
            step += 1

    def loss(self, model: nn.Module, batch: FrameBatch) -> tuple[torch.Tensor, dict[str, float]]:
        def t(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(x, device=self.device)

        out = model(
            t(batch.in_codes),
            t(batch.in_state),
            t(batch.actions) if self.config.n_actions else None,
            t(batch.level),
            (t(batch.codes), t(batch.state)),
            t(batch.valid),
            None if batch.current is None else t(batch.current),
        )
        logs = {"loss": float(out.loss.detach())}
        logs.update({k: float(v.detach()) for k, v in out.terms.items()})
        return out.loss, logs

    def world_model(self) -> WorldModel:
        return WorldModel(self.tokenizer, self.model, self.env, self.action_names, game=self.game)

    @torch.no_grad()
    def evaluate(self, step: int) -> dict[str, float]:
        model = self.world_model()
        greedy = SamplingConfig(temperature=0.0)
        n = self.eval_samples
        metrics: dict[str, float] = {}
        one = one_step(model, self.val, n, context=self.config.steps, sampling=greedy, seed=1)
        metrics.update(
            one_step_psnr=float(one.dream.mean()),
            one_step_copy_psnr=float(one.copy.mean()),
            one_step_recon_psnr=float(one.recon.mean()),
        )
        noop = one.actions == 0
        if noop.any():
            metrics["one_step_noop_psnr"] = float(one.dream[noop].mean())
        copy = SamplingConfig(temperature=0.0, copy_unchanged=True)
        kept = one_step(model, self.val, n, context=self.config.steps, sampling=copy, seed=1)
        metrics["one_step_psnr_copy_unchanged"] = float(kept.dream.mean())
        if noop.any():
            metrics["one_step_noop_psnr_copy_unchanged"] = float(kept.dream[noop].mean())
        if self.config.reveal:  # what drawing in passes gives at the dream's temperature
            for passes in (1, 4):
                drawn = SamplingConfig(temperature=1.0, passes=passes)
                at_t1 = one_step(
                    model, self.val, n, context=self.config.steps, sampling=drawn, seed=1
                )
                metrics[f"one_step_psnr_t1_x{passes}"] = float(at_t1.dream.mean())
        if one.pred_vars is not None and len(one.pred_vars):
            metrics["state_mae"] = float(np.abs(one.pred_vars - one.true_vars).mean())
        ol = open_loop(model, self.val, n // 2, context=4, horizon=16, sampling=greedy, seed=2)
        frozen = capped_psnr(ol.real, np.repeat(ol.context[:, -1:], ol.real.shape[1], axis=1)).mean(
            0
        )
        metrics.update(
            open_loop_psnr=float(ol.psnr.mean()),
            open_loop_frozen_psnr=float(frozen.mean()),
            open_loop_psnr_last=float(ol.psnr[-1]),
        )
        write_gif(
            self.out_dir / "samples" / f"prior_{step:07d}.gif",
            clip_grid([ol.real[:4], ol.dream[:4]]),
        )
        return metrics

    def payload(self) -> dict[str, Any]:
        return {
            "kind": "prior",
            "arch": "frame",
            "env": self.env,
            "preset": self.preset,
            "action_names": self.action_names,
            "config": to_dict(self.config),
            "game": self.game.to_dict(),
            "tokenizer": self.tokenizer_state,
        }

    def check_resume(self, blob: dict[str, Any]) -> None:
        if blob.get("arch") != "frame":
            raise CheckpointError("cannot resume: the checkpoint holds another prior architecture")
        check_prior_resume(
            from_dict(FramePriorConfig, blob["config"]),
            blob["tokenizer"]["step"],
            self.config,
            self.tokenizer_state["step"],
        )
