from __future__ import annotations

import hashlib
import itertools
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from agents.behaviours import HumanLikePolicy, MixturePolicy
from agents.collect.run import CollectConfig, collect, make_policy
from agents.policies import RandomPolicy, StickyExploration
from agents.ppo import AgentError, PPOConfig, load_agent, train_ppo
from agents.scenarios import get_scenario
from tests.conftest import ROOT
from worldmodel.data import EpisodeStore, WindowDataset, load_manifest, read_episode


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "collect.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_collect_two_episodes_and_read_them_back(tmp_path: Path) -> None:
    out = tmp_path / "two"
    config = CollectConfig(env="take_cover", episodes=2, policy="random", n_envs=2)
    result = collect(out, config, RandomPolicy(3, seed=0), progress=False)
    assert [e.index for e in result.manifest.episodes] == [0, 1]
    assert result.new_frames == sum(e.length + 1 for e in result.manifest.episodes)
    for e in result.manifest.episodes:
        ep = read_episode(out / e.file)
        assert len(ep.frames) == e.length + 1 and ep.rewards.sum() == pytest.approx(e.ret)
    store = EpisodeStore(out, "train")
    item = WindowDataset(store, window=5)[3]
    assert item["frames"].shape == (5, 64, 64, 3)
    again = collect(out, config, RandomPolicy(3, seed=0), progress=False)
    assert again.new_frames == 0  # nothing missing: nothing collected


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("ep_*.h5")}


