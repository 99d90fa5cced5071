"""The dream as a gymnasium env: API checkers, seeded determinism, single = batched of one,
row restarts, refusals, registration, and PPO training inside a tiny dream."""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from agents import SCENARIOS, make_env
from agents.dream.vec import SB3DreamVecEnv
from tests.conftest import save_world_model
from worldmodel.checkpoint import CheckpointError
from worldmodel.config import PRIOR_PRESETS, VQVAE_PRESETS, prior_config_for
from worldmodel.data import DatasetError, EpisodeStore
from worldmodel.dream.env import SCENARIO_NAMES, DreamEnv, VecDreamEnv
from worldmodel.prior.raster import Prior
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.tokenizer.vqvae import VQVAE
from worldmodel.world_model import WorldModel

ENV_ID = "worldmodel/Dream-health_gathering-v0"
ACTIONS = ["noop", "forward", "turn_left", "turn_right", "forward_left", "forward_right"]


@pytest.fixture(scope="module")
def model() -> WorldModel:
    """A tiny random world model of health_gathering, every weight nudged so that actions and
    contexts change what it dreams."""
    torch.manual_seed(0)
    vq = VQVAE_PRESETS["tiny"]
    prior = Prior(prior_config_for(PRIOR_PRESETS["tiny"], vq, n_actions=len(ACTIONS)))
    with torch.no_grad():
        for p in prior.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return WorldModel(VQVAE(vq).eval(), prior.eval(), "health_gathering", ACTIONS)


@pytest.fixture(scope="module")
def checkpoint(model: WorldModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_world_model(model, tmp_path_factory.mktemp("wm") / "worldmodel.pt")


def rollout(env: DreamEnv, seed: int, actions: list[int]) -> list[tuple]:
    """(obs, reward, terminated, truncated) of a reset and of each step, resetting after ends."""
    obs, _ = env.reset(seed=seed)
    out = [(obs, 0.0, False, False)]
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(a)
        out.append((obs, reward, terminated, truncated))
        if terminated or truncated:
            out.append((env.reset()[0], 0.0, False, False))
    return out


def test_scenario_names_match_the_real_envs() -> None:
    assert tuple(SCENARIOS) == SCENARIO_NAMES
    assert all(f"worldmodel/Dream-{name}-v0" in gym.registry for name in SCENARIO_NAMES)


def test_dream_env_passes_both_env_checkers(checkpoint: Path, hg_dataset: Path) -> None:
    # Made through the registry, the env has a spec, so the checker also builds and renders it
    # in every render mode (the human window draws to SDL's dummy driver here).
    env = gym.make(ENV_ID, checkpoint=checkpoint, data=hg_dataset)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env.unwrapped)
            sb3_check_env(env.unwrapped)
    finally:
        env.close()


def test_seeded_dreams_repeat_exactly(model: WorldModel, hg_dataset: Path) -> None:
    env = DreamEnv(model, data=hg_dataset, max_steps=5)
    actions = [1, 4, 4, 2, 0, 5, 3, 1]
    first, again = rollout(env, 7, actions), rollout(env, 7, actions)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:] == b[1:]
    other = rollout(env, 8, actions)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=False))


def test_a_dream_starts_from_real_dataset_frames(model: WorldModel, hg_dataset: Path) -> None:
    env = DreamEnv(model, data=hg_dataset)
    obs, info = env.reset(seed=3)
    n = env.dreams.context_frames
    assert n == env.dreams.dreamer.history * model.frames_per_step
    store = EpisodeStore(hg_dataset, env="health_gathering")
    pos = [e.index for e in store.entries].index(info["episode"])
    real = store.read(pos, info["start"], info["start"] + n)["frames"]
    np.testing.assert_array_equal(obs, real[-1])
    assert info["start"] + n <= store.entries[pos].length  # never from an episode's last frame
    assert env.dreams.dreamer.context_frames == n


