"""Train one stage of the world model into a run folder (what train.py and the quickstart call)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from worldmodel.checkpoint import load_checkpoint, save_checkpoint
from worldmodel.cli import UserError
from worldmodel.config import PRIOR_PRESETS, VQVAE_PRESETS, VQVAEConfig, from_dict, prior_config_for
from worldmodel.training.loop import Runtime, TrainConfig, train
from worldmodel.training.overrides import apply_overrides
from worldmodel.world_model import export_world_model


def train_tokenizer(
    env: str,
    data: Path,
    out: Path,
    preset: str,
    config: TrainConfig,
    runtime: Runtime,
    overrides: list[str] = (),
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``out/vqvae.pt``; returns the last validation metrics."""
    from worldmodel.training.vqvae_stage import VQVAEStage

    model_config = apply_overrides(VQVAE_PRESETS[preset], "vqvae", list(overrides))
    torch.manual_seed(config.seed)  # the initial weights are part of the run
    stage = VQVAEStage(
        env, data, model_config, preset, out, runtime.device, resume, workers=config.num_workers
    )
    return train(
        stage,
        config,
        out / "vqvae.pt",
        runtime,
        resume=resume,
        log_dir=out / "tb" / "vqvae",
        progress=progress,
    )


def train_prior(
    env: str,
    data: Path,
    out: Path,
    preset: str,
    config: TrainConfig,
    runtime: Runtime,
    overrides: list[str] = (),
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``out/prior.pt`` over the tokenizer in ``out``, then export ``out/worldmodel.pt``."""
    from worldmodel.training.prior_stage import PriorStage

    tokenizer = out / "vqvae.pt"
    if not tokenizer.exists():
        raise UserError(
            f"no tokenizer at {tokenizer}; train it first: python train.py --env {env} "
            f"--stage vqvae --preset {preset} --out {out}"
        )
    blob = load_checkpoint(tokenizer, "vqvae", env)
    base = prior_config_for(
        PRIOR_PRESETS[preset], from_dict(VQVAEConfig, blob["config"]), len(blob["action_names"])
    )
    model_config = apply_overrides(base, "prior", list(overrides))
    torch.manual_seed(config.seed)
    stage = PriorStage(env, data, model_config, preset, out, runtime.device, progress=progress)
    metrics = train(
        stage,
        config,
        out / "prior.pt",
        runtime,
        resume=resume,
        log_dir=out / "tb" / "prior",
        progress=progress,
    )
    if runtime.main:
        export_world_model(out / "prior.pt", out / "worldmodel.pt")
    return metrics


def train_decoder(
    env: str,
    data: Path,
    out: Path,
    base: Path,
    preset: str,
    config: TrainConfig,
    runtime: Runtime,
    overrides: list[str] = (),
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune the decoder of the tokenizer in ``base`` into ``out/decoder.pt``, then write
    ``base`` with that decoder swapped in as ``out/KIND.pt`` (e.g. ``out/worldmodel.pt``)."""
    from worldmodel.tokenizer_swap import swap_decoder
    from worldmodel.training.decoder_stage import DecoderStage, DecoderTuneConfig, load_base

    blob, base_config, _ = load_base(base, env)
    model_config = apply_overrides(base_config, "vqvae", list(overrides))
    tune = apply_overrides(DecoderTuneConfig(), "decoder", list(overrides))
    torch.manual_seed(config.seed)  # the discriminator's initial weights are part of the run
    stage = DecoderStage(
        env,
        data,
        base,
        model_config,
        tune,
        preset,
        out,
        runtime.device,
        workers=config.num_workers,
        progress=progress,
    )
    metrics = train(
        stage,
        config,
        out / "decoder.pt",
        runtime,
        resume=resume,
        log_dir=out / "tb" / "decoder",
        progress=progress,
    )
    if runtime.main:
        tuned = load_checkpoint(out / "decoder.pt", "decoder", env)
        save_checkpoint(out / f"{blob['kind']}.pt", swap_decoder(blob, tuned))
    return metrics
