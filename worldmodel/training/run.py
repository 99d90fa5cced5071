"""Train one stage of the world model into a run folder (what train.py and the quickstart call)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.cli.args import UserError
from worldmodel.cli.overrides import apply_overrides
from worldmodel.config import (
    FRAME_PRIOR_PRESETS,
    PRIOR_PRESETS,
    VQVAE_PRESETS,
    VQVAEConfig,
    frame_prior_config_for,
    from_dict,
    prior_config_for,
)
from worldmodel.training.loop import Runtime, TrainConfig, train
from worldmodel.world_model import export_world_model

# ``--set vqvae.FIELD`` settings that the prior stage applies over a trained tokenizer: they
# change how frames are encoded into codes, not the tokenizer's weights.
ENCODING_SETTINGS = ("vqvae.sticky",)


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
    from worldmodel.training.adversarial import AdversarialConfig
    from worldmodel.training.vqvae_stage import VQVAEStage

    model_config = apply_overrides(VQVAE_PRESETS[preset], "vqvae", list(overrides))
    gan = apply_overrides(AdversarialConfig(), "gan", list(overrides))
    torch.manual_seed(config.seed)  # the initial weights are part of the run
    stage = VQVAEStage(
        env,
        data,
        model_config,
        preset,
        out,
        runtime.device,
        resume,
        workers=config.num_workers,
        adversarial=gan,
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
    arch: str = "frame",
    state: bool = True,
    starts: int = 256,
    init: Path | None = None,
    init_dynamics: Path | None = None,
) -> dict[str, Any]:
    """Train ``out/prior.pt`` over the tokenizer in ``out``, then export ``out/worldmodel.pt``.

    ``arch`` is ``raster`` (the paper's prior, code by code; overrides ``prior.FIELD``) or
    ``frame`` (the frame-parallel prior; overrides ``frame.FIELD``), which with ``state``
    carries the dataset's game variables as tokens. ``starts`` real start windows of the
    validation split are bundled into ``worldmodel.pt``. ``init``: a frame-prior model to
    start from (a fine-tune, see ``worldmodel.training.prior_init``; ignored on resume).
    ``init_dynamics``: a frame-prior model over other codes whose dynamics (everything but the
    code embeddings and head) the prior starts from (ignored on resume)."""
    from worldmodel.training.frame_stage import FramePriorStage, game_state_of
    from worldmodel.training.prior_init import (
        init_blob,
        load_dynamics_weights,
        load_init_weights,
        provide_tokenizer,
    )
    from worldmodel.training.prior_stage import PriorStage

    tokenizer = out / "vqvae.pt"
    init_from = dynamics_from = None
    if init is not None and init_dynamics is not None:
        raise UserError("--init-prior and --init-dynamics: give one (the first keeps the codes)")
    if (init or init_dynamics) is not None and not resume and arch != "frame":
        raise UserError("--init-prior/--init-dynamics start a frame prior; drop --prior-arch")
    if init is not None and not resume:
        init_from = init_blob(init, env)
        provide_tokenizer(init_from, tokenizer)
    if init_dynamics is not None and not resume:
        dynamics_from = init_blob(init_dynamics, env)
    if not tokenizer.exists():
        raise UserError(
            f"no tokenizer at {tokenizer}; train it first: python train.py --env {env} "
            f"--stage vqvae --preset {preset} --out {out}"
        )
    blob = load_checkpoint(tokenizer, "vqvae", env)
    vq, n_actions = from_dict(VQVAEConfig, blob["config"]), len(blob["action_names"])
    # how frames become codes (not the weights) may change over a trained tokenizer
    encoding = [o for o in overrides if o.partition("=")[0] in ENCODING_SETTINGS]
    vq = apply_overrides(vq, "vqvae", encoding)
    if resume and _stale(out / "prior.pt", int(blob["step"])):
        resume = False
    if resume and (out / "prior.pt").exists():
        _check_encoding(out / "prior.pt", vq)  # before encoding a whole split again
    torch.manual_seed(config.seed)
    stage: Any
    if arch == "frame":
        game = game_state_of(data, env, state)
        base = frame_prior_config_for(FRAME_PRIOR_PRESETS[preset], vq, n_actions, game.vocab)
        frame_config = apply_overrides(base, "frame", list(overrides))
        stage = FramePriorStage(
            env,
            data,
            frame_config,
            game,
            preset,
            out,
            runtime.device,
            progress=progress,
            sticky=vq.sticky,
        )
        if init_from is not None:
            new = load_init_weights(stage.model, init_from)
            if runtime.main:
                print(f"prior starts from {init}" + (f" (new: {', '.join(new)})" if new else ""))
        if dynamics_from is not None:
            new = load_dynamics_weights(stage.model, dynamics_from)
            if runtime.main:
                print(f"prior's dynamics start from {init_dynamics} (new: {', '.join(new)})")
    elif arch == "raster":
        base = prior_config_for(PRIOR_PRESETS[preset], vq, n_actions)
        model_config = apply_overrides(base, "prior", list(overrides))
        stage = PriorStage(env, data, model_config, preset, out, runtime.device, progress=progress)
    else:
        raise UserError(f"--prior-arch must be frame or raster, not {arch!r}")
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
        bank = None
        if arch == "frame" and starts > 0:
            from worldmodel.data.codes import cached_codes
            from worldmodel.dream.starts import bank_from_codes

            tok = stage.tokenizer_state  # with the encoding settings it trained on
            tok_id = {"step": int(tok["step"]), "config": tok["config"]}
            val = cached_codes(
                stage.tokenizer, tok_id, data, env, "val", out, runtime.device, progress
            )
            steps = max(stage.model.config.steps, stage.tokenizer.stream_window) + 1
            bank = bank_from_codes(val, starts, steps, vq.time_down, seed=config.seed).to_dict()
        export_world_model(out / "prior.pt", out / "worldmodel.pt", starts=bank)
    return metrics


def _check_encoding(prior: Path, vq: VQVAEConfig) -> None:
    """Refuse to resume a prior trained on codes encoded otherwise (``vqvae.sticky``)."""
    theirs = load_checkpoint(prior, "prior")["tokenizer"]["config"].get("sticky", 0.0)
    if theirs != vq.sticky:
        raise CheckpointError(
            f"cannot resume: this prior was trained on codes encoded with vqvae.sticky="
            f"{theirs:g}, not {vq.sticky:g}; pass --set vqvae.sticky={theirs:g} as when it began"
        )


def _stale(prior: Path, tokenizer_step: int) -> bool:
    """Whether ``prior`` was trained over an earlier state of the tokenizer (trained further
    since, as ``--stage all --resume`` with more ``--steps`` does). Its codes mean nothing to
    the new tokenizer, so it is moved aside to start over, rather than refused on every try."""
    if not prior.exists():
        return False
    began = int(load_checkpoint(prior, "prior")["tokenizer"]["step"])
    if began == tokenizer_step:
        return False
    aside = prior.with_name(f"prior.tokenizer-step-{began}.pt")
    os.replace(prior, aside)
    print(
        f"note: the tokenizer was trained on (step {began} -> {tokenizer_step}) since the prior "
        f"began, so the prior starts over; the old one is kept as {aside}"
    )
    return True


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
    from worldmodel.tokenizer.swap import swap_decoder
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
