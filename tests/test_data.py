from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from worldmodel.data import (
    DatasetError,
    Episode,
    EpisodeStore,
    WindowDataset,
    load_manifest,
    read_episode,
    split_of,
    write_episode,
)


def test_split_is_deterministic_8_1_1() -> None:
    splits = [split_of(i) for i in range(1000)]
    assert splits == [split_of(i) for i in range(1000)]
    assert (splits.count("train"), splits.count("val"), splits.count("test")) == (800, 100, 100)


def test_manifest_records_collection(hg_dataset: Path) -> None:
    raw = json.loads((hg_dataset / "manifest.json").read_text())
    m = load_manifest(hg_dataset, env="health_gathering")
    assert raw["counts"]["episodes"] == 10 == len(m.episodes)
    assert raw["counts"]["frames"] == sum(e.length + 1 for e in m.episodes)
    assert raw["frame_skip"] == 4 and raw["resolution"] == [64, 64]
    assert raw["action_names"][0] == "noop" and raw["policy"] == "random"
    assert abs(sum(raw["action_frequencies"].values()) - 1.0) < 1e-3
    assert raw["split"] == {"train": list(range(8)), "val": [8], "test": [9]}
    with pytest.raises(DatasetError, match="take_cover"):
        load_manifest(hg_dataset, env="take_cover")


def test_episode_files_hold_t_plus_one_frames(hg_dataset: Path) -> None:
    ep = read_episode(hg_dataset / "ep_000003.h5")
    t = ep.length
    assert ep.frames.shape == (t + 1, 64, 64, 3) and ep.frames.dtype == np.uint8
    assert ep.actions.shape == ep.rewards.shape == ep.terminated.shape == (t,)
    assert ep.terminated[-1] != ep.truncated[-1] and not ep.terminated[:-1].any()
    assert ep.attrs["seed"] == 3 and ep.attrs["env"] == "health_gathering"


def test_windows_align_each_frame_with_the_step_that_led_to_it(hg_dataset: Path) -> None:
    store = EpisodeStore(hg_dataset, "train")
    ds = WindowDataset(store, window=8)
    assert len(ds) == sum(e.length + 2 - 8 for e in store.entries)
    ep = read_episode(hg_dataset / store.entries[1].file)
    first = ds[int(ds._ends[0])]  # first window of the second episode
    assert first["start"] == 0 and first["actions"][0] == -1 and first["rewards"][0] == 0
    np.testing.assert_array_equal(first["frames"], ep.frames[:8])
    np.testing.assert_array_equal(first["actions"][1:], ep.actions[:7])
    i = int(ds._ends[0]) + 5
    item = ds[i]
    np.testing.assert_array_equal(item["frames"], ep.frames[5:13])
    np.testing.assert_array_equal(item["actions"], ep.actions[4:12])
    np.testing.assert_array_equal(item["rewards"], ep.rewards[4:12])
    last = ds[int(ds._ends[1]) - 1]  # the window ending on the final frame carries the ending
    assert last["terminated"][-1] or last["truncated"][-1]


def test_loader_keeps_few_files_open(hg_dataset: Path) -> None:
    store = EpisodeStore(hg_dataset, "train", max_open=2)
    ds = WindowDataset(store, window=4)
    for i in np.random.default_rng(0).integers(0, len(ds), 50):
        ds[int(i)]
    assert len(store._open) <= 2


def _damaged_copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_truncated_episode_file_is_skipped_by_name_or_refused(
    hg_dataset: Path, tmp_path: Path
) -> None:
    data = _damaged_copy(hg_dataset, tmp_path / "damaged")
    victim = data / "ep_000002.h5"
    victim.write_bytes(victim.read_bytes()[:5000])
    with pytest.warns(UserWarning, match="ep_000002.h5"):
        store = EpisodeStore(data, "train")
    assert len(store) == 7
    with pytest.raises(DatasetError, match=r"ep_000002\.h5"):
        EpisodeStore(data, "train", on_corrupt="raise")


def _out_of_range_action(path: Path) -> None:
    episode = read_episode(path)
    episode.actions[5] = 99
    write_episode(path, episode)


def _small_frames(path: Path) -> None:
    episode = read_episode(path)
    episode.frames = np.ascontiguousarray(episode.frames[:, ::2, ::2])
    write_episode(path, episode)


