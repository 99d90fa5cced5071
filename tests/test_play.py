from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import pygame
import pytest

from agents.play.keys import action_for_keys, buttons_for_keys
from agents.play.loop import Controller, PlayOptions, run
from agents.play.session import PlaySession
from agents.scenarios import SCENARIOS, get_scenario
from tests.conftest import ROOT, tiny_world_model
from worldmodel.sampling.settings import SamplingConfig

KEYS_OF = {
    "MOVE_FORWARD": "w",
    "MOVE_BACKWARD": "s",
    "TURN_LEFT": "left",
    "TURN_RIGHT": "d",
    "MOVE_LEFT": "q",
    "MOVE_RIGHT": "e",
    "ATTACK": "space",
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_action_of_every_env_has_keys(name: str) -> None:
    scenario = get_scenario(name)
    assert action_for_keys(set(), scenario) == 0  # nothing held: noop
    for index, (_, pressed) in enumerate(scenario.actions):
        keys = {KEYS_OF[b] for b in pressed}
        if name in ("take_cover", "basic"):  # no turning here: left/right move sideways
            keys = {{"q": "a", "e": "d"}.get(k, k) for k in keys}
        assert action_for_keys(keys, scenario) == index, (name, pressed, keys)


def test_keys_map_like_a_player_expects() -> None:
    hg = get_scenario("health_gathering")
    names = hg.action_names
    assert names[action_for_keys({"up"}, hg)] == "forward"
    assert names[action_for_keys({"w", "a"}, hg)] == "forward_left"
    assert names[action_for_keys({"up", "right"}, hg)] == "forward_right"
    assert names[action_for_keys({"w", "x"}, hg)] == "forward"  # unknown keys are ignored
    assert names[action_for_keys({"w", "s"}, hg)] == "forward"  # no backward here
    tc = get_scenario("take_cover")
    assert buttons_for_keys({"left"}, tc) == {"MOVE_LEFT"}


def _run(mode: str, steps: int, policy: str = "random", on_frame=None, record=None):
    model = None if mode == "real" else tiny_world_model()
    session = PlaySession("health_gathering", mode, model, seed=1)
    scenario = session.scenario
    controller = Controller(policy, len(scenario.actions), list(scenario.action_names), 0, None)
    try:
        return run(
            session,
            PlayOptions(headless=True, steps=steps, fps=0, record=record),
            controller,
            on_frame,
        )
    finally:
        session.close()


@pytest.mark.parametrize("mode", ["dream", "real", "side-by-side"])
def test_headless_session_of_50_steps(mode: str) -> None:
    summary = _run(mode, 50)
    assert summary.steps == 50
    assert summary.frames >= 51  # the start frame, then one per step (more after restarts)
    assert len(summary.frame_times) == summary.frames and summary.median_fps() > 0


def test_posted_key_events_drive_the_dream(tmp_path: Path) -> None:
    def hold_forward_left(frame: int) -> None:
        if frame == 2:
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_w))
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_LEFT))
        if frame == 6:
            pygame.event.post(pygame.event.Event(pygame.KEYUP, key=pygame.K_w))

    record = tmp_path / "keys.mp4"
    _run("dream", 8, policy="human", on_frame=hold_forward_left, record=record)
    log = json.loads((tmp_path / "keys.actions.json").read_text())
    names = [s["action_name"] for s in log["steps"]]
    assert names[0] == "noop" and "forward_left" in names and names[-1] == "turn_left"


