from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from worldmodel.config import PRIOR_PRESETS, VQVAE_PRESETS, PriorConfig, prior_config_for
from worldmodel.data.codes import step_arrays
from worldmodel.prior.kv_cache import KVCache
from worldmodel.prior.raster import Prior
from worldmodel.sampling.draw import sample_logits
from worldmodel.sampling.raster import Dreamer
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.tokenizer.vqvae import VQVAE

VQ = VQVAE_PRESETS["tiny"]


def tiny_prior(**changes) -> Prior:
    torch.manual_seed(0)
    config = prior_config_for(PRIOR_PRESETS["tiny"], VQ, n_actions=6)
    return Prior(dataclasses.replace(config, **changes)).eval()


def randomized(prior: Prior) -> Prior:
    """The conditional norms start as identity (zero init): give every weight some value so
    that tests see actions act."""
    with torch.no_grad():
        for p in prior.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return prior


def batch(config: PriorConfig, b: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t, h, w, s = config.steps, config.height, config.width, config.actions_per_step
    codes = torch.randint(0, config.n_codes, (b, t, h, w), generator=g)
    actions = torch.randint(0, config.n_actions, (b, t, s), generator=g)
    actions[:, 0] = -1
    return codes, actions


def test_later_codes_and_actions_never_change_earlier_logits() -> None:
    prior = randomized(tiny_prior())
    codes, actions = batch(prior.config)
    logits = prior(codes, actions).logits
    hw = prior.config.tokens_per_step
    p = 2 * hw + 5  # a position in step 2
    later = codes.clone().view(2, -1)
    later[:, p:] = (later[:, p:] + 1) % prior.config.n_codes
    changed = prior(later.view_as(codes), actions).logits
    torch.testing.assert_close(changed[:, : p + 1], logits[:, : p + 1])  # p's input is code p-1
    assert not torch.allclose(changed[:, p + 1 :], logits[:, p + 1 :])
    acts = actions.clone()
    acts[:, 3] = (acts[:, 3] + 1) % 6  # the action into step 3
    changed = prior(codes, acts).logits
    torch.testing.assert_close(changed[:, : 3 * hw], logits[:, : 3 * hw])
    assert not torch.allclose(changed[:, 3 * hw :], logits[:, 3 * hw :])


@pytest.mark.parametrize("frame_cond", [False, True])
def test_cached_decoding_equals_the_full_pass(frame_cond: bool) -> None:
    prior = randomized(tiny_prior(frame_cond=frame_cond))
    c = prior.config
    codes, actions = batch(c)
    frames = torch.rand(2, 1, 3, 64, 64) - 0.5 if frame_cond else None
    full = prior(codes, actions, frames).logits
    frame = prior.frame_vector(frames)
    flat = codes.view(2, -1)
    inputs = torch.cat([torch.full((2, 1), prior.bos), flat[:, :-1]], 1)
    cond = prior.condition(actions)
    hw, split = c.tokens_per_step, 2 * c.tokens_per_step
    cache = KVCache(c.n_layers, 2, c.n_heads, c.block_size, c.d_model // c.n_heads)
    positions = prior.position_table()
    with torch.no_grad():
        hidden = [prior.run(inputs[:, :split], 0, prior.norm_params(cond[:, :2]), frame, cache)]
        for p in range(split, c.block_size):
            norms = prior.norm_params(cond[:, p // hw : p // hw + 1])
            hidden.append(
                prior.decode_step(inputs[:, p : p + 1], p, norms, frame, cache, positions)[:, None]
            )
    torch.testing.assert_close(prior.head(torch.cat(hidden, 1)), full, atol=1e-5, rtol=1e-4)


def test_step_actions_are_the_actions_into_each_steps_frames() -> None:
    # frame-aligned arrays as EpisodeStore.read gives them: actions[i] led into frame i
    item = {
        "actions": np.array([-1, 10, 11, 12, 13, 14, 15, 16]),
        "rewards": np.arange(8.0),
        "terminated": np.array([0, 0, 0, 0, 0, 0, 0, 1], dtype=bool),
    }
    one = step_arrays(item, 1)
    np.testing.assert_array_equal(one["actions"][:, 0], item["actions"])
    two = step_arrays(item, 2)  # step j covers frames 2j, 2j+1: actions a[2j-1], a[2j]
    np.testing.assert_array_equal(two["actions"], [[-1, 10], [11, 12], [13, 14], [15, 16]])
    np.testing.assert_array_equal(two["rewards"], [1.0, 5.0, 9.0, 13.0])
    np.testing.assert_array_equal(two["dones"], [False, False, False, True])


def _train_on_action_world(prior: Prior, steps: int = 120) -> None:
    """Codes of step t all equal the id of the action into step t (t >= 1): only a prior that
    aligns actions with the frames they produce can predict them."""
    c = prior.config
    prior.train()
    opt = torch.optim.Adam(prior.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        actions = torch.randint(0, c.n_actions, (16, c.steps, 1), generator=g)
        actions[:, 0] = -1
        codes = torch.randint(0, c.n_codes, (16, c.steps, c.height, c.width), generator=g)
        codes[:, 1:] = actions[:, 1:, :, None].expand(-1, -1, c.height, c.width)
        rewards = (actions[:, :, 0] == 1).float() * 10.0  # reward for action 1
        dones = actions[:, :, 0] == 5  # action 5 ends the episode
        out = prior(codes, actions, rewards=rewards, dones=dones)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    prior.eval()


def test_actions_steer_the_next_step_and_heads_train() -> None:
    prior = tiny_prior(height=2, width=2)  # few codes per step: the action's share of the loss
    _train_on_action_world(prior, steps=200)
    c = prior.config
    first = 2 * c.tokens_per_step  # first position of step 2
    probs = {}
    for a in range(6):
        actions = torch.full((1, c.steps, 1), 0)
        actions[:, 0] = -1
        actions[:, 2] = a
        codes = actions[:, :, :, None].clamp(min=0).expand(-1, -1, c.height, c.width)
        out = prior(codes, actions)
        probs[a] = out.logits[0, first].softmax(-1)
        assert int(probs[a].argmax()) == a  # the dream follows the key that was pressed
        reward = torch.sign(out.reward[0, 2]) * torch.expm1(out.reward[0, 2].abs())
        assert (reward > 5) == (a == 1)
        assert (torch.sigmoid(out.done_logit[0, 2]) > 0.5) == (a == 5)
    assert (probs[0] - probs[3]).abs().sum() > 1.0


def test_unconditional_prior_needs_no_actions() -> None:
    prior = tiny_prior(n_actions=0)
    codes, _ = batch(dataclasses.replace(prior.config, n_actions=6))
    out = prior(codes, None)
    assert out.logits.shape == (2, prior.config.block_size, prior.config.n_codes)
    assert prior.action_emb is None


def test_sampling_controls() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.5]])
    g = torch.Generator().manual_seed(0)
    assert int(sample_logits(logits, SamplingConfig(temperature=0))) == 1
    assert int(sample_logits(logits, SamplingConfig(top_k=1), g)) == 1
    assert int(sample_logits(logits, SamplingConfig(top_p=0.01), g)) == 1
    draws = [int(sample_logits(logits, SamplingConfig(top_k=2), g)) for _ in range(200)]
    assert set(draws) == {1, 3}
    hot = [int(sample_logits(logits, SamplingConfig(temperature=100.0), g)) for _ in range(400)]
    assert set(hot) == {0, 1, 2, 3}
    a = [
        int(sample_logits(logits, SamplingConfig(), torch.Generator().manual_seed(5)))
        for _ in range(3)
    ]
    assert len(set(a)) == 1  # the same generator seed gives the same draw


def test_keep_likely_keeps_the_previous_code_only_where_it_is_likely_enough() -> None:
    """Row 0 gives its previous code (2) probability ~0.5, row 1 gives its previous code (0)
    ~0.01: at keep_likely 0.3 row 0 always keeps it, row 1 draws as it would without the rule."""
    probs = torch.tensor([[0.25, 0.25, 0.5, 1e-9], [0.01, 0.33, 0.33, 0.33]])
    logits = probs.log()
    previous = torch.tensor([2, 0])
    keep = SamplingConfig(keep_likely=0.3)
    kept = [
        sample_logits(logits, keep, torch.Generator().manual_seed(i), previous) for i in range(50)
    ]
    plain = [
        sample_logits(logits, SamplingConfig(), torch.Generator().manual_seed(i)) for i in range(50)
    ]
    assert all(int(k[0]) == 2 for k in kept)
    assert [int(k[1]) for k in kept] == [int(p[1]) for p in plain]
    assert len({int(p[0]) for p in plain}) > 1  # without the rule row 0 moves
    unkept = sample_logits(logits, keep, torch.Generator().manual_seed(3))  # no previous codes
    assert torch.equal(unkept, plain[3])


def _dreamer(batch_size: int = 1, seed: int = 0) -> Dreamer:
    torch.manual_seed(0)
    tokenizer = VQVAE(VQ).eval()
    return Dreamer(
        tokenizer, tiny_prior(), batch_size, SamplingConfig(), torch.Generator().manual_seed(seed)
    )


def test_seeded_dreams_repeat_exactly() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (2, 2, 64, 64, 3), dtype=np.uint8)
    runs = []
    for _ in range(2):
        d = _dreamer(2, seed=3)
        d.start(frames, np.array([[-1, 1], [-1, 2]]))
        runs.append(np.stack([d.step(np.array([1, 4])).frames for _ in range(6)]))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_a_long_rollout_keeps_memory_and_context_bounded() -> None:
    d = _dreamer()
    frames = np.zeros((1, 1, 64, 64, 3), dtype=np.uint8)
    d.start(frames, np.array([[-1]]))
    ptr, cap = d.cache.keys.data_ptr(), d.cache.capacity

    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    lengths = set()
    for i in range(500):
        step = d.step(np.array([i % 6]))
        if i >= d.window:  # after the first slide
            lengths.add(d.in_window)
        if i == 100:
            before = rss_mb()
        assert step.frames.shape == (1, 1, 64, 64, 3)
    assert rss_mb() - before < 20
    assert d.cache.keys.data_ptr() == ptr and d.cache.capacity == cap
    assert d.codes.shape[1] <= d.history
    window, slide = d.window, d.slide
    assert lengths == set(range(window - slide + 1, window + 1))  # never below steps - slide


def test_dreamer_rejects_actions_outside_the_space() -> None:
    d = _dreamer()
    d.start(np.zeros((1, 1, 64, 64, 3), dtype=np.uint8), np.array([[-1]]))
    with pytest.raises(ValueError, match="actions must be in"):
        d.step(np.array([6]))
