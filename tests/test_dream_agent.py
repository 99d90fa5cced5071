"""Agents trained in the dream: resume after a kill, real-game scoring with fixed seeds, the
exploit check, the whole experiment from the command line, and refusals of bad input."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.dream import training as dream_training
from agents.dream.exploit import LABEL, ExploitReport, exploit_check
from agents.dream.training import (
    AgentRun,
    DreamConfig,
    EvalConfig,
    check_dreamable,
    dream_venv_factory,
    load_state,
    train_agent,
)
from agents.policies import RandomPolicy
from agents.ppo import AgentError, PPOConfig, load_agent
from agents.scoring import episode_cap, play_real
from tests.conftest import (
    ROOT,
    save_frame_world_model,
    script_module,
    tiny_frame_world_model,
    tiny_world_model,
)
from worldmodel.cli.args import UserError
from worldmodel.game_state import GameState

TINY_PPO = PPOConfig(steps=192, n_envs=2, n_steps=32, batch_size=64, n_epochs=1)


@pytest.fixture(scope="module")
def hg_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_frame_world_model(tiny_frame_world_model(), tmp_path_factory.mktemp("wm") / "hg.pt")


@pytest.fixture(scope="module")
def tc_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_frame_world_model(
        tiny_frame_world_model("take_cover"), tmp_path_factory.mktemp("wm") / "tc.pt"
    )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=600, check=False
    )


def test_a_killed_run_resumes_and_continues_its_step_count(
    hg_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worldmodel.world_model import WorldModel

    model = WorldModel.load(hg_model)
    make = dream_venv_factory(model, 2, None, DreamConfig(max_steps=20))
    run = AgentRun(tmp_path / "dream-t1", "health_gathering", {"trained_in": "dream"})
    evals = EvalConfig(every=128, episodes=1)
    save = dream_training.save_state

    def save_then_die(*args, **kwargs) -> None:
        save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(dream_training, "save_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_agent(run, make, TINY_PPO, evals, progress=False)
    monkeypatch.setattr(dream_training, "save_state", save)
    killed = torch.load(run.state_path, weights_only=True)
    assert killed["num_timesteps"] == 64  # saved after its first update, then killed

    with pytest.raises(UserError, match="--resume"):
        train_agent(run, make, TINY_PPO, evals, progress=False)
    assert train_agent(run, make, TINY_PPO, evals, resume=True, progress=False) == 192
    final = torch.load(run.state_path, weights_only=True)
    assert final["num_timesteps"] == 192 and final["n_updates"] == 3
    # Adam's step count carried over: one minibatch per update, three updates in all.
    assert all(int(s["step"]) == 3 for s in final["optimizer"]["state"].values())
    assert final["ret_rms"]["count"] > killed["ret_rms"]["count"]
    assert load_agent(run.agent_path, "health_gathering").meta["train_steps"] == 192
    assert [p["steps"] for p in run.evals()] == [128]

    tb_runs = list((tmp_path / "tb").iterdir())
    assert [p.name for p in tb_runs] == ["dream-t1_1"]  # the resumed run continues its curves
    events = EventAccumulator(str(tb_runs[0])).Reload()
    tags = events.Tags()["scalars"]
    assert {"rollout/ep_rew_mean", "rollout/ep_len_mean", "real/return_mean"} <= set(tags)
    assert [e.step for e in events.Scalars("real/return_mean")] == [128]


def test_real_episodes_repeat_from_fixed_seeds_and_respect_the_cap() -> None:
    assert episode_cap("health_gathering") is None  # its own 2100-tic timeout
    assert episode_cap("take_cover") == 525  # no timeout: cut at 2100 tics
    first, _ = play_real(RandomPolicy(3, seed=0), "take_cover", [5, 6, 7], cap=30, n_envs=2)
    again, _ = play_real(RandomPolicy(3, seed=0), "take_cover", [5, 6, 7], cap=30, n_envs=2)
    np.testing.assert_array_equal(first.returns, again.returns)
    assert (first.steps <= 30).all() and (first.steps > 0).all()
    # take_cover pays one per tic alive: four per step of a frame skip of 4
    assert (first.returns <= 4 * first.steps).all() and (first.returns >= 4 * first.steps - 4).all()


def test_the_exploit_check_compares_both_sides_from_one_start(
    tc_model: Path, tmp_path: Path
) -> None:
    from worldmodel.world_model import WorldModel

    model = WorldModel.load(tc_model)
    clip = tmp_path / "clip.gif"
    report = exploit_check(model, lambda: RandomPolicy(3, seed=1), DreamConfig(), 2, clip)
    assert report.dream_returns.shape == report.real_returns.shape == (2,)
    assert (report.dream_steps > 0).all() and (report.real_steps > 0).all()
    assert 0.0 <= report.overstated <= 1.0
    frames = iio.imread(clip, index=None)
    half = (frames.shape[2] - 4) // 2  # two panels and a gap, at half size in a GIF
    assert frames.shape[1:3] == ((LABEL + 64 * 4 + 12) // 2, 2 * half + 4)
    below = LABEL // 2  # under the labels, which differ: "dream" and "real game"
    np.testing.assert_array_equal(frames[0, below:, :half], frames[0, below:, -half:])  # one start
    assert not np.array_equal(frames[0, :below, :half], frames[0, :below, -half:])


def test_dream_agents_dream_in_the_models_own_passes_unless_told() -> None:
    """As play does: the model's own sampling's passes, else its default; --passes wins."""
    from types import SimpleNamespace

    from worldmodel.sampling.settings import SamplingConfig

    reveal = SimpleNamespace(sampling=SamplingConfig(passes=1, top_p=0.8), default_passes=4)
    assert DreamConfig().sampling(reveal).passes == 1  # shipped health_gathering: 1, not 4
    assert DreamConfig(passes=4).sampling(reveal).passes == 4
    plain = SimpleNamespace(sampling=SamplingConfig(), default_passes=4)
    assert DreamConfig().sampling(plain).passes == 4
    sampling = DreamConfig(temperature=0.5, state_change_odds=30).sampling(reveal)
    assert (sampling.temperature, sampling.state_change_odds, sampling.top_p) == (0.5, 30, None)


def test_agent_runs_go_beside_their_world_model_and_say_how_to_resume(tmp_path: Path) -> None:
    import argparse

    import train
    from worldmodel.world_model import shipped_checkpoint

    def args(**given) -> argparse.Namespace:
        base = {"stage": "agent", "env": "take_cover", "preset": "cpu", "checkpoint": None}
        return argparse.Namespace(**{**base, **given})

    assert train.default_out(args()) == Path("runs/take_cover-cpu")  # OUT/worldmodel.pt
    mine = Path("runs/tc-long/worldmodel.pt")
    assert train.default_out(args(checkpoint=mine)) == Path("runs/tc-long")
    shipped = shipped_checkpoint("take_cover")
    assert train.default_out(args(checkpoint=shipped)) == Path("runs/take_cover-shipped")
    elsewhere = tmp_path / "models" / "tc.pt"
    assert train.default_out(args(checkpoint=elsewhere)) == Path("runs/tc")
    assert train.default_out(args(stage="prior", checkpoint=mine)) == Path("runs/take_cover-cpu")
    hint = train.resume_hint(args(quickstart=False, resume=False), Path("runs/x"))
    assert hint.endswith("rerun the same command with --resume to continue")
    hint = train.resume_hint(args(quickstart=False, resume=True), Path("runs/x"))
    assert hint.endswith("rerun the same command to continue")


def test_overstated_counts_dream_returns_more_than_20_percent_above_real() -> None:
    report = ExploitReport(
        1.0,
        dream_returns=np.array([121.0, 120.0, 50.0, -5.0]),
        real_returns=np.array([100.0, 100.0, 100.0, -10.0]),
        dream_steps=np.ones(4),
        real_steps=np.ones(4),
    )
    assert report.overstated == 0.5  # 121 over 100, and -5 over -10


def test_dreams_without_reward_or_end_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no game state"):
        check_dreamable(tiny_world_model())
    no_health = dataclasses.replace(tiny_frame_world_model(), game=GameState(("AMMO2",)))
    with pytest.raises(UserError, match="cannot end"):
        check_dreamable(no_health)


def test_a_training_state_of_another_env_is_refused(hg_model: Path, tmp_path: Path) -> None:
    from worldmodel.world_model import WorldModel

    model = WorldModel.load(hg_model)
    run = AgentRun(tmp_path / "run", "health_gathering", {"trained_in": "dream"})
    config = dataclasses.replace(TINY_PPO, steps=64)
    train_agent(run, dream_venv_factory(model, 2, None, DreamConfig(max_steps=20)), config)
    with pytest.raises(UserError, match="not in the dream of 'take_cover'"):
        load_state(run.state_path, "take_cover", "dream")
    with pytest.raises(UserError, match="not in the real game"):
        load_state(run.state_path, "health_gathering", "real game")
    with pytest.raises(AgentError, match="not 'take_cover'"):
        load_agent(run.agent_path, "take_cover")
    result = _cli(
        str(ROOT / "tools" / "ship_agent.py"), "--run", str(run.dir), "--env", "take_cover"
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "an agent for 'health_gathering', not 'take_cover'" in result.stderr
    shipped = tmp_path / "hg_dream_ppo.pt"
    _cli(
        str(ROOT / "tools" / "ship_agent.py"),
        "--run",
        str(run.dir),
        "--env",
        "health_gathering",
        "--out",
        str(shipped),
    )
    assert load_agent(shipped, "health_gathering").meta["shipped_from"] == str(run.dir)


@pytest.mark.slow
def test_take_cover_experiment_end_to_end_from_the_command_line(
    tc_model: Path, hg_model: Path, tmp_path: Path
) -> None:
    """Two temperatures, the real-trained baseline, random, the exploit check and the report,
    then a rerun that resumes (nothing to redo) and the refusals."""
    train = str(ROOT / "train.py")
    args = [train, "--env", "take_cover", "--stage", "agent", "--checkpoint", str(tc_model),
            "--agent-steps", "128", "--agent-envs", "2", "--episodes", "2", "--temperature",
            "0.5", "1.5", "--exploit-starts", "2", "--agent-eval-every", "0",
            "--out", str(tmp_path), "--threads", "1", "--quiet", "--prev-action",
            "--agent-seed", "3", "--action-repeat", "2", "--n-steps", "16"]  # fmt: skip
    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    out = tmp_path / "agents"
    phases = [line for line in first.stdout.splitlines() if line.startswith("[")]
    assert len(phases) == 10 and phases[-1].startswith("[10/10] score a random policy, held 2")
    assert phases[0].startswith("[1/10] train PPO in the dream, T=0.5 (128 env steps, 1 pass")
    assert f"results: {out / 'results.md'}" in first.stdout
    results = json.loads((out / "results.json").read_text())
    kinds = [(a["trained_in"], a["temperature"]) for a in results["agents"]]
    assert kinds == [("dream", 0.5), ("dream", 1.5), ("real game", None), *[("nothing", None)] * 2]
    assert results["agents"][-1]["name"] == "random policy, held 2 steps"
    assert all(len(a["returns"]) == 2 and a["tics_mean"] > 0 for a in results["agents"])
    assert [e["temperature"] for e in results["exploit"]] == [0.5, 1.5]
    assert (out / "results.png").stat().st_size > 0 and (out / "dream-t0.5" / "clip.mp4").exists()
    assert "PPO in the dream, T=1.5" in (out / "results.md").read_text()
    assert results["ppo"]["seed"] == 3 and results["ppo"]["prev_action"]
    assert results["ppo"]["action_repeat"] == 2 and results["ppo"]["n_steps"] == 16
    for run in ("dream-t1.5", "real"):  # both kinds: their last action, decisions held 2 steps
        agent = load_agent(out / run / "agent.pt", "take_cover")
        assert agent.n_actions == 3 and agent.memory and agent.repeat == 2
        # 64 decisions asked for; PPO runs whole rollouts (16 steps x 2 envs), 2 steps each
        assert agent.meta["train_steps"] == 64 * 2

    again = _cli(*args, "--resume")
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "results.json").read_text())["agents"] == results["agents"]

    other_env = ["--resume", "--env", "health_gathering"]
    for bad, message in (
        ([], "pass --resume"),
        (["--n-steps", "1"], "--n-steps"),
        (other_env, "trained on 'take_cover', not 'health_gathering'"),
        ([*other_env, "--checkpoint", str(hg_model)], "trained in the dream of 'take_cover'"),
    ):
        result = _cli(*args, *bad)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert message in result.stderr


def test_damage_penalty_charges_each_point_of_dreamed_health_lost() -> None:
    """The start windows hold HEALTH 84; a state head sure of 74 loses 10 on the first step
    and nothing after, so a penalty of 2 costs 20 then 0 against the plain dream's reward."""
    from agents.dream.vec import SB3DreamVecEnv
    from worldmodel.dream.env import VecDreamEnv

    model = tiny_frame_world_model()
    head = model.prior.state_head
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-50.0)
        head.bias[int(model.game.quantize(np.array([74.0]))[0])] = 50.0
    rewards = []
    for penalty in (0.0, 2.0):
        venv = SB3DreamVecEnv(VecDreamEnv(model, 2, max_steps=5), penalty)
        venv.seed(3)
        venv.reset()
        got = []
        for _ in range(2):
            venv.step_async(np.array([0, 1]))
            got.append(venv.step_wait()[1])
        rewards.append(np.stack(got))
        venv.close()
    np.testing.assert_allclose(rewards[1] - rewards[0], [[-20.0, -20.0], [0.0, 0.0]])


