"""Decisions held for several steps: the vec-env wrapper PPO trains through, the player that
holds a trained agent's decisions the same way, and an agent trained so in the dream."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.action_repeat import Held, VecActionRepeat
from agents.dream.training import AgentRun, DreamConfig, dream_venv_factory, train_agent
from agents.policies import new_episode
from agents.ppo import PPOConfig, agent_repeat, load_agent
from agents.scoring import play_real
from tests.conftest import save_frame_world_model, tiny_frame_world_model


class _Ledger(gym.Env):
    """Frames of the step count; reward = the action taken + 1; ends after ``length`` steps."""

    observation_space = gym.spaces.Box(0, 255, (4, 4, 3), dtype=np.uint8)
    action_space = gym.spaces.Discrete(3)

    def __init__(self, length: int) -> None:
        self.length = length

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros((4, 4, 3), np.uint8), {}

    def step(self, action):
        self.t += 1
        frame = np.full((4, 4, 3), self.t, np.uint8)
        return frame, float(action) + 1.0, self.t == self.length, False, {"t": self.t}


def test_the_wrapper_holds_each_action_and_sums_rewards_to_the_episode_end() -> None:
    venv = VecActionRepeat(DummyVecEnv([lambda: _Ledger(5), lambda: _Ledger(100)]), repeat=3)
    venv.reset()
    obs, rewards, dones, infos = venv.step(np.array([1, 2]))
    np.testing.assert_array_equal(rewards, [6.0, 9.0])  # three steps of (action + 1)
    assert not dones.any() and obs[0, 0, 0, 0] == 3 and infos[1]["t"] == 3
    obs, rewards, dones, infos = venv.step(np.array([0, 0]))
    # Env 0 ended at its 5th step, one step into this decision's three: the step after it
    # (already the new episode's first) is not counted, and its end is what is reported.
    assert rewards[0] == 2.0 and dones[0] and not dones[1]
    assert infos[0]["t"] == 5 and infos[0]["terminal_observation"][0, 0, 0] == 5
    assert obs[0, 0, 0, 0] == 1  # the new episode, one held step in
    assert rewards[1] == 3.0


def test_a_repeat_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="action repeat"):
        VecActionRepeat(DummyVecEnv([lambda: _Ledger(5)]), repeat=0)


class _Counter:
    """A policy that answers 10 + how often slot i was asked, and records resets."""

    n_actions = 3

    def __init__(self) -> None:
        self.asked: dict[int, int] = {}
        self.remembered: list[tuple[int, int]] = []
        self.resets: list[int] = []

    def act(self, obs, rows=None):
        rows = np.arange(len(obs)) if rows is None else rows
        for r in rows:
            self.asked[int(r)] = self.asked.get(int(r), 0) + 1
        return np.array([10 + self.asked[int(r)] for r in rows])

    def remember(self, actions, rows=None):
        self.remembered += list(
            zip(np.asarray(rows).tolist(), np.asarray(actions).tolist(), strict=True)
        )

    def reset_env(self, i):
        self.resets.append(i)


def test_the_player_asks_each_slot_every_repeat_steps_and_starts_again_at_a_new_episode() -> None:
    inner = _Counter()
    held = Held(inner, repeat=3)
    frames = np.zeros((2, 4, 4, 3), np.uint8)
    got = [held.act(frames).tolist() for _ in range(4)]
    assert got == [[11, 11], [11, 11], [11, 11], [12, 12]]
    assert inner.asked == {0: 2, 1: 2}
    new_episode(held, 1, prefix=[2])  # slot 1 restarted and replayed action 2 (a person's)
    assert inner.resets == [1] and inner.remembered == [(1, 2)]
    assert held.act(frames[1:], np.array([1])).tolist() == [13]  # decides at once
    assert held.act(frames[:1], np.array([0])).tolist() == [12]  # slot 0 still holds
    assert held.act(np.zeros((1, 4, 4, 3), np.uint8), np.array([5])).tolist() == [11]  # new slot


@pytest.fixture(scope="module")
def held_agent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from worldmodel.world_model import WorldModel

    tmp = tmp_path_factory.mktemp("repeat")
    model = WorldModel.load(
        save_frame_world_model(tiny_frame_world_model("take_cover"), tmp / "tc.pt")
    )
    ppo = PPOConfig(steps=128, n_envs=2, n_steps=32, batch_size=64, n_epochs=1, action_repeat=2)
    run = AgentRun(tmp / "dream-t1", "take_cover", {"trained_in": "dream"})
    make = dream_venv_factory(model, 2, None, DreamConfig(max_steps=20))
    assert train_agent(run, make, ppo, progress=False) == 128  # env steps: 64 decisions
    return run.agent_path


def test_an_agent_trained_with_action_repeat_loads_holding_its_decisions(held_agent: Path) -> None:
    agent = load_agent(held_agent, "take_cover", seed=0)
    assert isinstance(agent, Held) and agent.repeat == 2
    assert agent.meta["train_steps"] == 128 and agent_repeat(agent.meta) == 2
    frames = np.random.default_rng(0).integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    first = agent.act(frames)
    np.testing.assert_array_equal(agent.act(frames[::-1].copy()), first)  # held, whatever it sees
    scores, _ = play_real(agent, "take_cover", [5, 6, 7], cap=10, n_envs=2)
    assert (scores.steps > 0).all() and (scores.steps <= 10).all()


def test_agents_from_before_action_repeat_play_every_step() -> None:
    assert agent_repeat({}) == 1 and agent_repeat({"ppo": {"steps": 5}}) == 1
    assert agent_repeat({"action_repeat": 4}) == 4
