"""Shared fixtures. ViZDoom writes _vizdoom/ into the working directory, so tests run in tmp."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
I3D_WEIGHTS = ROOT.parent / "shared" / "data" / "i3d" / "i3d_kinetics400_tfhub_rgb.pt"

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _in_tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


@pytest.fixture(scope="session")
def hg_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-policy health_gathering dataset: 10 episodes (8 train, 1 val, 1 test)."""
    from agents.collect import CollectConfig, collect
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