def test_real_ppo_screen_trains_scores_resumes_and_refuses_bad_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """tools/real_ppo.py: PPO in the real game alone, scored over fixed real episodes."""
    main = script_module("tools/real_ppo.py").main
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "(default: 200000)" in capsys.readouterr().out  # train.py's defaults, not PPOConfig's
    out = tmp_path / "r2"
    args = ["--out", str(out), "--steps", "64", "--n-envs", "2", "--n-steps", "8",
            "--action-repeat", "2", "--episodes", "2"]  # fmt: skip
    main(args)
    result = json.loads(capsys.readouterr().out.splitlines()[-1])  # after the progress lines
    saved = json.loads((out / "score.json").read_text())
    assert len(saved.pop("returns")) == len(saved.pop("steps")) == 2  # per episode, file only
    assert result == saved
    assert result["train_steps"] == 64 and result["episodes"] == 2 and result["tics_mean"] > 0
    assert result["ppo"]["prev_action"] and result["ppo"]["action_repeat"] == 2
    agent = load_agent(out / "agent.pt", "take_cover")
    assert agent.memory and agent.repeat == 2
    main([*args, "--resume", "--steps", "96"])  # continues the same run
    resumed = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert resumed["train_steps"] == 96
    assert resumed["train_minutes"] >= result["train_minutes"]  # the whole run's, not the last
    ship = script_module("tools/ship_agent.py").main  # a real-trained agent ships with its score
    ship(["--run", str(out), "--env", "take_cover", "--out", str(tmp_path / "real_ppo.pt")])
    shipped = load_agent(tmp_path / "real_ppo.pt", "take_cover").meta
    assert shipped["trained_in"] == "real game" and shipped["score"]["episodes"] == 2
    assert "return_std" in shipped["score"] and "returns" not in shipped["score"]
    for bad, message in (
        (["--env", "doom2"], "unknown env 'doom2'"),
        (["--n-steps", "1"], "--n-steps must be at least 2, got 1"),
        (["--learning-rate", "0"], "--learning-rate must be greater than 0"),
        (["--episodes", "0"], "--episodes must be at least 1"),
        ([], "pass --resume"),  # the run is there already
    ):
        with pytest.raises(SystemExit) as stop:
            main([*args, *bad])
        assert stop.value.code == 2 and message in capsys.readouterr().err
