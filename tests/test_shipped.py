"""The model that ships in the package: it loads, is what its card says, and plays."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from agents.play.loop import Controller, PlayOptions, run
from agents.play.session import PlaySession
from agents.ppo import find_agent, load_agent
from worldmodel.config import VQVAEConfig, from_dict, to_dict
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.world_model import ASSETS, WorldModel, shipped_checkpoint

ENV = "health_gathering"
SHIPPED_ENVS = ("health_gathering", "take_cover", "defend_the_center")


def test_models_ship_for_health_gathering_take_cover_and_defend_the_center() -> None:
    for env in SHIPPED_ENVS:
        assert shipped_checkpoint(env) is not None
        assert (ASSETS / f"{env}.pt").stat().st_size <= 25 * 2**20
    assert shipped_checkpoint("basic") is None


@pytest.mark.parametrize("env", SHIPPED_ENVS)
def test_shipped_model_matches_its_card(env: str) -> None:
    path = shipped_checkpoint(env)
    card = json.loads((ASSETS / f"{env}.json").read_text())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == card["sha256"]
    model = WorldModel.load(path, env)
    # fields added since the card was written take their defaults (the same behaviour)
    assert model.tokenizer.config == from_dict(VQVAEConfig, card["tokenizer_config"])
    prior = json.loads(json.dumps(to_dict(model.prior.config)))  # tuples as the card's lists
    assert prior == {**prior, **card["prior_config"]}
    assert model.action_names == card["action_names"] and card["preset"] == "cpu"
    assert model.tokenizer.config.causal  # play streams frames
    # the sampling it dreams with by default is the one its card reports (none: the plain one)
    own = card.get("default_sampling", {}).get("settings", {})
    assert model.sampling == dataclasses.replace(SamplingConfig(), **own)


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        (ENV, "dream"),
        (ENV, "side-by-side"),
        ("take_cover", "dream"),
        ("defend_the_center", "dream"),
    ],
)
def test_shipped_model_plays_50_headless_steps(env: str, mode: str) -> None:
    model = WorldModel.load(shipped_checkpoint(env), env)
    session = PlaySession(env, mode, model, seed=3)
    names = list(session.scenario.action_names)
    try:
        summary = run(
            session,
            PlayOptions(headless=True, steps=50, fps=0),
            Controller("random", len(names), names, 0, None),
        )
    finally:
        session.close()
    assert summary.steps == 50 and summary.frames >= 51


@pytest.mark.parametrize(("env", "n_actions"), [(ENV, 6), ("take_cover", 3)])
def test_the_dream_trained_agents_load_like_the_real_one(env: str, n_actions: int) -> None:
    from agents.ppo import SHIPPED_AGENTS

    path = SHIPPED_AGENTS / f"{env}_dream_ppo.pt"
    agent = load_agent(path, env)
    assert agent.n_actions == n_actions and agent.meta["trained_in"] == "dream"
    # it ships with its real-game score over 100 episodes and the dream-vs-real check
    assert agent.meta["score"]["episodes"] == 100 and agent.meta["score"]["return_mean"] > 0
    assert agent.meta["exploit"]["starts"] > 0
    # take_cover's was trained seeing its last action (--prev-action); the file says so itself
    assert agent.memory == (env == "take_cover") == agent.meta["ppo"].get("prev_action", False)


def test_the_shipped_agent_loads() -> None:
    path = find_agent(ENV, agents_dir="nowhere")
    assert path is not None and path.parent.name == "assets"
    assert load_agent(path, ENV).n_actions == 6


def test_tab_falls_back_to_a_shipped_dream_trained_agent(tmp_path, monkeypatch) -> None:
    import agents.ppo as ppo

    assert find_agent("take_cover", agents_dir="nowhere").name == "take_cover_ppo.pt"
    (tmp_path / "take_cover_dream_ppo.pt").write_bytes(b"")  # only a dream-trained one ships
    monkeypatch.setattr(ppo, "SHIPPED_AGENTS", tmp_path)
    path = find_agent("take_cover", agents_dir="nowhere")
    assert path == tmp_path / "take_cover_dream_ppo.pt"
    assert find_agent("basic", agents_dir="nowhere") is None


def test_the_shipped_defend_the_center_dream_carries_ammo_health_and_kills() -> None:
    """The dream with a gun: its state is the scenario's three variables, as changes."""
    model = WorldModel.load(shipped_checkpoint("defend_the_center"), "defend_the_center")
    assert model.game.names == ("AMMO2", "HEALTH", "KILLCOUNT")
    assert model.prior.config.state_delta and model.game.rules.kill_reward == 1.0
    assert "attack" in model.action_names