def test_killed_collection_resumes_without_corrupt_files(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    args = [
        "--env",
        "basic",
        "--episodes",
        "6",
        "--policy",
        "random",
        "--n-envs",
        "1",
        "--out",
        str(out),
        "--quiet",
    ]
    proc = subprocess.Popen([sys.executable, str(ROOT / "collect.py"), *args], cwd=tmp_path)
    deadline = time.time() + 120
    while not (out / "ep_000001.h5").exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # mid-episode: episode 2 is in flight
    proc.wait()
    done = _digests(out)
    assert 2 <= len(done) < 6
    for name in done:
        read_episode(out / name)  # every file on disk is complete
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = load_manifest(out)
    assert [e.index for e in manifest.episodes] == list(range(6))
    assert not list(out.glob("*.tmp"))
    after = _digests(out)
    assert all(after[name] == digest for name, digest in done.items())  # kept, not redone


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "battle"], "unknown env 'battle'; choose one of: health_gathering"),
        (["--episodes", "0"], "--episodes must be at least 1"),
        (["--episodes", "-3"], "--episodes must be at least 1"),
        (["--epsilon", "1.5"], "epsilon"),
        (["--env", "take_cover"], "holds 'health_gathering' data"),
        (["--epsilon", "0.1"], "was collected with"),
        (["--policy", "missing.pt", "--out", "fresh"], "no agent at missing.pt"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_overwrites_nothing(
    hg_dataset: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    before = _digests(hg_dataset)
    manifest_before = (hg_dataset / "manifest.json").read_bytes()
    result = run_cli("--out", str(hg_dataset), "--policy", "random", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert _digests(hg_dataset) == before
    assert (hg_dataset / "manifest.json").read_bytes() == manifest_before
    assert not (tmp_path / "fresh").exists()


def test_sticky_exploration_explores_the_requested_fraction() -> None:
    class Always3:
        n_actions = 6

        def act(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
            return np.full(len(obs), 3)

    explorer = StickyExploration(Always3(), epsilon=0.3, sticky_mean=4.0, seed=0)
    obs = np.zeros((64, 1, 1, 3), dtype=np.uint8)
    explored = np.mean(
        [explorer.act(obs) is not None and explorer.last_explored.mean() for _ in range(2000)]
    )
    assert explored == pytest.approx(0.3, abs=0.03)
    runs, run = [], 0
    for _ in range(4000):
        explorer.act(obs[:1])
        if explorer.last_explored[0]:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    assert np.mean(runs) > 2.5  # random actions are held, not single-step noise


def test_ppo_agent_round_trip_without_pickle(tmp_path: Path) -> None:
    path = tmp_path / "agent.pt"
    config = PPOConfig(steps=128, n_envs=2, n_steps=64, batch_size=64, n_epochs=1)
    model = train_ppo("take_cover", path, config, progress_bar=False)
    agent = load_agent(path, "take_cover")
    obs = np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3)).astype(np.uint8)
    import torch

    with torch.inference_mode():
        x = torch.as_tensor(obs).permute(0, 3, 1, 2)
        expected = model.policy.get_distribution(x).distribution.probs
    torch.testing.assert_close(agent.probs(obs), expected)
    with pytest.raises(AgentError, match="for 'take_cover', not 'basic'"):
        load_agent(path, "basic")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(AgentError, match="not a readable agent file"):
        load_agent(path, "take_cover")


def test_ppo_plays_the_shipped_agent_and_says_so_unless_told_to_train(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from agents.collect import run as collect_run
    from agents.ppo import SHIPPED_AGENTS

    shipped = SHIPPED_AGENTS / "health_gathering_ppo.pt"
    trained: list[Path] = []

    def train(env: str, path: Path, *args, **kwargs) -> None:  # as fast as a copy
        trained.append(path)
        path.parent.mkdir(parents=True)
        path.write_bytes(shipped.read_bytes())

    monkeypatch.setattr(collect_run, "train_ppo", train)
    agents = tmp_path / "agents"
    config = CollectConfig(env="health_gathering", policy="mix:ppo=1,random=1")
    make_policy(config, agents, PPOConfig(steps=64), progress=False, report_episodes=0)
    assert not trained and not agents.exists()
    assert f"playing the shipped agent {shipped}" in capsys.readouterr().out
    make_policy(config, agents, PPOConfig(steps=64), False, 0, shipped=False)  # --train-agent
    assert trained == [agents / "health_gathering" / "ppo.pt"]
    assert "training one" in capsys.readouterr().out
    make_policy(config, agents, PPOConfig(steps=64), progress=False, report_episodes=0)
    assert len(trained) == 1 and capsys.readouterr().out == ""  # your own agent comes first


def test_collected_episodes_record_game_variables_end_reasons_and_behaviours(
    tmp_path: Path,
) -> None:
    out = tmp_path / "mix"
    config = CollectConfig(
        env="health_gathering", episodes=4, policy="mix:human=1,random=1", n_envs=2, workers=1
    )
    policy = make_policy(config, tmp_path / "agents", PPOConfig())
    manifest = collect(out, config, policy, progress=False).manifest
    assert manifest.variable_names == ["HEALTH"] and manifest.rules["death_penalty"] == 100.0
    for entry in manifest.episodes:
        ep = read_episode(out / entry.file)
        assert ep.variables.shape == (ep.length + 1, 1)
        assert ep.variables[0, 0] == 92  # the acid floor bites on the first tic
        assert entry.behaviour in ("human", "random") and ep.attrs["behaviour"] == entry.behaviour
        assert entry.end_reason == "death" and ep.variables[-1, 0] <= 0 < ep.variables[-2, 0]


def test_human_like_walker_holds_keys_and_mixtures_keep_one_behaviour_per_episode() -> None:
    walker = HumanLikePolicy(get_scenario("health_gathering").action_names, "human", seed=0)
    obs = np.zeros((1, 1, 1, 3), dtype=np.uint8)
    actions = [int(walker.act(obs)[0]) for _ in range(3000)]
    changes = sum(a != b for a, b in itertools.pairwise(actions))
    assert len(actions) / (changes + 1) > 3.0  # keys are held for several steps on average
    assert max(len(list(g)) for _, g in itertools.groupby(actions)) >= 20  # long runs happen
    mix = MixturePolicy(
        [("a", RandomPolicy(6, 0), 1.0), ("b", HumanLikePolicy(["noop"] * 6, "human"), 1.0)],
        seed=0,
    )
    names = mix.behaviours(8)
    mix.act(np.zeros((8, 1, 1, 3), np.uint8))
    assert mix.behaviours(8) == names  # stable until the slot's episode ends
    mix.reset_env(3)
    assert len(set(mix.behaviours(64))) == 2
