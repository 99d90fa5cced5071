"""The context decoder: what it reads, how it warps, how dreams paint with it, and its stage."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import save_frame_world_model, tiny_frame_world_model
from tests.test_decoder_stage import CONFIG, TUNE
from tests.test_training import CPU
from worldmodel.frames import to_model, to_uint8
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.tokenizer.context import ContextDecoder
from worldmodel.tokenizer.swap import frozen_fingerprint
from worldmodel.tokenizer.vqvae import VQVAE
from worldmodel.training.run import train_decoder
from worldmodel.world_model import WorldModel


def with_context(model: WorldModel, width: int = 8) -> WorldModel:
    """``model`` with a (random) context decoder added to its tokenizer."""
    config = dataclasses.replace(model.tokenizer.config, context_width=width)
    tokenizer = VQVAE(config)
    missing, unexpected = tokenizer.load_state_dict(model.tokenizer.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("context.") for k in missing)
    with torch.no_grad():  # a random, not a zero, output layer: frames depend on every input
        torch.manual_seed(3)
        tokenizer.context.out.weight.normal_(0, 0.05)
        tokenizer.context.flow.weight.normal_(0, 0.05)
    return dataclasses.replace(model, tokenizer=tokenizer.eval())


def test_warp_with_no_flow_is_the_frame_and_integer_flow_shifts_it() -> None:
    decoder = ContextDecoder(8, 64, 8, 8, 16.0)
    frame = torch.rand(2, 3, 64, 64)
    flow = torch.zeros(2, 2, 16, 16)
    assert torch.allclose(decoder.warp(frame, flow), frame, atol=1e-5)
    flow[:, 0] = 3.0  # each pixel shows the one 3 to its right
    shifted = decoder.warp(frame, flow)
    assert torch.allclose(shifted[..., :-3], frame[..., 3:], atol=1e-5)


def test_without_a_previous_frame_its_pixels_are_ignored() -> None:
    tokenizer = with_context(tiny_frame_world_model()).tokenizer
    codes = torch.randint(0, tokenizer.config.n_codes, (2, 3, 8, 8))
    none = torch.zeros(2, dtype=torch.bool)
    base = torch.rand(2, 3, 64, 64) - 0.5
    with torch.no_grad():
        a = tokenizer.paint(codes[:, 0], codes[:, 1], torch.rand(2, 3, 64, 64) - 0.5, none, base)
        b = tokenizer.paint(codes[:, 0], codes[:, 2], torch.zeros(2, 3, 64, 64), none, base)
        seen = tokenizer.paint(
            codes[:, 0], codes[:, 1], torch.rand(2, 3, 64, 64) - 0.5, ~none, base
        )
    assert torch.equal(a, b) and not torch.allclose(a, seen)
    # decode() paints a clip from its codes alone, each step over the one painted before
    assert torch.equal(tokenizer.decode(codes), tokenizer.paint_clip(codes))


def test_dream_paints_each_step_over_the_last_frame_shown() -> None:
    model = with_context(tiny_frame_world_model())
    dreamer = model.dreamer(2, SamplingConfig(), seed=0)
    rng = np.random.default_rng(0)
    n = dreamer.history
    frames = rng.integers(0, 256, (2, n, 64, 64, 3), dtype=np.uint8)
    dreamer.start(frames, np.zeros((2, n), np.int64), np.full((2, n, 1), 80.0, np.float32))
    assert np.array_equal(dreamer.shown, frames[:, -1])
    tok = model.tokenizer
    for _ in range(3):
        shown, before = dreamer.shown.copy(), dreamer.codes[:, -1].clone()
        step = dreamer.step(np.array([1, 2]))
        with torch.no_grad():
            history = dreamer.codes[:, -tok.stream_window :]  # the plain frame, refined
            base = tok.decode_latents(tok.embed_codes(history), keep=1)[:, :, 0]
            expected = tok.paint(
                step.codes,
                before,
                to_model(shown[:, None])[:, :, 0],
                torch.ones(2, dtype=torch.bool),
                base,
            )
        assert np.array_equal(step.frames, to_uint8(expected[:, :, None]))
        assert np.array_equal(dreamer.shown, step.frames[:, -1])


def test_context_stage_trains_only_the_context_decoder(hg_dataset: Path, tmp_path: Path):
    base_model = with_context(tiny_frame_world_model(bank=False))
    base = save_frame_world_model(base_model, tmp_path / "base.pt")
    tune = dataclasses.replace(TUNE, context=True, window=3)
    out = tmp_path / "run"
    metrics = train_decoder(
        "health_gathering",
        hg_dataset,
        out,
        base,
        "tiny",
        CONFIG,
        CPU,
        overrides=[f"decoder.{k}={v}" for k, v in dataclasses.asdict(tune).items()],
        progress=False,
    )
    assert {"psnr", "psnr_ctx", "detail_ratio_ctx"} <= metrics.keys()
    before = base_model.tokenizer.state_dict()
    tuned = WorldModel.load(out / "worldmodel.pt")
    after = tuned.tokenizer.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("context.") for k in changed)  # the 3D decoder too stays
    assert frozen_fingerprint(before) == frozen_fingerprint(after)  # the prior's codes
    prior = base_model.prior.state_dict()
    assert all(torch.equal(v, tuned.prior.state_dict()[k]) for k, v in prior.items())


def test_context_stage_needs_a_width(hg_dataset: Path, tmp_path: Path):
    from worldmodel.checkpoint import CheckpointError

    base = save_frame_world_model(tiny_frame_world_model(bank=False), tmp_path / "base.pt")
    with pytest.raises(CheckpointError, match="context_width"):
        train_decoder(
            "health_gathering",
            hg_dataset,
            tmp_path / "run",
            base,
            "tiny",
            CONFIG,
            CPU,
            overrides=["decoder.context=true"],
            progress=False,
        )


def test_block_matching_finds_a_sideways_shift() -> None:
    from worldmodel.tokenizer.context import match_flow

    torch.manual_seed(0)
    previous = torch.rand(2, 3, 64, 64) - 0.5
    base = torch.roll(previous, shifts=-6, dims=3)  # the view turned: pixel x shows old x + 6
    flow, cost = match_flow(previous, base, torch.tensor(-8.0))
    assert flow.shape == (2, 2, 32, 32) and cost.shape == (2, 1, 32, 32)
    inside = flow[:, :, 4:-8, 4:-8]  # away from the edge the roll wrapped
    assert torch.allclose(inside[:, 0], torch.full_like(inside[:, 0], 6.0), atol=1e-3)
    assert inside[:, 1].abs().max() < 1e-3
