"""Sticky encoding (``vqvae.sticky``): a place keeps its previous step's code while that code is
nearly as near as the nearest one; off by default, the same rule that tools/code_stability.py
measured, and continuous across the chunks a long episode is encoded in."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import script_module
from worldmodel.config import VQVAE_PRESETS
from worldmodel.data.codes import encode_episode
from worldmodel.frames import to_model
from worldmodel.tokenizer.vqvae import VQVAE

sticky_codes = script_module("tools/code_stability.py").sticky_codes


def _tokenizer(sticky: float) -> VQVAE:
    torch.manual_seed(0)
    tok = VQVAE(VQVAE_PRESETS["tiny"]).eval()
    tok.config = dataclasses.replace(tok.config, sticky=sticky)
    return tok


def _frames(n: int = 12) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (64, 64, 3))
    noise = rng.integers(-20, 20, (n, 64, 64, 3))  # a still view with flicker
    return np.clip(base[None] + noise, 0, 255).astype(np.uint8)


def test_off_by_default_and_then_plain_nearest_codes():
    assert VQVAE_PRESETS["cpu"].sticky == 0.0
    tok = _tokenizer(0.0)
    x = to_model(_frames()[None])
    z = tok.encode_latents(x)[0].permute(1, 2, 3, 0)  # (T, H, W, D)
    distances = (z[..., None, :] - tok.quantizer.codebook).pow(2).sum(-1)
    assert torch.equal(tok.encode(x)[0], distances.argmin(-1))


@pytest.mark.parametrize("tau", [0.5, 4.0])
def test_the_rule_code_stability_measured(tau):
    tok = _tokenizer(tau)
    x = to_model(_frames()[None])
    z = tok.encode_latents(x)[0].permute(1, 2, 3, 0)
    distances = (z[..., None, :] - tok.quantizer.codebook).pow(2).sum(-1)
    assert torch.equal(tok.encode(x)[0], sticky_codes(distances, tau))


def test_stickier_codes_change_less():
    x = to_model(_frames()[None])
    changes = []
    for tau in (0.0, 1.0, 100.0):
        codes = _tokenizer(tau).encode(x)[0]
        changes.append(int((codes[1:] != codes[:-1]).sum()))
    assert changes[0] > 0 and changes[0] >= changes[1] >= changes[2] == 0


def test_previous_codes_carry_the_chain_into_a_new_clip():
    tok = _tokenizer(100.0)  # keeps whatever it had
    x = to_model(_frames()[None])
    first = tok.encode(x[:, :, :4])
    rest = tok.encode(x[:, :, 4:], previous=first[:, -1])
    assert torch.equal(rest, first[:, -1:].expand_as(rest))


def test_an_episode_in_chunks_codes_as_in_one_piece():
    tok = _tokenizer(2.0)
    frames = _frames(12)
    whole = tok.encode(to_model(frames[None]))[0].numpy()
    chunked = encode_episode(tok, frames, torch.device("cpu"), chunk=3)
    assert np.array_equal(chunked, whole)


def test_the_prior_stage_encodes_with_sticky_codes_and_resumes_only_so(hg_dataset, tmp_path):
    from worldmodel.checkpoint import CheckpointError
    from worldmodel.training.loop import Runtime, TrainConfig
    from worldmodel.training.run import train_prior, train_tokenizer
    from worldmodel.world_model import WorldModel

    cpu = Runtime(torch.device("cpu"))
    quick = TrainConfig(steps=2, batch_size=2, lr=1e-3, warmup=1, eval_every=100, save_every=2)
    args = ("health_gathering", hg_dataset, tmp_path, "tiny")
    train_tokenizer(*args, quick, cpu, progress=False)
    train_prior(*args, quick, cpu, ["vqvae.sticky=4"], progress=False, starts=2)
    model = WorldModel.load(tmp_path / "worldmodel.pt")
    assert model.tokenizer.config.sticky == 4.0  # its dreams start from sticky codes too
    longer = dataclasses.replace(quick, steps=4)
    codes = (tmp_path / "codes_train.npz").stat().st_mtime_ns
    with pytest.raises(CheckpointError, match=r"pass --set vqvae.sticky=4"):
        train_prior(*args, longer, cpu, [], resume=True, progress=False, starts=2)
    assert (tmp_path / "codes_train.npz").stat().st_mtime_ns == codes  # refused before encoding
    train_prior(*args, longer, cpu, ["vqvae.sticky=4"], resume=True, progress=False, starts=2)


def test_cached_codes_of_another_tokenizer_with_the_same_step_are_encoded_again(
    hg_dataset: Path, tmp_path: Path
) -> None:
    """A tokenizer copied in from another run (same step, same config) makes other codes: the
    cache must not hand back the old run's."""
    from worldmodel.data.codes import cached_codes

    cpu = torch.device("cpu")
    torch.manual_seed(0)
    first = VQVAE(VQVAE_PRESETS["tiny"]).eval()
    tok_id = {"step": 100, "config": {"preset": "tiny"}}
    args = (hg_dataset, "health_gathering", "val", tmp_path, cpu, False)
    before = cached_codes(first, tok_id, *args)
    again = cached_codes(first, tok_id, *args)
    assert again.meta == before.meta  # the same tokenizer reads its cache back
    other = VQVAE(VQVAE_PRESETS["tiny"]).eval()
    with torch.no_grad():
        other.quantizer.codebook.copy_(first.quantizer.codebook.flip(0))  # codes renumbered
    after = cached_codes(other, tok_id, *args)
    assert after.meta["codebook"] != before.meta["codebook"]
    assert not np.array_equal(after.codes, before.codes)
