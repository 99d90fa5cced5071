"""Iterative decoding of the frame prior (``reveal``): training masks, the loss, the dreamer's
passes, and fine-tuning a prior trained without it (``--init-prior``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.test_frame_prior import GAME, dreamer_sampler_spy, episode, tiny
from worldmodel.checkpoint import load_checkpoint
from worldmodel.cli.args import UserError
from worldmodel.data.frame_windows import ALL_REVEALED, NONE_REVEALED, reveal
from worldmodel.frames import to_model
from worldmodel.prior.frame import FramePrior
from worldmodel.sampling.frame import REVEAL_PASSES, FrameDreamer
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.training.prior_init import load_init_weights, provide_tokenizer


def inputs(prior: FramePrior, t: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    k = prior.config.n_codes
    prev = torch.randint(0, k, (2, t, 8, 8), generator=g)
    own = torch.randint(0, k, (2, t, 8, 8), generator=g)
    state = torch.randint(0, 100, (2, t, 1), generator=g)
    acts = torch.randint(0, 6, (2, t, 1), generator=g)
    return prev, own, state, acts


def test_a_fine_tune_starts_as_the_prior_it_starts_from() -> None:
    """The reveal embedding starts at zero: copied into a reveal prior, a prior trained
    without it predicts the same, whatever is revealed."""
    _, plain = tiny(window=4, codebook=False)
    revealing = FramePrior(dataclasses.replace(plain.config, reveal=True))
    assert load_init_weights(revealing, {"kind": "prior", "model": plain.state_dict()}) == [
        "reveal_emb.weight"
    ]
    prev, own, state, acts = inputs(plain)
    with torch.no_grad():
        want = plain(prev, state, acts).code_logits
        got = revealing.eval()(prev, state, acts, current=own).code_logits
    torch.testing.assert_close(got, want)


def test_init_refuses_a_prior_of_another_size() -> None:
    _, small = tiny(window=4, codebook=False)
    _, other = tiny(window=8)  # another window: another time bias
    with pytest.raises(ValueError, match="another size or kind"):
        load_init_weights(small, {"kind": "prior", "model": other.state_dict()})


def test_revealed_codes_inform_their_block_not_earlier_ones_and_leave_the_loss() -> None:
    _, prior = tiny(window=8, codebook=False, reveal=True)
    prev, own, state, acts = inputs(prior)
    mask_id = prior.mask_id
    hidden = torch.full_like(own, mask_id)
    shown = hidden.clone()
    shown[:, 3] = own[:, 3]
    shown[:, 3, 0, 0] = mask_id  # block 3: everything shown but one place
    with torch.no_grad():
        a = prior(prev, state, acts, current=hidden)
        b = prior(prev, state, acts, current=shown, targets=(own, state))
    torch.testing.assert_close(b.code_logits[:, :3], a.code_logits[:, :3])
    assert not torch.allclose(b.code_logits[:, 3, 0], a.code_logits[:, 3, 0])
    # the loss: only hidden places count (all of blocks 0-2 and 4, one place of block 3)
    ce = torch.nn.functional.cross_entropy(
        b.code_logits.flatten(0, 2), own.reshape(-1), reduction="none"
    ).view(2, 5, 64)
    weight = (shown == mask_id).reshape(2, 5, 64).float()
    torch.testing.assert_close(b.terms["ce"], (ce * weight).sum() / weight.sum())


def test_training_masks_hide_a_share_of_each_block_and_keep_the_rest() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 32, (64, 32, 8, 8))
    out = reveal(codes, 32, rng)
    hidden = (out == 32).reshape(64, 32, 64)
    assert (out[out != 32] == codes[out != 32]).all()
    share = hidden.mean(-1)
    assert abs((share == 1).mean() - NONE_REVEALED - 0.0) < 0.08  # (+ rare full draws)
    assert abs((share == 0).mean() - ALL_REVEALED) < 0.04
    middle = share[(share > 0) & (share < 1)]
    assert 0.5 < middle.mean() < 0.75  # E[cos(pi/2 u)] = 2/pi


def test_passes_need_a_reveal_prior() -> None:
    tok, plain = tiny(window=4)
    with pytest.raises(ValueError, match="without reveal"):
        FrameDreamer(tok, plain, GAME, 1, SamplingConfig(passes=2))
    tok, prior = tiny(window=4, reveal=True)
    with pytest.raises(ValueError, match="at least 1"):
        FrameDreamer(tok, prior, GAME, 1, SamplingConfig(passes=0))


def test_one_pass_dreams_equal_the_full_pass_with_real_steps_revealed() -> None:
    """Context blocks from real frames are fully revealed; a dreamed block's cached keys are
    those of its (only) pass, all hidden, even after teacher forcing replaces its codes."""
    tok, prior = tiny(window=4, reveal=True)
    frames, actions, variables = episode()
    actions[:, 0] = 3
    codes = tok.encode(to_model(frames))
    state = torch.as_tensor(GAME.quantize(variables))
    context = 3
    dreamer = FrameDreamer(tok, prior, GAME, 2, SamplingConfig(temperature=0, passes=1))
    dreamer.start(frames[:, :context], actions[:, :context], variables[:, :context])
    seen: list = []
    for t in range(context, frames.shape[1]):
        with dreamer_sampler_spy(seen):
            dreamer.step(actions[:, t])
        with torch.inference_mode():
            dreamer.codes[:, -1] = codes[:, t]
            dreamer.state[:, 0] = state[:, t, 0]
        current = torch.full_like(codes[:, 1 : t + 1], prior.mask_id)
        current[:, : context - 1] = codes[:, 1:context]
        with torch.no_grad():
            full = prior(
                codes[:, :t],
                state[:, :t],
                torch.as_tensor(actions[:, 1 : t + 1])[..., None],
                current=current,
            )
        torch.testing.assert_close(
            seen[0], full.code_logits[:, -1].reshape(-1, 32), atol=1e-5, rtol=0
        )
        seen.clear()


@pytest.mark.parametrize("passes", [2, 4])
def test_each_pass_keeps_what_earlier_passes_committed(passes: int) -> None:
    tok, prior = tiny(window=4, reveal=True)
    frames, actions, variables = episode()
    dreamer = FrameDreamer(tok, prior, GAME, 2, SamplingConfig(temperature=1, passes=passes))
    dreamer.start(frames[:, :3], actions[:, :3], variables[:, :3])
    drawn: list = []
    with dreamer_sampler_spy(drawn):
        out = dreamer.step(actions[:, 3])
    code_draws = [x for x in drawn if x.shape[-1] == 32]
    assert len(code_draws) == passes  # one draw of every code per pass, then the state's
    assert out.codes.shape == (2, 8, 8)
    assert ((out.codes >= 0) & (out.codes < 32)).all()
    # the ring holds one new block, however many passes wrote it
    assert (dreamer.cache.age == 0).sum(-1).tolist() == [1, 1]


def test_init_writes_the_models_tokenizer_and_refuses_another(tmp_path) -> None:
    tok, _ = tiny(window=4, reveal=True)
    blob = {
        "kind": "worldmodel",
        "env": "health_gathering",
        "action_names": ["a"] * 6,
        "tokenizer": {"config": {"n_codes": 32}, "model": tok.state_dict(), "step": 7},
    }
    path = tmp_path / "vqvae.pt"
    provide_tokenizer(blob, path)
    assert load_checkpoint(path, "vqvae", "health_gathering")["step"] == 7
    provide_tokenizer(blob, path)  # the same tokenizer: accepted
    blob["tokenizer"]["step"] = 8  # trained on, same codes (e.g. a fine-tuned decoder): accepted
    provide_tokenizer(blob, path)
    other = {k: v.clone() for k, v in tok.state_dict().items()}
    encoder_key = next(
        k for k in other if k.startswith("encoder.") and other[k].is_floating_point()
    )
    other[encoder_key] += 1.0  # another encoder: other codes
    blob["tokenizer"]["model"] = other
    with pytest.raises(UserError, match="not the tokenizer"):
        provide_tokenizer(blob, path)


def test_a_reveal_prior_draws_in_its_default_passes_unless_told() -> None:
    tok, prior = tiny(window=4, reveal=True)
    assert FrameDreamer(tok, prior, GAME, 1).sampling.passes == REVEAL_PASSES
    assert FrameDreamer(tok, prior, GAME, 1, SamplingConfig(passes=1)).sampling.passes == 1
    tok, plain = tiny(window=4)
    assert FrameDreamer(tok, plain, GAME, 1).sampling.passes == 1
