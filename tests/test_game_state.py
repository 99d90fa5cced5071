"""The game state end to end: obs[t], a[t] -> obs[t+1], r[t], terminated[t], from the dataset
through a training batch to a dream step and a DreamEnv step, on a tiny synthetic episode."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from tests.conftest import save_frame_world_model, tiny_frame_world_model
from worldmodel.data import Episode, Manifest, episode_filename, write_episode, write_manifest
from worldmodel.dream.env import DreamEnv, VecDreamEnv
from worldmodel.game_state import GameRules, GameState
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.training.loop import Runtime, TrainConfig
from worldmodel.training.run import train_prior, train_tokenizer
from worldmodel.world_model import WorldModel

RULES = {"living_reward": 1.0, "death_penalty": 100.0, "frame_skip": 4, "episode_timeout_tics": 0}
STEPS = 24  # health 92, 92, 84, 84, ... 4, 4, then -4 on step 24: dead


def health(t: int) -> float:
    return 92.0 - 8.0 * (t // 2)


def synthetic_dataset(root: Path, episodes: int = 10) -> Path:
    """Episodes where health drops 8 every 2 steps and the player dies on step 24; each frame
    is a flat colour that walks with time, so codes change as health does."""
    root.mkdir(parents=True)
    entries = []
    for i in range(episodes):
        t = np.arange(STEPS + 1)
        frames = np.zeros((STEPS + 1, 64, 64, 3), np.uint8)
        frames[..., 0] = (t * 10)[:, None, None]
        frames[..., 1] = ((t % 2) * 200)[:, None, None]
        rewards = np.full(STEPS, 4.0, np.float32)
        rewards[-1] = -96.0
        terminated = np.zeros(STEPS, bool)
        terminated[-1] = True
        write_episode(
            root / episode_filename(i),
            Episode(
                frames=frames,
                actions=np.ones(STEPS, np.int64),
                rewards=rewards,
                terminated=terminated,
                truncated=np.zeros(STEPS, bool),
                attrs={"index": i, "seed": i, "env": "health_gathering"},
                variables=np.array([[health(k)] for k in t], np.float32),
            ),
        )
        from worldmodel.data import EpisodeEntry

        entries.append(
            EpisodeEntry(i, episode_filename(i), i, STEPS, -4.0, True, False, "synthetic", "death")
        )
    names = ["noop", "forward", "turn_left", "turn_right", "forward_left", "forward_right"]
    manifest = Manifest(
        env="health_gathering",
        action_names=names,
        buttons=["TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD"],
        policy="synthetic",
        epsilon=0.0,
        sticky_mean=1.0,
        seed=0,
        episodes=entries,
        action_counts=[0, episodes * STEPS, 0, 0, 0, 0],
        variable_names=["HEALTH"],
        rules=RULES,
    )
    write_manifest(root, manifest)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synthetic")
    data = synthetic_dataset(root / "data")
    out = root / "run"
    runtime = Runtime(torch.device("cpu"))
    quick = TrainConfig(steps=30, batch_size=4, lr=1e-3, warmup=5, eval_every=30, save_every=30)
    train_tokenizer("health_gathering", data, out, "tiny", quick, runtime, progress=False)
    prior = TrainConfig(
        steps=400, batch_size=8, lr=3e-3, warmup=20, eval_every=400, save_every=400, seed=0
    )
    train_prior("health_gathering", data, out, "tiny", prior, runtime, progress=False, starts=8)
    return data, out / "worldmodel.pt"


def test_training_batches_pair_each_step_with_the_step_before(trained) -> None:
    from worldmodel.data.codes import load_codes
    from worldmodel.data.frame_windows import frame_batch

    _data, checkpoint = trained
    codes = load_codes(checkpoint.parent / "codes_train.npz")
    game = GameState(("HEALTH",), GameRules.from_manifest(RULES))
    b = frame_batch(codes, np.array([int(codes.starts[1]) + 3]), 8, game, n_codes=32)
    t = np.arange(3, 11)
    assert b.state[0, :, 0].tolist() == [health(k) for k in t]
    assert b.in_state[0, :, 0].tolist() == [health(k - 1) for k in t]
    assert b.actions[0, :, 0].tolist() == [1] * 8  # the action into each predicted step
    np.testing.assert_array_equal(b.in_codes[0, 1:], b.codes[0, :-1])


def test_the_dream_loses_health_on_time_and_dies_on_the_real_death_step(trained) -> None:
    data, checkpoint = trained
    model = WorldModel.load(checkpoint, "health_gathering")
    start = 6  # context: frames 0..6 of a test episode
    store_item = _episode(data, 9)
    dreamer = model.dreamer(1, SamplingConfig(temperature=0.0))
    dreamer.start(
        store_item.frames[None, : start + 1],
        np.concatenate([[-1], store_item.actions[:start]])[None],
        store_item.variables[None, : start + 1],
    )
    dreamed, died_at, rewards = [], None, []
    for t in range(start + 1, STEPS + 1):
        out = dreamer.step(np.array([1]))
        dreamed.append(float(out.variables[0, 0]))
        rewards.append(float(out.reward[0]))
        if out.done_prob[0] > 0.5:
            died_at = t
            break
    assert dreamed == [max(health(k), 0.0) for k in range(start + 1, STEPS + 1)]
    assert died_at == STEPS
    assert rewards[-1] == -96.0 and set(rewards[:-1]) == {4.0}


def test_dream_env_reward_and_termination_come_from_the_dreamed_state(trained) -> None:
    _data, checkpoint = trained
    env = DreamEnv(checkpoint, env="health_gathering", sampling=SamplingConfig(temperature=0.0))
    _, info = env.reset(seed=3)
    assert info["game_variables"]["HEALTH"] == health(info["step"])
    t, ret = info["step"], 0.0
    while True:
        _obs, reward, terminated, truncated, info = env.step(1)
        t += 1
        ret += reward
        assert info["game_variables"]["HEALTH"] == max(health(t), 0.0)
        if terminated or truncated:
            break
    assert terminated and not truncated and t == STEPS and reward == -96.0
    env.close()


def _episode(data: Path, index: int) -> Episode:
    from worldmodel.data import read_episode

    return read_episode(data / episode_filename(index))


def test_frame_dream_envs_pass_both_env_checkers(tmp_path: Path) -> None:
    path = save_frame_world_model(tiny_frame_world_model(), tmp_path / "wm.pt")
    env = DreamEnv(path, env="health_gathering")  # starts from the model's own start windows
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)
        sb3_check_env(env)
    _obs, info = env.reset(seed=0)
    assert set(info["game_variables"]) == {"HEALTH"}
    _, reward, _, _, info = env.step(0)
    assert isinstance(reward, float) and "HEALTH" in info["game_variables"]
    venv = VecDreamEnv(path, num_envs=3)
    _, infos = venv.reset(seed=0)
    _, rewards, _term, _trunc, infos = venv.step(np.array([0, 1, 2]))
    assert infos["game_variables"]["HEALTH"].shape == (3,) and rewards.shape == (3,)


def test_a_stateful_model_refuses_starts_without_game_variables(tmp_path: Path) -> None:
    model = tiny_frame_world_model()
    dreamer = model.dreamer(1)
    frames = np.zeros((1, 4, 64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="carries the game state"):
        dreamer.start(frames, np.array([[-1, 0, 0, 0]]))


def test_teacher_forced_state_scores_every_step_once_and_finds_the_death(trained) -> None:
    from worldmodel.data.codes import load_codes
    from worldmodel.evaluation.state import teacher_forced_state

    _, checkpoint = trained
    model = WorldModel.load(checkpoint, "health_gathering")
    codes = load_codes(checkpoint.parent / "codes_train.npz")
    ev = teacher_forced_state(model.prior, codes, model.game, torch.device("cpu"))
    assert len(ev.steps) == int(codes.lengths.sum())
    for e in np.unique(ev.episodes):
        assert sorted(ev.steps[ev.episodes == e].tolist()) == list(range(STEPS + 1))
    # health falls 8 every 2 steps, so keeping the last value errs by 4 HP a step; a tiny prior
    # trained 400 steps gets most steps exactly (how close varies with the torch/numpy build)
    assert ev.mae()[0] < 2.0
    assert ev.termination() == {"precision": 1.0, "recall": 1.0, "deaths": 8, "predicted": 8}


def test_kills_pay_the_scenario_reward_and_death_costs_its_penalty() -> None:
    game = GameState(("AMMO2", "HEALTH", "KILLCOUNT"), GameRules(0.0, 1.0, 4, 2100, 1.0))
    before = np.array([[20.0, 80.0, 3.0], [20.0, 10.0, 3.0], [5.0, 50.0, 7.0]])
    after = np.array([[19.0, 80.0, 5.0], [20.0, -4.0, 3.0], [5.0, 50.0, 7.0]])
    assert game.reward(after, before).tolist() == [2.0, -1.0, 0.0]
    assert game.kills(after, before).tolist() == [2.0, 0.0, 0.0]
    assert game.reward(after).tolist() == [0.0, -1.0, 0.0]  # no step before: no kills known
    assert GameRules.from_manifest({"kill_reward": 1.0}).kill_reward == 1.0


def test_defend_the_center_records_kills_and_states_its_kill_reward() -> None:
    from agents.doom_env import make_env

    env = make_env("defend_the_center", seed=0)
    try:
        _, info = env.reset(seed=0)
        assert env.variable_names == ("AMMO2", "HEALTH", "KILLCOUNT")
        assert info["game_variables"].tolist() == [26.0, 100.0, 0.0]
        assert env.rules["kill_reward"] == 1.0 and env.rules["death_penalty"] == 1.0
    finally:
        env.close()


def test_combat_scores_exact_variables_kills_and_empty_ammo() -> None:
    from worldmodel.evaluation.state import StateEval, combat

    game = GameState(("AMMO2", "HEALTH", "KILLCOUNT"), GameRules(kill_reward=1.0))
    previous = np.array([[5, 90, 0], [4, 90, 1], [0, 90, 1], [0, 80, 2], [3, 70, 2]], float)
    true = np.array([[4, 90, 1], [4, 90, 1], [0, 80, 2], [0, 80, 2], [3, 70, 3]], float)
    pred = np.array([[4, 90, 1], [3, 90, 2], [0, 80, 1], [1, 80, 2], [3, 70, 2]], float)
    ev = StateEval(true, pred, np.zeros(5), np.zeros(5, bool), np.zeros(5), np.arange(5))
    out = combat(ev, previous, np.ones(5, bool), game)
    assert out["exact"]["AMMO2"] == 0.6 and out["exact"]["HEALTH"] == 1.0
    # real kills at steps 0, 2 and 4; predicted at 0 and 1: one right of two, one of three found
    assert out["kills"] == {"precision": 0.5, "recall": 1 / 3, "real": 3, "predicted": 2}
    assert out["ammo_empty_steps"] == 2 and out["ammo_stays_empty"] == 0.5


@pytest.fixture(scope="module")
def trained_delta(trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same data and tokenizer, a prior that predicts the changes of HEALTH."""
    import shutil

    data, checkpoint = trained
    out = tmp_path_factory.mktemp("delta") / "run"
    out.mkdir()
    shutil.copy(checkpoint.parent / "vqvae.pt", out / "vqvae.pt")
    runtime = Runtime(torch.device("cpu"))
    prior = TrainConfig(
        steps=100, batch_size=8, lr=3e-3, warmup=20, eval_every=100, save_every=100, seed=0
    )
    train_prior(
        "health_gathering", data, out, "tiny", prior, runtime,
        overrides=["frame.state_delta=true"], progress=False, starts=8,
    )  # fmt: skip
    return out / "worldmodel.pt"