def test_single_dream_equals_a_batch_of_one(model: WorldModel, hg_dataset: Path) -> None:
    single = DreamEnv(model, data=hg_dataset, max_steps=3)
    batch = VecDreamEnv(model, num_envs=1, data=hg_dataset, max_steps=3)
    actions = [2, 1, 5, 0, 3, 4, 4, 1]
    expected = rollout(single, 11, actions)
    obs, _ = batch.reset(seed=11)
    got = [(obs[0], 0.0, False, False)]
    for a in actions:
        obs, reward, terminated, truncated, infos = batch.step(np.array([a]))
        ended = bool(terminated[0] or truncated[0])
        last = infos["final_obs"][0] if ended else obs[0]
        got.append((last, float(reward[0]), bool(terminated[0]), bool(truncated[0])))
        if ended:  # the batch restarted in the same step; the single env resets now
            got.append((obs[0], 0.0, False, False))
    assert len(got) == len(expected) and len(got) > len(actions) + 1  # episodes did end
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:] == b[1:]


def test_batched_dreams_restart_ended_rows_from_real_frames(
    model: WorldModel, hg_dataset: Path
) -> None:
    envs = VecDreamEnv(model, num_envs=4, data=hg_dataset, done_threshold=1.0)  # no ends
    envs.reset(seed=5)
    _, _, _, _, infos = envs.step(np.array([0, 1, 2, 3]))
    # The same seed replays the same first step: a threshold between its end probabilities
    # ends some rows and not others, so that rows restart one by one.
    probs = np.sort(infos["done_prob"])
    assert probs[0] < probs[-1]
    envs.dreams.done_threshold = float(probs[1] + probs[2]) / 2
    envs.reset(seed=5)
    obs, rewards, terminated, truncated, infos = envs.step(np.array([0, 1, 2, 3]))
    assert terminated.tolist().count(True) == 2 and not truncated.any()
    assert obs.shape == (4, 64, 64, 3) and obs.dtype == np.uint8
    assert rewards.shape == (4,) and rewards.dtype == np.float64
    store = EpisodeStore(hg_dataset, env="health_gathering")
    episodes = [e.index for e in store.entries]
    n = envs.dreams.dreamer.context_frames
    for i in range(4):
        if terminated[i]:
            assert infos["_final_obs"][i] and not infos["_done_prob"][i]
            assert infos["final_obs"][i].shape == (64, 64, 3)
            assert infos["final_info"]["_done_prob"][i]
            start = infos["start"][i]
            real = store.read(episodes.index(infos["episode"][i]), start, start + n)["frames"]
            np.testing.assert_array_equal(obs[i], real[-1])
        else:
            assert infos["_done_prob"][i] and not infos["_final_obs"][i]
    envs.dreams.done_threshold = 0.0  # now every row ends at every step: full restarts
    for t in range(3):
        obs, _, terminated, _, infos = envs.step(np.full(4, t))
        assert terminated.all() and obs.shape == (4, 64, 64, 3)
        assert infos["_episode"].all()


def test_actions_outside_the_space_are_refused(model: WorldModel, hg_dataset: Path) -> None:
    env = DreamEnv(model, data=hg_dataset)
    env.reset(seed=0)
    for bad in (6, -1, 1.0, "1", np.array([1])):
        with pytest.raises(ValueError, match="outside"):
            env.step(bad)
    envs = VecDreamEnv(model, num_envs=2, data=hg_dataset)
    envs.reset(seed=0)
    for bad in (np.array([0, 6]), np.array([0]), np.array([0.5, 1.0])):
        with pytest.raises(ValueError, match="outside"):
            envs.step(bad)


