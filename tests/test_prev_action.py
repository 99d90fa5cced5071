"""An agent that sees its last action: the vec-env wrapper, training in the dream, loading, and
the memory an AgentPolicy keeps per env slot."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.dream.training import AgentRun, DreamConfig, dream_venv_factory, train_agent
from agents.policies import new_episode
from agents.ppo import PPOConfig, load_agent
from agents.prev_action import FRAME, PREV, VecPrevAction, one_hot
from agents.scoring import play_real
from tests.conftest import save_frame_world_model, tiny_frame_world_model


class _Countdown(gym.Env):
    """Frames of the step count; the episode ends after three steps."""

    observation_space = gym.spaces.Box(0, 255, (4, 4, 3), dtype=np.uint8)
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros((4, 4, 3), np.uint8), {}

    def step(self, action):
        self.t += 1
        return np.full((4, 4, 3), self.t, np.uint8), 1.0, self.t == 3, False, {}


def test_one_hot_marks_no_action_yet_as_all_zeros() -> None:
    np.testing.assert_array_equal(
        one_hot(np.array([2, -1, 0]), 3), [[0, 0, 1], [0, 0, 0], [1, 0, 0]]
    )


def test_the_wrapper_shows_the_last_action_and_forgets_it_at_a_new_episode() -> None:
    venv = VecPrevAction(DummyVecEnv([_Countdown, _Countdown]))
    assert set(venv.observation_space.spaces) == {FRAME, PREV}
    obs = venv.reset()
    assert obs[FRAME].shape == (2, 4, 4, 3) and not obs[PREV].any()
    obs, _, dones, _ = venv.step(np.array([1, 2]))
    np.testing.assert_array_equal(obs[PREV], [[0, 1, 0], [0, 0, 1]])
    venv.step(np.array([0, 0]))
    obs, _, dones, infos = venv.step(np.array([2, 1]))
    assert dones.all() and not obs[PREV].any()  # restarted: no last action
    ended = infos[0]["terminal_observation"]
    assert ended[FRAME][0, 0, 0] == 3  # the frame that ended it, with the action that did
    np.testing.assert_array_equal(ended[PREV], [0, 0, 1])
    np.testing.assert_array_equal(infos[1]["terminal_observation"][PREV], [0, 1, 0])


@pytest.fixture(scope="module")
def memory_agent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from worldmodel.world_model import WorldModel

    tmp = tmp_path_factory.mktemp("memory")
    model = WorldModel.load(
        save_frame_world_model(tiny_frame_world_model("take_cover"), tmp / "tc.pt")
    )
    ppo = PPOConfig(steps=64, n_envs=2, n_steps=32, batch_size=64, n_epochs=1, prev_action=True)
    run = AgentRun(tmp / "dream-t1", "take_cover", {"trained_in": "dream"})
    make = dream_venv_factory(model, 2, None, DreamConfig(max_steps=20))
    assert train_agent(run, make, ppo, progress=False) == 64
    return run.agent_path


def test_an_agent_trained_with_memory_loads_and_acts_on_what_it_last_did(
    memory_agent: Path,
) -> None:
    agent = load_agent(memory_agent, "take_cover", seed=0)
    assert agent.memory and isinstance(agent.policy.observation_space, gym.spaces.Dict)
    assert agent.act(np.zeros((2, 64, 64, 3), np.uint8)).shape == (2,)  # fresh: nothing yet
    # Make the last action matter a lot: its one-hot (the features' last 3) votes for itself.
    with torch.no_grad():
        agent.policy.action_net.weight[:, -3:] = 50.0 * torch.eye(3)
    frames = np.zeros((2, 64, 64, 3), np.uint8)
    agent.remember(np.array([1, 2]))
    np.testing.assert_array_equal(agent.act(frames), [1, 2])
    np.testing.assert_array_equal(agent.act(frames), [1, 2])  # it keeps going
    new_episode(agent, 1, prefix=[0])  # slot 1 restarted and replayed a noop
    np.testing.assert_array_equal(agent.act(frames[:1], np.array([1])), [0])
    new_episode(agent, 0)
    fresh = agent.probs(frames[:1], np.array([0]))
    assert fresh.max() < 0.99  # no last action: the frame alone decides


def test_a_memory_agent_plays_the_real_game(memory_agent: Path) -> None:
    agent = load_agent(memory_agent, "take_cover", seed=0)
    scores, _ = play_real(agent, "take_cover", [5, 6, 7], cap=10, n_envs=2)
    assert (scores.steps > 0).all() and (scores.steps <= 10).all()