def test_recording_is_a_playable_mp4_with_one_frame_per_shown_frame(tmp_path: Path) -> None:
    record = tmp_path / "session.mp4"
    summary = _run("side-by-side", 12, record=record)
    reader = imageio.get_reader(record)
    assert reader.count_frames() == summary.frames
    width, height = reader.get_meta_data()["size"]
    assert width > height > 64 * 8  # two panes side by side plus the HUD
    log = json.loads(record.with_name("session.actions.json").read_text())
    assert log["frames"] == summary.frames and len(log["steps"]) == 12
    assert log["env"] == "health_gathering" and log["mode"] == "side-by-side"


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "play.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_cli_plays_headless_and_replays_a_recording(tiny_model_path: Path, tmp_path: Path) -> None:
    """The replay takes the recording's seed (and env and sampling) without being told."""
    record = tmp_path / "a.gif"
    first = _cli(
        "--checkpoint",
        str(tiny_model_path),
        "--headless",
        "--steps",
        "10",
        "--mode",
        "side-by-side",
        "--seed",
        "3",
        "--top-p",
        "0.9",
        "--record",
        str(record),
    )
    assert first.returncode == 0, first.stderr
    assert "fps" in first.stdout and record.exists()
    replay = _cli(
        "--checkpoint",
        str(tiny_model_path),
        "--headless",
        "--mode",
        "side-by-side",
        "--policy",
        f"script:{tmp_path / 'a.actions.json'}",
        "--record",
        str(tmp_path / "b.gif"),
    )
    assert replay.returncode == 0, replay.stderr
    a = json.loads((tmp_path / "a.actions.json").read_text())
    b = json.loads((tmp_path / "b.actions.json").read_text())
    assert b["seed"] == a["seed"] == 3 and b["sampling"]["top_p"] == a["sampling"]["top_p"] == 0.9
    a, b = a["steps"], b["steps"]
    assert [s["action"] for s in a] == [s["action"] for s in b]
    assert [s["reward_pred"] for s in a] == [s["reward_pred"] for s in b]  # same dream


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--seed", "4"], "--seed 4: {log} was recorded with --seed 3, and replays the same dream"),
        (["--env", "take_cover"], "--env take_cover: {log} was recorded with --env health_gath"),
    ],
)
def test_a_replay_with_another_seed_or_env_is_refused_in_one_line(
    tmp_path: Path, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import entry_point

    log = tmp_path / "s.actions.json"
    log.write_text(json.dumps({"env": "health_gathering", "seed": 3, "steps": [{"action": 1}]}))
    argv = ["--mode", "real", "--headless", "--policy", f"script:{log}", *flags]
    with pytest.raises(SystemExit) as stop:
        entry_point("play")(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: " + message.format(log=log))


def test_no_display_is_a_clear_error_not_a_hang(tiny_model_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")
    }
    result = _cli("--checkpoint", str(tiny_model_path), env=env)
    assert result.returncode == 2 and "--headless" in result.stderr


def test_sdl_says_nothing_that_looks_like_our_error_lines() -> None:
    """Without a usable XDG_RUNTIME_DIR (containers, ssh, CI) SDL prints ``error:
    XDG_RUNTIME_DIR is invalid``; play's window and the dream's human render give it a private
    folder first."""
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "SDL_VIDEODRIVER")}
    code = (
        "import os, pygame; from worldmodel.dream.env import sdl_runtime_dir; "
        "sdl_runtime_dir(); pygame.display.init(); print(oct(os.stat("
        "os.environ['XDG_RUNTIME_DIR']).st_mode & 0o777))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower() and result.stdout.strip() == "0o700"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "battle"], "unknown env 'battle'"),
        (["--device", "cuda"], "no CUDA GPU"),
        (["--env", "take_cover"], "trained on 'health_gathering', not 'take_cover'"),
        (["--record", "x.avi"], ".mp4 or .gif"),
        (["--policy", "script:missing.txt"], "missing.txt"),
        (["--top-p", "0"], "--top-p must be in [0.01, 1]"),
    ],
)
def test_bad_input_gets_a_one_line_error(
    tiny_model_path: Path, args: list[str], message: str
) -> None:
    if args[0] == "--device" and __import__("torch").cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = _cli("--checkpoint", str(tiny_model_path), "--headless", "--steps", "2", *args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_model_says_how_to_make_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "play.py"), "--env", "basic", "--headless"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "train.py --env basic --quickstart" in result.stderr