def test_a_prior_of_changes_loses_health_on_time_and_dies_on_the_real_death_step(
    trained, trained_delta
) -> None:
    """One change class (-8 every other step) at every health, so the death at the end, from
    values the data holds once each, is the same rule."""
    from worldmodel.data.codes import load_codes
    from worldmodel.evaluation.state import teacher_forced_state

    data, _ = trained
    model = WorldModel.load(trained_delta, "health_gathering")
    assert model.prior.config.state_delta
    start, item = 6, _episode(data, 9)
    dreamer = model.dreamer(1, SamplingConfig(temperature=0.0))
    dreamer.start(
        item.frames[None, : start + 1],
        np.concatenate([[-1], item.actions[:start]])[None],
        item.variables[None, : start + 1],
    )
    dreamed = []
    for _ in range(start + 1, STEPS + 1):
        out = dreamer.step(np.array([1]))
        dreamed.append(float(out.variables[0, 0]))
    assert dreamed == [max(health(k), 0.0) for k in range(start + 1, STEPS + 1)]
    assert out.done_prob[0] > 0.5
    codes = load_codes(trained_delta.parent / "codes_train.npz")
    ev = teacher_forced_state(model.prior, codes, model.game, torch.device("cpu"))
    assert len(ev.steps) == int(codes.lengths.sum()) - len(codes.lengths)  # no first steps
    assert ev.mae()[0] < 1.0
    assert ev.termination() == {"precision": 1.0, "recall": 1.0, "deaths": 8, "predicted": 8}
