from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from agents import SCENARIOS, UnknownEnvError, make_env
from agents.doom_env import _area_matrix, area_resize


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_env_passes_both_env_checkers(name: str) -> None:
    env = make_env(name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env, skip_render_check=True)
            sb3_check_env(env)
        obs, _ = env.reset(seed=1)
        assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
        assert len(env.unwrapped.action_names) == env.action_space.n
        assert env.unwrapped.action_names[0] == "noop"
    finally:
        env.close()


def test_health_gathering_actions_are_human_readable() -> None:
    env = make_env("health_gathering")
    assert env.action_names == (
        "noop",
        "forward",
        "turn_left",
        "turn_right",
        "forward_left",
        "forward_right",
    )
    env.close()


def test_death_is_terminated_and_timeout_is_truncated() -> None:
    hg = make_env("health_gathering")  # standing still in acid kills the player
    hg.reset(seed=0)
    while True:
        _, reward, term, trunc, _ = hg.step(0)
        if term or trunc:
            break
    assert term and not trunc and reward < 0
    hg.close()
    basic = make_env("basic")  # never shooting runs into the 300-tic timeout
    basic.reset(seed=0)
    steps = 0
    while True:
        _, _, term, trunc, _ = basic.step(0)
        steps += 1
        if term or trunc:
            break
    assert trunc and not term and steps == 300 // 4
    basic.close()


def test_same_seed_same_episode() -> None:
    def run(seed: int) -> np.ndarray:
        env = make_env("health_gathering")
        frames = [env.reset(seed=seed)[0]]
        for a in [1, 1, 2, 2, 5, 1, 4, 3] * 3:
            frames.append(env.step(a)[0])
        env.close()
        return np.stack(frames)

    np.testing.assert_array_equal(run(7), run(7))
    env = make_env("health_gathering", seed=7)  # seed at construction applies to first reset
    first, _ = env.reset()
    env.close()
    np.testing.assert_array_equal(first, run(7)[0])


def test_out_of_range_action_and_unknown_env_are_refused() -> None:
    env = make_env("take_cover")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside"):
        env.step(3)
    env.close()
    with pytest.raises(UnknownEnvError, match="health_gathering"):
        make_env("battle")


def test_area_resize_averages_areas() -> None:
    for n_in in (120, 160):
        np.testing.assert_allclose(_area_matrix(n_in, 64).sum(1), 1.0, rtol=1e-6)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (128, 128, 3)).astype(np.uint8)
    blocks = img.reshape(64, 2, 64, 2, 3).astype(np.float64).mean((1, 3))
    np.testing.assert_array_equal(area_resize(img), np.rint(blocks).astype(np.uint8))
    flat = np.full((120, 160, 3), 77, dtype=np.uint8)
    np.testing.assert_array_equal(area_resize(flat), np.full((64, 64, 3), 77, dtype=np.uint8))
