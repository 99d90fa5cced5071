"""Ranking policies in the dream against the real game: the scripted sweeps, Kendall's tau, the
ranking from shared starts, and tools/dream_ranking.py with its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.dream.ranking import Ranking, kendall_tau, rank_policies
from agents.dream.training import DreamConfig
from agents.policies import RandomPolicy
from agents.scoring import play_real
from agents.scripted import Hold, Sweep, sweep
from tests.conftest import ROOT, save_frame_world_model, script_module, tiny_frame_world_model
from worldmodel.world_model import WorldModel

TAKE_COVER = ["noop", "move_left", "move_right"]


@pytest.fixture(scope="module")
def tc_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_frame_world_model(
        tiny_frame_world_model("take_cover"), tmp_path_factory.mktemp("wm") / "tc.pt"
    )


def test_kendall_tau_counts_pairs_in_the_same_order() -> None:
    assert kendall_tau([1, 2, 3], [10, 20, 30]) == 1.0
    assert kendall_tau([1, 2, 3], [30, 20, 10]) == -1.0
    assert kendall_tau([1, 2, 3], [10, 30, 20]) == pytest.approx(1 / 3)  # 2 of 3 pairs agree
    assert kendall_tau([1, 1, 3], [10, 20, 30]) == pytest.approx(2 / 3)  # the tie counts 0
    with pytest.raises(ValueError, match="same length"):
        kendall_tau([1, 2], [1, 2, 3])


def test_a_sweep_counts_each_slot_from_its_own_episode_start() -> None:
    s = sweep(TAKE_COVER, 2)
    obs = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    assert [s.act(obs).tolist() for _ in range(5)] == [[1, 1], [1, 1], [2, 2], [2, 2], [1, 1]]
    s.reset_env(1)  # slot 1 starts a new episode: left again, slot 0 goes on
    assert s.act(obs).tolist() == [1, 1]
    assert s.act(obs).tolist() == [2, 1]
    assert s.act(obs[:1], np.array([1])).tolist() == [2]  # only slot 1 acts
    assert s.act(obs[:1], np.array([3])).tolist() == [1]  # a slot never seen starts fresh
    assert Hold(0, 3).act(obs).tolist() == [0, 0]
    with pytest.raises(ValueError, match="needs move_left and move_right"):
        sweep(["turn_left", "turn_right", "move_forward"], 4)
    with pytest.raises(ValueError, match="every >= 1"):
        Sweep(1, 2, 0, 3)


def test_the_ranking_plays_every_policy_from_the_same_starts(tc_model: Path) -> None:
    model = WorldModel.load(tc_model)
    policies = {"random": lambda: RandomPolicy(3, seed=0), "sweep": lambda: sweep(TAKE_COVER, 8)}
    ranking = rank_policies(model, policies, DreamConfig(), n_starts=2, dream_seeds=2)
    assert ranking.names == ["random", "sweep"]
    assert ranking.dream_steps.shape == ranking.real_steps.shape == (2, 2)
    assert (ranking.dream_steps > 0).all() and (ranking.real_steps > 0).all()
    # the real side is the real game from those starts: replaying them gives the same steps
    seeds = [10_000, 10_001]
    prefix = [[0] * ranking.prefix] * 2
    cap = 525 - ranking.prefix
    again, _ = play_real(sweep(TAKE_COVER, 8), "take_cover", seeds, prefix, cap=cap)
    np.testing.assert_array_equal(ranking.real_steps[1], again.steps)
    assert -1.0 <= ranking.tau <= 1.0
    table = ranking.table(4)
    assert "| random |" in table and "| sweep |" in table and "Kendall's tau" in table


def test_the_dream_favourite_is_placed_in_the_real_order() -> None:
    ranking = Ranking(
        ["a", "b", "c"],
        dream_steps=np.array([[50.0, 70.0], [90.0, 110.0], [10.0, 10.0]]),  # b, a, c
        real_steps=np.array([[80.0, 80.0], [40.0, 60.0], [5.0, 5.0]]),  # a, b, c
        prefix=3,
    )
    assert ranking.real_rank_of_dream_best() == 2  # the dream's best (b) is second for real
    assert ranking.tau == pytest.approx(1 / 3)
    figures = ranking.to_dict(frame_skip=4)
    assert figures["policies"]["b"]["dream_tics_mean"] == (100.0 + 3) * 4
    assert "the dream's favourite (b) is #2 in the real game" in ranking.table(4)


def test_a_ranking_by_return_orders_by_the_score_not_by_survival() -> None:
    """defend_the_center scores kills: a policy that dies sooner with more kills ranks first."""
    steps = np.array([[100.0, 100.0], [50.0, 60.0]])
    returns = np.array([[1.0, 2.0], [6.0, 5.0]])
    by_steps = Ranking(["noop", "spin"], steps, steps, 0, returns, returns)
    by_return = Ranking(["noop", "spin"], steps, steps, 0, returns, returns, by="return")
    assert by_steps.real_rank_of_dream_best() == 1 and "dream tics" in by_steps.table(4)
    assert "| spin | 5.5 ± 0.4 | 5.5 ± 0.4 | 1 | 1 |" in by_return.table(4)  # std 0.5, 2 starts
    assert by_return.to_dict(4)["policies"]["spin"]["real_return_mean"] == 5.5
    with pytest.raises(ValueError, match="needs the returns"):
        Ranking(["a", "b"], steps, steps, 0, by="return")


def test_the_ranking_tool_prints_both_orders_and_refuses_bad_input(
    tc_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main = script_module("tools/dream_ranking.py").main
    out = tmp_path / "rank.json"
    args = ["--checkpoint", str(tc_model), "--starts", "2", "--json", str(out)]
    main([*args, "--sweeps", "6"])
    printed = capsys.readouterr().out
    assert "| sweep every 6 |" in printed and "Kendall's tau" in printed
    assert set(json.loads(out.read_text())["policies"]) == {"random", "sweep every 6"}
    hg_agent = ROOT / "agents/assets/health_gathering_ppo.pt"
    for bad, message in (
        ([], "nothing to rank against random"),
        (["--sweeps", "0"], "--sweeps must be at least 1"),
        (["--agents", str(hg_agent)], "is an agent for 'health_gathering', not 'take_cover'"),
        (["--agents", str(tmp_path / "none.pt")], "no agent at"),
        (["--sweeps", "4", "--starts", "0"], "--starts must be at least 1"),
    ):
        with pytest.raises(SystemExit) as stop:
            main([*args, *bad])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    hg = save_frame_world_model(tiny_frame_world_model(), tmp_path / "hg.pt")
    with pytest.raises(SystemExit) as stop:
        main(["--checkpoint", str(hg), "--sweeps", "4"])
    assert stop.value.code == 2 and "needs move_left and move_right" in capsys.readouterr().err
