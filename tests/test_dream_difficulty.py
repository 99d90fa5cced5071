"""The dream-difficulty checks: recorded death shares, blind policies, dream runs, the tool."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.dream import difficulty as dd
from tests.conftest import save_frame_world_model, script_module, tiny_frame_world_model
from worldmodel.data import EpisodeStore
from worldmodel.sampling.settings import SamplingConfig


def test_recorded_deaths_grow_with_the_horizon_up_to_the_share_in_fatal_episodes(
    hg_dataset: Path,
) -> None:
    context = 4
    store = EpisodeStore(hg_dataset, "train", env="health_gathering")
    windows = np.array([max(0, e.length + 1 - context) for e in store.entries])
    fatal = np.array([e.terminated for e in store.entries])
    longest = max(e.length for e in store.entries)
    shares = dd.recorded_deaths_within(
        hg_dataset, "train", "health_gathering", context, (1, 8, longest)
    )
    assert np.all(np.diff(shares) >= 0)
    assert shares[-1] == pytest.approx(windows[fatal].sum() / windows.sum())
    # within 1 step: only the last window of each fatal episode
    assert shares[0] == pytest.approx(fatal.sum() / windows.sum())


def test_blind_policies_hold_each_action_and_sweep_side_to_side() -> None:
    policies = dd.blind_policies(["noop", "move_left", "move_right"], sweep=20)
    assert set(policies) == {
        "random",
        "hold noop",
        "hold move_left",
        "hold move_right",
        "sweep every 20",
    }
    t, rng = np.array([0, 19, 20, 39, 40]), np.random.default_rng(0)
    assert policies["sweep every 20"](t, rng).tolist() == [1, 1, 2, 2, 1]
    assert policies["hold move_right"](t, rng).tolist() == [2] * 5
    assert "sweep every 20" not in dd.blind_policies(["noop", "turn_left", "turn_right"])


def test_dream_runs_count_each_dream_once_and_stop_at_the_cap(hg_dataset: Path) -> None:
    model = tiny_frame_world_model(bank=False)
    steps, died = dd.dream_runs(
        model, hg_dataset, SamplingConfig(), lambda t, rng: t % 3, dreams=5, max_steps=6, batch=2
    )
    assert steps.shape == died.shape == (5,)
    assert np.all((steps >= 1) & (steps <= 6))
    assert np.all(steps[~died] == 6)  # a dream that did not die ran to the cap


def test_the_tool_prints_both_checks_and_refuses_a_wrong_dataset(
    hg_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = script_module("tools/dream_difficulty.py")
    path = save_frame_world_model(tiny_frame_world_model(bank=False), tmp_path / "hg.pt")
    args = [
        "--checkpoint",
        str(path),
        "--data",
        str(hg_dataset),
        "--dreams",
        "2",
        "--check-split",
        "train",
    ]
    tool.main([*args, "--odds", "1", "5", "--max-steps", "3"])
    out = capsys.readouterr().out
    assert "recorded episodes (train) that died within 16/32/64 steps" in out
    assert out.count("dreams (random actions) that died") == 2
    assert out.count("started k steps before a recorded death") == 2
    assert out.count("started k steps before a recorded hit") == 2
    assert "hold forward_left:" in out
    tool.main([*args, "--odds", "1", "--no-blind", "--keep-likely", "0.05", "--top-p", "0.8"])
    out = capsys.readouterr().out
    assert "started k steps before a recorded hit" in out and "steps dreamed" not in out
    tc = save_frame_world_model(tiny_frame_world_model("take_cover", bank=False), tmp_path / "t.pt")
    with pytest.raises(SystemExit) as stop:
        tool.main(["--checkpoint", str(tc), "--data", str(hg_dataset)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert re.match(r"error: .* holds .health_gathering. data but .*: pass", err)


@pytest.mark.parametrize(("certain_bin", "share"), [(0, 1.0), (84, 0.0)])
def test_imminent_deaths_count_dreams_that_die_before_the_recorded_death(
    hg_dataset: Path, certain_bin: int, share: float
) -> None:
    """A state head sure of HEALTH 0 kills every dream at once; one sure of 84 never does."""
    model = tiny_frame_world_model(bank=False)
    head = model.prior.state_head
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-50.0)
        head.bias[certain_bin] = 50.0
    got = dd.imminent(model, hg_dataset, "train", SamplingConfig(), (1, 3), "death", count=3)
    assert got.tolist() == [share, share]


def test_imminent_hits_count_only_hits_on_time(hg_dataset: Path) -> None:
    """A state head sure of HEALTH 0 drops the health on the first dreamed step: on time for an
    event one step ahead, too early for one four steps ahead (the window is k-1..k+1)."""
    model = tiny_frame_world_model(bank=False)
    head = model.prior.state_head
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-50.0)
        head.bias[0] = 50.0
    got = dd.imminent(model, hg_dataset, "train", SamplingConfig(), (1, 4), "hit", count=3)
    assert got.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="event must be"):
        dd.imminent(model, hg_dataset, "train", SamplingConfig(), (1,), "win")
