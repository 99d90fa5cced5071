"""The frame-parallel prior: causality, cached dreaming equals the full pass, the rolling
window, state tokens, and the training windows' alignment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worldmodel.config import VQVAE_PRESETS, FramePriorConfig
from worldmodel.data.codes import CodeSet
from worldmodel.data.frame_windows import frame_batch, window_starts
from worldmodel.frames import to_model
from worldmodel.game_state import GameRules, GameState
from worldmodel.prior.frame import FramePrior
from worldmodel.prior.ring_cache import RingKVCache
from worldmodel.sampling.frame import FrameDreamer
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.tokenizer.vqvae import VQVAE

GAME = GameState(("HEALTH",), GameRules(1.0, 100.0, 4, 2100))


def tiny(
    window: int = 4, codebook: bool = True, state: bool = True, game: GameState = GAME, **kw
) -> tuple[VQVAE, FramePrior]:
    torch.manual_seed(0)
    tok = VQVAE(VQVAE_PRESETS["tiny"]).eval()
    config = FramePriorConfig(
        n_codes=tok.config.n_codes,
        steps=window,
        height=8,
        width=8,
        state_vocab=game.vocab if state else (),
        d_model=32,
        n_layers=2,
        n_heads=2,
        n_actions=6,
        action_dim=8,
        codebook_dim=tok.config.code_dim if codebook else 0,
        **kw,
    )
    prior = FramePrior(config).eval()
    with torch.no_grad():  # conditional norms start as identity: give every weight a value
        for p in prior.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    if codebook:
        prior.set_codebook(tok.quantizer.codebook)
    return tok, prior


def episode(t: int = 9, b: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (b, t, 64, 64, 3), dtype=np.uint8)
    actions = rng.integers(0, 6, (b, t))
    variables = rng.integers(1, 100, (b, t, 1)).astype(np.float32)
    return frames, actions, variables


def test_a_block_never_sees_later_blocks_or_later_actions() -> None:
    _, prior = tiny(window=8)
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, prior.config.n_codes, (2, 6, 8, 8), generator=g)
    state = torch.randint(0, 100, (2, 6, 1), generator=g)
    acts = torch.randint(0, 6, (2, 6, 1), generator=g)
    out = prior(codes, state, acts)
    later = codes.clone()
    later[:, 4:] = (later[:, 4:] + 1) % prior.config.n_codes
    acts2 = acts.clone()
    acts2[:, 4] = (acts2[:, 4] + 1) % 6
    changed = prior(later, state, acts2)
    torch.testing.assert_close(changed.code_logits[:, :4], out.code_logits[:, :4])
    torch.testing.assert_close(changed.state_logits[0][:, :4], out.state_logits[0][:, :4])
    assert not torch.allclose(changed.code_logits[:, 4:], out.code_logits[:, 4:])


@pytest.mark.parametrize(
    "context,group,copy", [(2, 1, False), (4, 1, False), (5, 1, False), (4, 2, False), (4, 2, True)]
)
def test_cached_dream_steps_equal_the_full_pass(context: int, group: int, copy: bool) -> None:
    """Teacher-forced through the dreamer (ring cache, one pass per step) = one full pass over
    the whole sequence, including after the window (4 blocks) starts rolling. (A start keeps
    at most ``steps`` blocks, so with more context than that the first steps would differ.)
    ``group`` 2: tokens of 2x2 codes; ``copy``: the last code's logit bonus."""
    tok, prior = tiny(window=4, codebook=group == 1, group=group, copy_logit=copy)
    frames, actions, variables = episode()
    actions[:, 0] = 3  # mid-episode: the first frame is context only
    codes = tok.encode(to_model(frames))
    state = torch.as_tensor(GAME.quantize(variables))
    dreamer = FrameDreamer(tok, prior, GAME, 2, SamplingConfig(temperature=0))
    dreamer.start(frames[:, :context], actions[:, :context], variables[:, :context])
    seen = []
    real_sample = dreamer_sampler_spy(seen)
    for t in range(context, frames.shape[1]):
        with real_sample:
            dreamer.step(actions[:, t])
        with torch.inference_mode():  # teacher forcing: the real step becomes the input
            dreamer.codes[:, -1] = codes[:, t]
            dreamer.state[:, 0] = state[:, t, 0]
        full = prior(codes[:, :t], state[:, :t], torch.as_tensor(actions[:, 1 : t + 1])[..., None])
        torch.testing.assert_close(
            seen[0], full.code_logits[:, -1].reshape(-1, 32), atol=1e-5, rtol=0
        )
        torch.testing.assert_close(seen[1], full.state_logits[0][:, -1], atol=1e-5, rtol=0)
        seen.clear()