def test_bad_inputs_are_refused(model: WorldModel, checkpoint: Path, hg_dataset: Path) -> None:
    with pytest.raises(ValueError, match="pass data="):
        DreamEnv(model)
    with pytest.raises(DatasetError, match="holds 'health_gathering' data"):
        DreamEnv(dataclasses.replace(model, env="basic"), data=hg_dataset)
    with pytest.raises(CheckpointError, match="not 'basic'"):
        DreamEnv(checkpoint, data=hg_dataset, env="basic")
    with pytest.raises(CheckpointError, match="not 'basic'"):
        gym.make("worldmodel/Dream-basic-v0", checkpoint=checkpoint, data=hg_dataset)
    headless = save_world_model(model, checkpoint.parent / "headless.pt", heads=False)
    with pytest.raises(CheckpointError, match="no reward/termination heads"):
        DreamEnv(headless, data=hg_dataset)
    with pytest.raises(ValueError, match="context_frames must be"):
        DreamEnv(model, data=hg_dataset, context_frames=99)  # more than the dreamer keeps
    with pytest.raises(ValueError, match="num_envs=1"):
        VecDreamEnv(model, num_envs=2, real_env=gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="real_env has actions"):
        DreamEnv(model, real_env=gym.make("CartPole-v1"))
    for count in (2.5, "3", True):
        with pytest.raises(TypeError, match=f"num_envs must be a whole number .*{count!r}"):
            VecDreamEnv(model, num_envs=count, data=hg_dataset)
    with pytest.raises(ValueError, match="num_envs must be at least 1, got 0"):
        VecDreamEnv(model, num_envs=0, data=hg_dataset)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"temperature": -1.0}, "temperature must be at least 0 (0: greedy), got -1.0"),
        ({"temperature": float("nan")}, "temperature must be at least 0 (0: greedy), got nan"),
        ({"top_p": 0.0}, "top_p must be in (0, 1]"),
        ({"keep_likely": 1.5}, "keep_likely must be in [0, 1]"),
        ({"passes": 0}, "passes must be at least 1"),
        ({"state_change_odds": 0.0}, "state_change_odds must be greater than 0"),
        ({"state_temperature": -0.5}, "state_temperature must be at least 0"),
    ],
)
def test_a_sampling_no_dream_can_use_is_refused_by_name(setting: dict, message: str) -> None:
    """Not read as something else (a negative temperature as greedy decoding)."""
    with pytest.raises(ValueError, match=re.escape(f"SamplingConfig.{message}")):
        SamplingConfig(**setting)
    with pytest.raises(ValueError, match=re.escape(message)):
        dataclasses.replace(SamplingConfig(), **setting)


def test_registered_id_makes_the_saved_dream(
    model: WorldModel, checkpoint: Path, hg_dataset: Path
) -> None:
    made = gym.make(ENV_ID, checkpoint=checkpoint, data=hg_dataset, max_steps=4)
    actions = [1, 1, 3, 4, 0, 2]
    loaded = rollout(made, 2, actions)  # the checkpoint round trip dreams the same dream
    in_memory = rollout(DreamEnv(model, data=hg_dataset, max_steps=4), 2, actions)
    for a, b in zip(in_memory, loaded, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:] == b[1:]
    made.close()
    envs = gym.make_vec(ENV_ID, num_envs=3, checkpoint=checkpoint, data=hg_dataset)
    assert isinstance(envs, VecDreamEnv)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, 64, 64, 3)
    assert envs.step(np.array([0, 1, 2]))[0].shape == (3, 64, 64, 3)


def test_a_dream_starts_from_a_real_env_first_frame(model: WorldModel) -> None:
    real = make_env("health_gathering")
    try:
        env = DreamEnv(model, real_env=real)
        obs, info = env.reset(seed=4)
        first, _ = real.reset(seed=info["seed"])
        np.testing.assert_array_equal(obs, first)
        assert env.step(1)[0].shape == (64, 64, 3)
    finally:
        real.close()


def test_the_sb3_adapter_reports_ends_as_sb3_expects(model: WorldModel, hg_dataset: Path) -> None:
    venv = SB3DreamVecEnv(VecDreamEnv(model, num_envs=2, data=hg_dataset, max_steps=2))
    venv.seed(3)
    obs = venv.reset()
    assert obs.shape == (2, 64, 64, 3) and obs.dtype == np.uint8
    assert all("episode" in info for info in venv.reset_infos)
    for _ in range(2):
        obs, rewards, dones, infos = venv.step(np.array([1, 2]))
        assert rewards.dtype == np.float32 and dones.dtype == bool
    assert dones.all()  # max_steps: truncated, unless the dream ended on its own first
    for info in infos:
        assert info["terminal_observation"].shape == (64, 64, 3) and "done_prob" in info
        assert isinstance(info["TimeLimit.truncated"], bool)


def test_ppo_learns_inside_a_dream(model: WorldModel, hg_dataset: Path) -> None:
    from stable_baselines3 import PPO

    venv = SB3DreamVecEnv(VecDreamEnv(model, num_envs=2, data=hg_dataset, max_steps=40))
    agent = PPO("CnnPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    agent.learn(128)
    assert agent.num_timesteps == 128
