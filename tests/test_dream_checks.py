"""The measures of the dream-vs-game checks recover known motions and statistics, and the
runner plays the real game from the same starts as the dream."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agents.dream.checks import CheckConfig, run_checks
from agents.dream.measures import (
    collapsed,
    colour_stats,
    contact_sheet,
    following_stats,
    horizontal_shift,
    length_stats,
    motion,
    real_rollout,
    real_starts,
    standing_still_stats,
    zoom,
)
from tests.conftest import tiny_frame_world_model
from worldmodel.sampling.settings import SamplingConfig


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random colour image (h, w, 3) uint8: blurred noise, so shifts and zooms are
    well defined."""
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.random((1, 3, h // 4, w // 4)), dtype=torch.float32)
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return (x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)


@pytest.mark.parametrize("dx", [-7, -2, 3, 11])
def test_horizontal_shift_recovers_a_known_shift_and_its_sign(dx: int) -> None:
    wide = texture(64, 64 + 48)
    a = wide[:, 24:88]
    b = wide[:, 24 - dx : 88 - dx]  # the picture moved right by dx (as when turning left)
    assert horizontal_shift(a[None], b[None]).tolist() == [dx]


def test_zoom_recovers_a_known_scale() -> None:
    a = texture(64, 64, seed=1)
    for scale in (1.0, 1.12, 1.24):
        x = torch.as_tensor(a, dtype=torch.float32).permute(2, 0, 1)[None]
        theta = torch.tensor([[[1 / scale, 0, 0], [0, 1 / scale, 0]]])
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        b = F.grid_sample(x, grid, align_corners=False)[0].permute(1, 2, 0).round().byte().numpy()
        assert zoom(a[None], b[None])[0] == pytest.approx(scale, abs=0.021)


def test_motion_sums_the_shifts_of_a_panning_rollout() -> None:
    wide = texture(64, 64 + 60, seed=2)
    frames = np.stack([wide[:, 30 - 3 * t : 94 - 3 * t] for t in range(1, 6)])[None]
    m = motion(frames, wide[None, :, 30:94])
    assert m["shift"].tolist() == [15]
    assert m["change"][0] > 0


def _moves(dream_shift: list[int], real_shift: list[int]) -> dict:
    def world(shift: list[int], zoom_fwd: list[float], zoom_noop: list[float], change: float):
        return {
            "shift": np.array(shift),
            "log_zoom": np.array(zoom_fwd) if zoom_fwd else np.array(zoom_noop),
            "change": np.full(len(shift), change),
        }

    z = [0.0] * len(dream_shift)
    return {
        "turn_left": {"dream": world(dream_shift, [], z, 1), "real": world(real_shift, [], z, 1)},
        "turn_right": {
            "dream": world([-s for s in dream_shift], [], z, 1),
            "real": world([-s for s in real_shift], [], z, 1),
        },
        "forward": {
            "dream": world(z, [0.1, 0.0, 0.2, -0.1], [], 1),
            "real": world(z, [0.1, 0.1, 0.1, 0.1], [], 1),
        },
        "noop": {"dream": world(z, [], z, 2.0), "real": world(z, [], z, 1.0)},
    }


def test_following_stats_count_the_right_way_and_the_ratios() -> None:
    stats = following_stats(_moves([10, 5, -5, 0], [20, 20, 20, 20]))
    for turn in ("turn_left", "turn_right"):
        assert stats[turn]["dream_right_way"] == 0.5  # a zero shift is not a turn
        assert stats[turn]["real_right_way"] == 1.0
        assert stats[turn]["shift_ratio"] == pytest.approx(2.5 / 20)
    assert stats["forward"]["dream_zooms_more_than_noop"] == 0.5
    assert stats["forward"]["real_zooms_more_than_noop"] == 1.0
    assert stats["noop"]["change_ratio"] == 2.0


def test_following_stats_score_sidesteps_like_turns() -> None:
    # take_cover has no turns: stepping left slides the picture right, as turning left does
    moves = _moves([10, 5, -5, 0], [20, 20, 20, 20])
    sidesteps = {"move_left": moves["turn_left"], "move_right": moves["turn_right"]}
    stats = following_stats({**sidesteps, "noop": moves["noop"]})
    assert "turn_left" not in stats and "forward" not in stats
    assert stats["move_left"]["dream_right_way"] == 0.5
    assert stats["move_right"]["real_right_way"] == 1.0
    assert stats["move_right"]["shift_ratio"] == pytest.approx(2.5 / 20)


def test_standing_still_stats_on_a_known_case() -> None:
    real = np.array([99, 49, 9, 9, -1])  # the last start never died in the real game
    dream = np.array([99, 60, -1, 40, 3])  # on time, late, never, past 3x real (41 > 30)
    s = standing_still_stats(real, dream, cap=3.0, tolerance=0.15)
    assert s["starts"] == 4
    assert s["within_tolerance"] == 0.25 and s["late"] == 0.25 and s["early"] == 0.0
    assert s["ran_past_cap"] == 2
    assert s["real_steps_mean"] == pytest.approx((100 + 50 + 10 + 10) / 4)


def test_length_stats_stop_the_dream_at_the_real_timeout() -> None:
    s = length_stats(np.array([100, 200]), np.array([50, 900]), limit=np.array([500, 300]))
    assert s["dream_mean"] == 175 and s["real_mean"] == 150
    assert s["ratio"] == pytest.approx(175 / 150)
    assert s["dream_timeouts"] == 0.5 and s["real_timeouts"] == 0.0


def test_collapse_flags_flat_and_textureless_frames_but_not_real_ones(hg_dataset: Path) -> None:
    from worldmodel.data import EpisodeStore

    real = EpisodeStore(hg_dataset, "train").read(0, 0, 40)["frames"]
    flags = collapsed(real)
    assert not flags["uniform"].any() and not flags["one_texture"].any()
    flat = np.full((2, 64, 64, 3), 90, np.uint8)
    assert collapsed(flat)["uniform"].all()
    rng = np.random.default_rng(0)
    noise = rng.integers(60, 140, (2, 64, 64, 3)).astype(np.uint8)  # fine texture, no layout
    got = collapsed(noise)
    assert got["one_texture"].all() and not got["uniform"].any()
    mean, std = colour_stats(flat)
    assert mean.shape == (2, 3) and (mean == 90).all() and (std == 0).all()


def test_contact_sheet_takes_every_50th_frame() -> None:
    frames = np.zeros((2, 120, 8, 8, 3), np.uint8)
    frames[:, :, :, :, 0] = np.arange(120)[None, :, None, None]
    sheet = contact_sheet(frames, every=50, gap=2)
    assert sheet.shape == (2 * 10, 3 * 10, 3)
    assert [sheet[0, j * 10, 0] for j in range(3)] == [0, 50, 100]


def test_the_real_game_turns_the_picture_the_estimated_way() -> None:
    starts = real_starts("health_gathering", 3, 4, 6, seed=5)
    assert all(len(s.frames) == len(s.prefix) + 1 for s in starts)
    first = np.stack([s.frames[-1] for s in starts])
    names = ["noop", "forward", "turn_left", "turn_right", "forward_left", "forward_right"]
    shifts = {}
    for name in ("turn_left", "turn_right"):
        real = real_rollout("health_gathering", starts, np.full((3, 4), names.index(name)))
        shifts[name] = motion(real.frames, first)["shift"]
    assert (shifts["turn_left"] > 0).all() and (shifts["turn_right"] < 0).all()


def test_replayed_starts_give_the_same_game() -> None:
    starts = real_starts("health_gathering", 2, 3, 5, seed=7)
    actions = np.ones((2, 6), np.int64)
    a = real_rollout("health_gathering", starts, actions)
    b = real_rollout("health_gathering", starts, actions)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.variables, b.variables)


def test_run_checks_measures_every_part_for_a_stateful_model(tmp_path: Path) -> None:
    model = tiny_frame_world_model(bank=False)
    config = CheckConfig(starts=2, random_starts=2, hold=2, long_play=60, long_dreams=1)
    m = run_checks(model, config, SamplingConfig(), tmp_path)
    assert m["following"]["starts"] == 2
    assert m["following"]["turn_left"]["real_right_way"] == 1.0
    assert m["following"]["turn_right"]["real_right_way"] == 1.0
    assert m["standing_still"]["starts"] == 2
    assert m["random_length"]["episodes"] == 2 and m["random_length"]["real_mean"] > 0
    for control in ("human_holdout", "random"):
        lp = m["long_play"][control]
        assert len(lp["outside_real_range_per_100"]) == 1
        assert lp["nonfinite_variables"] == 0
        assert (tmp_path / lp["contact_sheet"]).stat().st_size > 0


def test_following_stats_survive_a_real_view_that_did_not_shift() -> None:
    """A featureless real view (defend_the_center's arena) can measure no shift at all: the
    ratio is NaN, not a crash at the end of a long evaluation."""
    stats = following_stats(_moves([10, 5, -5, 0], [0, 0, 0, 0]))
    for turn in ("turn_left", "turn_right"):
        assert math.isnan(stats[turn]["shift_ratio"])
        assert stats[turn]["real_right_way"] == 0.0
