"""Shared fixtures. ViZDoom writes _vizdoom/ into the working directory, so tests run in tmp."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# FVD's network (README: "FVD and the I3D weights"); the tests that need it skip without it.
I3D_WEIGHTS = Path(
    os.environ.get(
        "DOOM_DREAM_I3D", ROOT.parent / "shared" / "data" / "i3d" / "i3d_kinetics400_tfhub_rgb.pt"
    )
)
needs_i3d = pytest.mark.skipif(
    not I3D_WEIGHTS.is_file(),
    reason="no I3D weights: set DOOM_DREAM_I3D=PATH/i3d_kinetics400_tfhub_rgb.pt to run this "
    "(README: FVD and the I3D weights)",
)

# Tests run small models whose cost is per-op overhead: one thread is fastest, and it does not
# collapse when the other core is busy (two threads made tiny dreams ~100x slower then).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _in_tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


@pytest.fixture(scope="session")
def hg_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-policy health_gathering dataset: 10 episodes (8 train, 1 val, 1 test)."""
    from agents.collect.run import CollectConfig, collect
    from agents.policies import RandomPolicy

    out = tmp_path_factory.mktemp("data") / "hg"
    cwd = os.getcwd()
    os.chdir(out.parent)
    try:
        config = CollectConfig(env="health_gathering", episodes=10, policy="random", n_envs=4)
        collect(out, config, RandomPolicy(6, seed=0), progress=False)
    finally:
        os.chdir(cwd)
    return out


def tiny_world_model(env: str = "health_gathering", seed: int = 0):
    """An untrained tiny world model (random weights): fast, for plumbing tests."""
    from agents.scenarios import get_scenario
    from worldmodel.config import PRIOR_PRESETS, VQVAE_PRESETS, prior_config_for
    from worldmodel.prior.raster import Prior
    from worldmodel.tokenizer.vqvae import VQVAE
    from worldmodel.world_model import WorldModel

    torch.manual_seed(seed)
    names = list(get_scenario(env).action_names)
    tokenizer = VQVAE(VQVAE_PRESETS["tiny"]).eval()
    prior = Prior(prior_config_for(PRIOR_PRESETS["tiny"], tokenizer.config, len(names))).eval()
    return WorldModel(tokenizer, prior, env, names)


def save_world_model(model, path: Path, heads: bool = True) -> Path:
    """Write ``model`` in the ``worldmodel.pt`` layout of ``export_world_model`` (``heads=False``
    leaves out the reward and termination heads, as an older checkpoint would)."""
    from worldmodel.checkpoint import save_checkpoint
    from worldmodel.config import to_dict

    weights = model.prior.state_dict()
    if not heads:
        weights = {k: v for k, v in weights.items() if not k.startswith(("reward_", "done_"))}
    save_checkpoint(
        path,
        {
            "kind": "worldmodel",
            "env": model.env,
            "preset": "tiny",
            "action_names": model.action_names,
            "config": to_dict(model.prior.config),
            "prior": weights,
            "tokenizer": {
                "config": to_dict(model.tokenizer.config),
                "model": model.tokenizer.state_dict(),
                "step": 0,
            },
            "step": 0,
            "metrics": {},
            "train_config": {},
        },
    )
    return path


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_world_model(tiny_world_model(), tmp_path_factory.mktemp("wm") / "worldmodel.pt")


def tiny_frame_world_model(env: str = "health_gathering", seed: int = 0, bank: bool = True):
    """An untrained tiny world model with the frame prior and the env's game state (HEALTH and
    the scenario's rules), with a bank of random start windows when ``bank``."""
    import numpy as np

    from agents.doom_env import make_env
    from agents.scenarios import get_scenario
    from worldmodel.config import FRAME_PRIOR_PRESETS, VQVAE_PRESETS, frame_prior_config_for
    from worldmodel.dream.starts import DreamStarts
    from worldmodel.game_state import GameRules, GameState
    from worldmodel.prior.frame import FramePrior
    from worldmodel.tokenizer.vqvae import VQVAE
    from worldmodel.world_model import WorldModel

    torch.manual_seed(seed)
    names = list(get_scenario(env).action_names)
    real = make_env(env)
    game = GameState(real.variable_names, GameRules.from_manifest(real.rules))
    real.close()
    tokenizer = VQVAE(VQVAE_PRESETS["tiny"]).eval()
    config = frame_prior_config_for(
        FRAME_PRIOR_PRESETS["tiny"], tokenizer.config, len(names), game.vocab
    )
    prior = FramePrior(config).eval()
    starts = None
    if bank:
        rng = np.random.default_rng(seed)
        n = config.steps + 1
        starts = DreamStarts(
            codes=rng.integers(0, tokenizer.config.n_codes, (4, n, 8, 8)).astype(np.int16),
            actions=rng.integers(0, len(names), (4, n)).astype(np.int16),
            variables=np.full((4, n, game.size), 84.0, np.float32),
            episodes=np.arange(4),
            steps=np.full(4, 10),
        ).to_dict()
    return WorldModel(tokenizer, prior, env, names, game=game, starts=starts)


def save_frame_world_model(model, path: Path) -> Path:
    """Write a frame-prior world model in the ``worldmodel.pt`` layout of
    ``export_world_model``."""
    from worldmodel.checkpoint import save_checkpoint
    from worldmodel.config import to_dict

    payload = {
        "kind": "worldmodel",
        "arch": "frame",
        "env": model.env,
        "preset": "tiny",
        "action_names": model.action_names,
        "config": to_dict(model.prior.config),
        "game": model.game.to_dict(),
        "prior": model.prior.state_dict(),
        "tokenizer": {
            "config": to_dict(model.tokenizer.config),
            "model": model.tokenizer.state_dict(),
            "step": 0,
        },
        "step": 0,
        "metrics": {},
        "train_config": {},
    }
    if model.starts is not None:
        payload["starts"] = model.starts
    save_checkpoint(path, payload)
    return path


def script_module(path: str):
    """The module of a script that is not in a package (``evaluate.py``,
    ``tools/ship_model.py``), loaded from the repository root, to call it in the test process."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"script_{Path(path).stem}", ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def entry_point(name: str):
    """The ``main(argv)`` of the top-level script ``name``.py (collect, train, play, evaluate),
    to run a command line in the test process."""
    return script_module(f"{name}.py").main
