"""The person-like shooter: it finds monster-like pixels, turns toward them and fires."""

from __future__ import annotations

import numpy as np
import pytest

from agents.aiming import AimingPolicy, monster_columns, target_column
from agents.scenarios import get_scenario

NAMES = list(get_scenario("defend_the_center").action_names)


def frame_with_monster(column: int | None) -> np.ndarray:
    frame = np.full((64, 64, 3), 110, np.uint8)  # grey floor
    frame[:24] = (150, 120, 90)  # brown wall
    if column is not None:
        frame[26:36, column - 1 : column + 2] = (200, 60, 50)  # a red demon
    return frame


def test_monster_pixels_are_found_in_their_column() -> None:
    counts = monster_columns(np.stack([frame_with_monster(10), frame_with_monster(None)]))
    assert target_column(counts[0]) in (9, 10, 11)
    assert target_column(counts[1]) is None


def test_it_turns_toward_a_monster_and_fires_once_it_is_centred() -> None:
    ids = {n: i for i, n in enumerate(NAMES)}
    left, right, fire = set(), set(), set()
    for seed in range(20):
        policy = AimingPolicy(NAMES, "aim", seed)
        policy.style = policy.style.__class__(**{**vars(policy.style), "wild": 0, "pause": 0})
        left.add(int(policy.act(frame_with_monster(5)[None])[0]))
        policy.reset_env(0)
        right.add(int(policy.act(frame_with_monster(58)[None])[0]))
        policy.reset_env(0)
        fire.add(int(policy.act(frame_with_monster(32)[None])[0]))
    assert left <= {ids["turn_left"], ids["attack_left"]} and ids["turn_left"] in left
    assert right <= {ids["turn_right"], ids["attack_right"]}
    assert fire == {ids["attack"]}


def test_aiming_needs_a_gun_and_turns() -> None:
    with pytest.raises(ValueError, match="aiming needs"):
        AimingPolicy(list(get_scenario("take_cover").action_names))


def test_collection_knows_the_shooters_by_name(tmp_path) -> None:
    from agents.collect.run import CollectConfig, named_policy
    from agents.ppo import PPOConfig
    from agents.scripted import Hold

    config = CollectConfig(env="defend_the_center", episodes=1)
    assert isinstance(named_policy("aim_holdout", config, tmp_path, PPOConfig()), AimingPolicy)
    spin = named_policy("spin", config, tmp_path, PPOConfig())
    assert isinstance(spin, Hold) and spin.action == NAMES.index("attack_right")
    hg = CollectConfig(env="health_gathering", episodes=1)
    with pytest.raises(ValueError, match="attack_right"):
        named_policy("spin", hg, tmp_path, PPOConfig())
