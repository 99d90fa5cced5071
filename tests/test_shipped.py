"""The model that ships in the package: it loads, is what its card says, and plays."""

from __future__ import annotations

import hashlib
import json

import pytest

from agents.play.loop import Controller, PlayOptions, run
from agents.play.session import PlaySession
from agents.ppo import find_agent, load_agent
from worldmodel.config import VQVAEConfig, from_dict, to_dict
from worldmodel.world_model import ASSETS, WorldModel, shipped_checkpoint

ENV = "health_gathering"


def test_a_model_ships_for_the_default_env() -> None:
    assert shipped_checkpoint(ENV) is not None
    assert shipped_checkpoint("basic") is None
    assert (ASSETS / f"{ENV}.pt").stat().st_size <= 25 * 2**20


def test_shipped_model_matches_its_card() -> None:
    path = shipped_checkpoint(ENV)
    card = json.loads((ASSETS / f"{ENV}.json").read_text())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == card["sha256"]
    model = WorldModel.load(path, ENV)
    # fields added since the card was written take their defaults (the same behaviour)
    assert model.tokenizer.config == from_dict(VQVAEConfig, card["tokenizer_config"])
    prior = json.loads(json.dumps(to_dict(model.prior.config)))  # tuples as the card's lists
    assert prior == {**prior, **card["prior_config"]}
    assert model.action_names == card["action_names"] and card["preset"] == "cpu"
    assert model.tokenizer.config.causal  # play streams frames


@pytest.mark.parametrize("mode", ["dream", "side-by-side"])
def test_shipped_model_plays_50_headless_steps(mode: str) -> None:
    model = WorldModel.load(shipped_checkpoint(ENV), ENV)
    session = PlaySession(ENV, mode, model, seed=3)
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


def test_the_dream_trained_agent_loads_like_the_real_one() -> None:
    from agents.ppo import SHIPPED_AGENTS

    path = SHIPPED_AGENTS / f"{ENV}_dream_ppo.pt"
    agent = load_agent(path, ENV)
    assert agent.n_actions == 6 and agent.meta["trained_in"] == "dream"
    # it ships with its real-game score over 100 episodes and the dream-vs-real check
    assert agent.meta["score"]["episodes"] == 100 and agent.meta["score"]["return_mean"] > 0
    assert agent.meta["exploit"]["starts"] > 0


def test_the_shipped_agent_loads() -> None:
    path = find_agent(ENV, agents_dir="nowhere")
    assert path is not None and path.parent.name == "assets"
    assert load_agent(path, ENV).n_actions == 6