def test_a_dream_with_game_state_shows_health_dies_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A frame model whose state head always dreams 0 HP: the dream dies on its first step, the
    HUD shows the health bar, the death screen the score, and headless runs print it."""
    import torch

    from agents.play.loop import _message
    from tests.conftest import tiny_frame_world_model

    model = tiny_frame_world_model(bank=False)
    with torch.no_grad():
        model.prior.state_head.bias.fill_(-50.0)
        model.prior.state_head.bias[0] = 50.0  # bin 0 of HEALTH: dead
    session = PlaySession("health_gathering", "side-by-side", model, seed=1)
    session.restart()
    assert session.dream_score.variables[0] == session.real_score.variables[0] > 0
    session.step(1)
    assert session.dream_over and session.dream_score.variables[0] == 0
    assert session.dream_score.ret == -96.0 and session.dream_score.reason == "death"
    assert _message(session, paused=False)[:2] == [
        "You died in the dream",
        "survived 1 steps, return -96",
    ]
    controller = Controller("random", 6, list(session.scenario.action_names), 0, None)
    run(session, PlayOptions(headless=True, steps=3, fps=0), controller)
    out = capsys.readouterr().out
    assert "dream death after 1 steps, return -96 (HEALTH 0)" in out


def test_a_session_can_keep_the_pixels_of_unchanged_codes() -> None:
    from tests.conftest import tiny_frame_world_model

    session = PlaySession("health_gathering", "dream", tiny_frame_world_model(), seed=1)
    steady = PlaySession(
        "health_gathering",
        "dream",
        tiny_frame_world_model(),
        seed=1,
        copy_unchanged=True,
        top_p=0.9,
        keep_likely=0.4,
    )
    try:
        assert not session.dreamer.sampling.copy_unchanged
        assert session.dreamer.sampling.top_p is None
        steady.set_temperature(0.5)  # the T/G keys keep the other choices
        assert steady.dreamer.sampling == SamplingConfig(
            temperature=0.5, top_p=0.9, copy_unchanged=True, passes=1, keep_likely=0.4
        )
        controller = Controller("random", 6, list(steady.scenario.action_names), 0, None)
        summary = run(steady, PlayOptions(headless=True, steps=5, fps=0), controller)
        assert summary.steps == 5
    finally:
        session.close()
        steady.close()


def test_resync_starts_the_dream_again_from_the_real_game_now() -> None:
    """Side by side, C restarts the dream from the real game's latest frames and HEALTH (and
    its steps and return); the dream then goes on from there."""
    from tests.conftest import tiny_frame_world_model

    session = PlaySession("health_gathering", "side-by-side", tiny_frame_world_model(), seed=1)
    try:
        session.restart()
        for action in (1, 1, 2, 1, 3):
            session.step(action)
        real, starts = session.real_score, []
        start = session.dreamer.start
        session.dreamer.start = lambda *a: (starts.append(a), start(*a))[1]
        view = session.resync()
        assert view is not None and view.dream[0] is session.real_frame
        assert session.dream_frame is session.real_frame
        assert (session.dream_score.steps, session.dream_score.ret) == (real.steps, real.ret)
        assert session.dream_score.variables[0] == real.variables[0]
        ((frames, actions, variables),) = starts  # (1, n, ...): the real game's last n frames
        assert frames.shape[1] == session.warmup + 1
        assert (frames[0, -1] == session.real_frame).all() and actions[0, -1] == 3
        assert variables[0, -1, 0] == real.variables[0]
        steps = real.steps
        after = session.step(1)
        assert len(after.dream) == 1 and session.dream_score.steps == steps + 1
    finally:
        session.close()
    dream_only = PlaySession("health_gathering", "dream", tiny_frame_world_model(), seed=1)
    try:
        dream_only.restart()
        assert dream_only.resync() is None  # nothing real to catch up with
    finally:
        dream_only.close()


def test_a_resync_is_recorded_and_replayed(tmp_path: Path) -> None:
    from agents.play.loop import CONTROLS
    from tests.conftest import tiny_frame_world_model

    assert any("re-sync" in line for line in CONTROLS)  # the help overlay lists the key
    model = tiny_frame_world_model()

    def play(policy: str, record: Path, on_frame=None) -> list[dict]:
        session = PlaySession("health_gathering", "side-by-side", model, seed=2)
        names = list(session.scenario.action_names)
        try:
            options = PlayOptions(headless=True, steps=10, fps=0, record=record)
            run(session, options, Controller(policy, len(names), names, 0, None), on_frame)
        finally:
            session.close()
        return json.loads(record.with_name(record.stem + ".actions.json").read_text())["steps"]

    def resync_at_5(frame: int) -> None:
        if frame == 5:
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_c))

    first = play("random", tmp_path / "a.gif", resync_at_5)
    assert [i for i, s in enumerate(first) if s.get("resync")] == [4]
    again = play(f"script:{tmp_path / 'a.actions.json'}", tmp_path / "b.gif")
    assert [s.get("resync", False) for s in again] == [s.get("resync", False) for s in first]
    assert [s["reward_pred"] for s in again] == [s["reward_pred"] for s in first]  # same dream