def _short_rewards(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        rewards = f["rewards"][:-1]
        del f["rewards"]
        f.create_dataset("rewards", data=rewards)


def _two_variables(path: Path) -> None:
    episode = read_episode(path)
    episode.variables = np.repeat(episode.variables, 2, axis=1)
    write_episode(path, episode)


def _listed_longer(path: Path) -> None:
    manifest = json.loads((path.parent / "manifest.json").read_text())
    manifest["episodes"][2]["length"] += 3
    (path.parent / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_out_of_range_action, "action 99 at step 5 is outside the dataset's 6 actions"),
        (_small_frames, "frames of 32x32x3 uint8, the dataset's are 64x64x3 uint8"),
        (_short_rewards, "array lengths do not match"),
        (_two_variables, "2 game variables per frame, the manifest names 1 (HEALTH)"),
        (_listed_longer, "steps, but the manifest lists"),
    ],
)
def test_an_episode_unlike_its_manifest_is_named_when_the_dataset_opens(
    hg_dataset: Path, tmp_path: Path, damage, problem: str
) -> None:
    """Found at opening, with the file and the problem named: skipped with a warning (the
    default, as a damaged file is), or refused with on_corrupt="raise"; dreams from the rest
    start and run."""
    from tests.conftest import tiny_frame_world_model
    from worldmodel.dream.env import VecDreamEnv

    data = _damaged_copy(hg_dataset, tmp_path / "unlike")
    damage(data / "ep_000002.h5")
    with pytest.warns(UserWarning, match=f"skipping ep_000002.h5: .*{re.escape(problem)}"):
        store = EpisodeStore(data, "train")
    assert len(store) == 7 and 2 not in [e.index for e in store.entries]
    with pytest.raises(DatasetError, match=f"ep_000002.h5: .*{re.escape(problem)}"):
        EpisodeStore(data, "train", on_corrupt="raise")
    with pytest.warns(UserWarning, match="ep_000002.h5"):
        env = VecDreamEnv(tiny_frame_world_model(bank=False), 2, data, max_steps=2)
    env.reset(seed=0)
    for _ in range(4):
        env.step(np.zeros(2, dtype=np.int64))
    env.close()


def test_corrupt_frames_inside_a_valid_file_do_not_stop_reading(
    hg_dataset: Path, tmp_path: Path
) -> None:
    data = _damaged_copy(hg_dataset, tmp_path / "bitrot")
    victim = data / "ep_000000.h5"
    with h5py.File(victim, "r") as f:
        offset = f["frames"].id.get_chunk_info(0).byte_offset
    raw = bytearray(victim.read_bytes())
    for k in range(offset, offset + 2000):  # flip bytes in the first compressed frame chunk
        raw[k] ^= 0xFF
    victim.write_bytes(bytes(raw))
    store = EpisodeStore(data, "train")  # the header is intact, so it opens
    ds = WindowDataset(store, window=4)
    with pytest.warns(UserWarning, match="ep_000000.h5"):
        item = ds[0]
    assert item["episode"] != 0 and item["frames"].shape == (4, 64, 64, 3)


def test_missing_dataset_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"collect\.py"):
        EpisodeStore(tmp_path / "nothing")


@pytest.mark.parametrize("steps", [1, 14, 15, 16, 40])
def test_episodes_shorter_than_a_chunk_are_written_and_read_back(
    tmp_path: Path, steps: int
) -> None:
    frames = np.random.default_rng(steps).integers(0, 256, (steps + 1, 64, 64, 3), dtype=np.uint8)
    episode = Episode(
        frames=frames,
        actions=np.zeros(steps, dtype=np.int64),
        rewards=np.ones(steps, dtype=np.float32),
        terminated=np.arange(steps) == steps - 1,
        truncated=np.zeros(steps, dtype=bool),
        attrs={"seed": 0},
        variables=np.full((steps + 1, 1), 100.0, np.float32),
    )
    write_episode(tmp_path / "ep.h5", episode)  # basic's agent can win in a few steps
    back = read_episode(tmp_path / "ep.h5")
    np.testing.assert_array_equal(back.frames, frames)
    assert back.length == steps