def test_grouped_tokens_read_and_predict_their_own_block_of_codes() -> None:
    _, prior = tiny(codebook=False, group=2)  # an 8x8 grid in 16 tokens of 2x2 codes
    codes = torch.randint(0, 32, (1, 1, 64))
    changed = codes.clone()
    changed[0, 0, 3 * 8 + 5] = (changed[0, 0, 3 * 8 + 5] + 1) % 32  # row 3, column 5
    diff = (prior._embed_codes(changed) - prior._embed_codes(codes)).abs().sum(-1)[0, 0]
    assert diff.nonzero().flatten().tolist() == [1 * 4 + 2]  # token row 1, column 2
    token = torch.arange(16.0).view(1, 1, 16, 1, 1)
    place = torch.arange(4.0).view(1, 1, 1, 4, 1)
    logits = (10 * token + place).expand(1, 1, 16, 4, 32).reshape(1, 1, 16, 128)
    out = prior._ungroup(logits)[0, 0, :, 0].view(8, 8)
    for r, c in ((0, 0), (3, 5), (7, 6)):
        assert out[r, c] == 10 * ((r // 2) * 4 + c // 2) + (r % 2) * 2 + c % 2


@pytest.mark.parametrize("group", [1, 2])
def test_copy_logit_lifts_each_place_s_last_code_and_nothing_after_bos(group: int) -> None:
    _, prior = tiny(codebook=False, group=group, copy_logit=True)
    with torch.no_grad():
        prior.copy_gate.weight.zero_()
        prior.copy_gate.bias.copy_(torch.arange(1.0, group * group + 1))  # a bonus per place
    g = torch.Generator().manual_seed(0)
    last = torch.randint(0, 32, (2, 3, 64), generator=g)
    last[:, 0] = prior.config.n_codes  # BOS: nothing to keep
    hidden = torch.randn(2, 3, prior.config.slots, 32, generator=g)
    with torch.no_grad():
        with_copy = prior.logits(hidden, last)[0]
    prior.copy_gate = None
    with torch.no_grad():
        plain = prior.logits(hidden)[0]
    bonus = with_copy - plain
    assert bonus[:, 0].abs().max() == 0
    rows, cols = torch.arange(64) // 8, torch.arange(64) % 8
    expect = (rows % group) * group + cols % group + 1.0  # the bias of each place in its group
    picked = bonus[:, 1:].gather(-1, last[:, 1:, :, None])[..., 0]
    torch.testing.assert_close(picked, expect.expand_as(picked))
    assert bonus[:, 1:].abs().sum() == pytest.approx(picked.sum().item(), rel=1e-5)


def test_a_copy_logit_prior_refuses_logits_without_the_last_codes() -> None:
    _, prior = tiny(codebook=False, copy_logit=True)
    with pytest.raises(ValueError, match="codes of the step before"):
        prior.logits(torch.zeros(1, 1, prior.config.slots, 32))


class dreamer_sampler_spy:
    """Records the logits the dreamer samples from (code logits, then each state's)."""

    def __init__(self, seen: list) -> None:
        self.seen = seen

    def __enter__(self) -> None:
        import worldmodel.sampling.frame as codes
        import worldmodel.sampling.state as state

        self.modules, self.orig = (codes, state), codes.sample_logits

        def spy(logits, config, generator, previous=None):
            self.seen.append(logits.clone())
            return self.orig(logits, config, generator, previous)

        for module in self.modules:
            module.sample_logits = spy

    def __exit__(self, *exc) -> None:
        for module in self.modules:
            module.sample_logits = self.orig


def test_long_dreams_keep_constant_memory_and_the_same_cache() -> None:
    tok, prior = tiny(window=4)
    frames, actions, variables = episode(t=4)
    dreamer = FrameDreamer(
        tok, prior, GAME, 2, SamplingConfig(temperature=1.0), torch.Generator().manual_seed(0)
    )
    dreamer.start(frames, actions, variables)
    keys = dreamer.cache.keys
    for _ in range(40):
        out = dreamer.step(np.array([1, 2]))
    assert dreamer.cache.keys is keys and dreamer.codes.shape[1] == dreamer.history
    assert out.frames.shape == (2, 1, 64, 64, 3) and out.variables.shape == (2, 1)
    assert (dreamer.cache.age >= 0).sum(1).tolist() == [4, 4]


def test_restarting_one_row_leaves_the_other_untouched() -> None:
    tok, prior = tiny(window=4)
    frames, actions, variables = episode(t=6, b=2)
    a = FrameDreamer(tok, prior, GAME, 2, SamplingConfig(temperature=0))
    a.start(frames, actions, variables)
    a.step(np.array([1, 1]))
    b = FrameDreamer(tok, prior, GAME, 2, SamplingConfig(temperature=0))
    b.start(frames, actions, variables)
    b.step(np.array([1, 1]))
    other, o_act, o_var = episode(t=a.context_frames, b=1, seed=5)
    b.start(other, o_act, o_var, rows=[1])
    out_a, out_b = a.step(np.array([2, 2])), b.step(np.array([2, 2]))
    np.testing.assert_array_equal(out_a.frames[0], out_b.frames[0])
    assert not np.array_equal(out_a.frames[1], out_b.frames[1])


def test_streamed_decode_gives_the_frames_of_decoding_the_window() -> None:
    tok, prior = tiny(window=4)
    frames, actions, variables = episode(t=6, b=2)
    other, o_act, o_var = episode(t=6, b=1, seed=5)
    outs = []
    for streaming in (True, False):
        dreamer = FrameDreamer(tok, prior, GAME, 2, SamplingConfig(temperature=0))
        dreamer.streaming = streaming
        dreamer.start(frames, actions, variables)
        got = []
        for t in range(3 * tok.stream_window):  # well past the decoder's window
            if t == 5:  # a restarted row primes its stream from the new history
                dreamer.start(other, o_act, o_var, rows=[1])
            got.append(dreamer.step(np.array([t % 6, (t + 1) % 6])).frames)
        outs.append(np.concatenate(got, 1).astype(int))
    assert np.abs(outs[0] - outs[1]).max() <= 1  # float rounding at uint8 boundaries


def test_state_drives_reward_and_death() -> None:
    values = np.array([[50.0], [0.0], [-4.0]])
    assert GAME.dead(values).tolist() == [False, True, True]
    np.testing.assert_allclose(GAME.reward(values), [4.0, -96.0, -96.0])
    assert GAME.quantize(np.array([[-4.0], [250.0]])).tolist() == [[0], [200]]
    assert GAME.dequantize(GAME.quantize(values)).tolist() == [[50.0], [0.0], [0.0]]


def test_ring_cache_ages_and_evicts() -> None:
    cache = RingKVCache(1, 1, 1, blocks=3, slots=2, head_dim=1)
    k = [torch.arange(4.0).view(2, 1, 2, 1)]  # 2 blocks of context
    cache.fill(torch.tensor([0]), k, k)
    assert cache.age.tolist() == [[-1, 1, 0]]  # the ring's next slot is 0
    ages = []
    for _ in range(3):
        cache.begin_step()
        ages.append(cache.age.tolist()[0])
        cache.end_step()
    assert ages == [[0, 2, 1], [1, 0, 2], [2, 1, 0]]


def test_training_windows_align_inputs_targets_and_actions() -> None:
    """obs[t], a[t] -> obs[t+1]: block j reads step p+j-1 (BOS at an episode start), is
    conditioned on the action into step p+j and predicts step p+j."""
    n = 6
    codes = CodeSet(
        codes=np.arange(n)[:, None, None].repeat(8, 1).repeat(8, 2).astype(np.int16),
        actions=np.array([[-1], [1], [2], [3], [4], [5]], dtype=np.int16),
        rewards=np.zeros(n, np.float32),
        dones=np.zeros(n, bool),
        variables=np.array([[92], [92], [84], [84], [76], [0]], np.float32),
        starts=np.array([0]),
        lengths=np.array([n]),
        episodes=np.array([7]),
        meta={},
    )
    assert window_starts(codes, 4).tolist() == [0, 1, 2]
    b = frame_batch(codes, np.array([0, 2]), 4, GAME, n_codes=32)
    assert b.in_codes[0, :, 0, 0].tolist() == [32, 0, 1, 2]  # BOS, then the step before
    assert b.codes[0, :, 0, 0].tolist() == [0, 1, 2, 3]
    assert b.actions[0, :, 0].tolist() == [-1, 1, 2, 3]
    assert b.valid[0].tolist() == [False, True, True, True]
    assert b.in_state[1, :, 0].tolist() == [92, 84, 84, 76] and b.state[1, :, 0].tolist() == [
        84,
        84,
        76,
        0,
    ]
    assert GAME.dead(GAME.dequantize(b.state[1])).tolist() == [False, False, False, True]


def test_copy_unchanged_keeps_pixels_only_where_codes_and_neighbours_stayed() -> None:
    tok, prior = tiny(window=4)
    dreamer = FrameDreamer(tok, prior, GAME, 1, SamplingConfig(copy_unchanged=True))
    dreamer.shown = np.full((1, 64, 64, 3), 7, np.uint8)
    decoded = np.full((1, 1, 64, 64, 3), 200, np.uint8)
    prev = torch.zeros(1, 8, 8, dtype=torch.long)
    new = prev.clone()
    new[0, 3, 5] = 1  # one code changed: its 3x3 neighbourhood is redrawn
    out = dreamer._copy_unchanged(decoded, prev, new)[0, 0, :, :, 0]
    redrawn = np.zeros((64, 64), bool)
    redrawn[16:40, 32:56] = True  # rows 2-4, columns 4-6 of the 8x8 codes
    np.testing.assert_array_equal(out[redrawn], 200)
    np.testing.assert_array_equal(out[~redrawn], 7)
    np.testing.assert_array_equal(dreamer.shown[0, :, :, 0], out)


def test_state_change_odds_scale_the_odds_of_a_change_and_keep_which_change() -> None:
    """Bins: the current one 0.9, bin 10 0.075, bin 20 0.025. Odds of 9 make a change as likely
    as none (0.1 / 0.9 * 9 = 1), and keep bin 10 three times as likely as bin 20."""
    tok, prior = tiny()
    probs = torch.full((8, GAME.vocab[0]), 1e-12)
    probs[:, 50], probs[:, 10], probs[:, 20] = 0.9, 0.075, 0.025
    logits = probs.log()

    def draws(sampling: SamplingConfig) -> np.ndarray:
        dreamer = FrameDreamer(tok, prior, GAME, 8, sampling, torch.Generator().manual_seed(0))
        dreamer.state[:] = 50
        return torch.cat([dreamer._sample_state(logits, 0) for _ in range(500)]).numpy()

    plain, boosted = draws(SamplingConfig()), draws(SamplingConfig(state_change_odds=9.0))
    assert abs(np.mean(plain != 50) - 0.1) < 0.02
    assert abs(np.mean(boosted != 50) - 0.5) < 0.03
    assert 2.4 < np.sum(boosted == 10) / np.sum(boosted == 20) < 3.7
    greedy = draws(SamplingConfig(temperature=0, state_change_odds=20.0))
    assert (greedy == 10).all()  # 0.075 * 20 > 0.9


def test_state_change_odds_raise_health_alone_in_a_game_with_a_gun() -> None:
    """Ammo and kills keep the model's odds: more hits, but no shots or kills from nowhere."""
    game = GameState(("AMMO2", "HEALTH", "KILLCOUNT"), GameRules(0.0, 1.0, 4, 2100, 1.0))
    tok, prior = tiny(game=game)
    probs = torch.full((8, 201), 1e-12)
    probs[:, 50], probs[:, 10] = 0.9, 0.1
    logits = probs.log()
    sampling = SamplingConfig(state_change_odds=9.0)
    dreamer = FrameDreamer(tok, prior, game, 8, sampling, torch.Generator().manual_seed(0))
    dreamer.state[:] = 50

    def changed(v: int) -> float:
        draws = torch.cat([dreamer._sample_state(logits, v) for _ in range(400)])
        return float((draws != 50).float().mean())

    assert abs(changed(0) - 0.1) < 0.03 and abs(changed(2) - 0.1) < 0.03  # AMMO2, KILLCOUNT
    assert abs(changed(1) - 0.5) < 0.04  # HEALTH


@pytest.mark.parametrize("reveal", [False, True])
def test_keep_likely_holds_a_dream_still_or_leaves_it_alone(reveal: bool) -> None:
    """keep_likely ~0 keeps every code of the last step (a frozen dream, in one pass or in a
    reveal prior's 4); at 1 it keeps none, so the dream is the one drawn without the
    rule from the same seed (at 1 only a code the model is certain of would be kept)."""
    tok, prior = tiny(window=4, reveal=reveal)
    frames = np.random.default_rng(0).integers(0, 256, (2, 2, 64, 64, 3), dtype=np.uint8)
    actions = np.array([[-1, 1], [-1, 2]])
    variables = np.full((2, 2, 1), 80.0, np.float32)

    def codes(sampling: SamplingConfig) -> list[torch.Tensor]:
        dreamer = FrameDreamer(tok, prior, GAME, 2, sampling, torch.Generator().manual_seed(1))
        dreamer.start(frames, actions, variables)
        first = dreamer.codes[:, -1].clone()
        return [first] + [dreamer.step(np.array([[1], [3]])).codes for _ in range(3)]

    frozen = codes(SamplingConfig(keep_likely=1e-12))
    assert all(torch.equal(c, frozen[0]) for c in frozen[1:])
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            codes(SamplingConfig(keep_likely=1.0)), codes(SamplingConfig()), strict=True
        )
    )


def test_dynamics_carry_over_to_a_prior_over_finer_codes_in_grouped_tokens() -> None:
    """--init-dynamics: an 8x8 prior's weights start a prior over 16x16 codes in 2x2 tokens,
    all but what reads or writes the codes; another token grid is refused."""
    from worldmodel.checkpoint import CheckpointError
    from worldmodel.training.prior_init import CODE_WEIGHTS, load_dynamics_weights

    _, old = tiny(codebook=False)
    fine = FramePriorConfig(**{**vars(old.config), "height": 16, "width": 16, "group": 2})
    new = FramePrior(fine)
    blob = {"kind": "prior", "model": old.state_dict()}
    fresh = load_dynamics_weights(new, blob)
    assert fresh and all(k.startswith(CODE_WEIGHTS) for k in fresh)
    for key, value in old.state_dict().items():
        if not key.startswith(CODE_WEIGHTS):
            assert torch.equal(new.state_dict()[key], value), key
    coarse = FramePriorConfig(**{**vars(old.config), "height": 16, "width": 16})  # 256 tokens
    with pytest.raises(CheckpointError, match="token grid"):
        load_dynamics_weights(FramePrior(coarse), blob)
