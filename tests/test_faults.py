"""Stopping and small data: Ctrl-C, SIGTERM and kill -9 lose nothing and leave no processes;
a few episodes train; a finished run continues; recordings keep what was played."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pygame
import pytest

from agents.play.loop import Controller, PlayOptions, run
from agents.play.session import PlaySession
from tests.conftest import ROOT, entry_point, script_module, tiny_world_model
from worldmodel.checkpoint import load_checkpoint
from worldmodel.cli.progress import LineProgress, progress_bar
from worldmodel.data import EpisodeStore, load_manifest, read_episode, split_of, write_manifest
from worldmodel.data.splits import split_entries

SPLITS = ("train", "val", "test")


def _descendants(pid: int) -> list[int]:
    found = []
    for child in subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True
    ).stdout.split():
        found += [int(child), *_descendants(int(child))]
    return found


def _running(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    except OSError:
        return False


def _vizdoom_ids(pids: list[int]) -> list[str]:
    """The instance ids of the ViZDoom games among ``pids`` (their /dev/shm files carry it)."""
    ids = []
    for pid in pids:
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"+viz_instance_id" in args:
            ids.append(args[args.index(b"+viz_instance_id") + 1].decode())
    return ids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the processes")
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "kill -9"])
def test_stopped_collection_keeps_its_episodes_and_leaves_no_process(
    tmp_path: Path, how: str
) -> None:
    out = tmp_path / "data"
    args = ["--policy", "random", "--episodes", "400", "--n-envs", "4", "--workers", "2"]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "collect.py"), *args, "--out", str(out), "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        # Ctrl-C works in a terminal's job even when this test runs where SIGINT is ignored
        # (a background job), which children would inherit
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.time() + 300
        while not (out / "ep_000001.h5").exists() and time.time() < deadline:
            time.sleep(0.05)
        family = _descendants(proc.pid)
        games = _vizdoom_ids(family)
        assert len(games) == 4
        if how == "ctrl-c":  # a terminal sends SIGINT to every process of the job
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:  # the test failed: stop it as a user would, then for good
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=60)
            proc.kill()
    deadline = time.time() + 60
    while any(_running(p) for p in family) and time.time() < deadline:
        time.sleep(0.1)
    assert not [p for p in family if _running(p)]  # workers and games: none left behind
    shm = Path("/dev/shm")
    if shm.is_dir():
        assert not [f for f in os.listdir(shm) if any(g in f for g in games)]
    files = sorted(p.name for p in out.glob("ep_*.h5"))
    for name in files:
        read_episode(out / name)  # every file on disk is whole
    assert not list(out.glob("*.tmp"))
    if how == "kill -9":
        assert proc.returncode == -signal.SIGKILL
        return
    assert proc.returncode == 130
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err
    saved = load_manifest(out).episodes
    assert f"interrupted; {len(saved)} of 400 episodes are saved" in err
    assert sorted(e.file for e in saved) == files  # the manifest lists exactly what is on disk


def _small_dataset(hg_dataset: Path, root: Path, n: int) -> Path:
    manifest = load_manifest(hg_dataset)
    manifest.episodes = manifest.episodes[:n]
    root.mkdir()
    for e in manifest.episodes:
        shutil.copy(hg_dataset / e.file, root / e.file)
    write_manifest(root, manifest)
    return root


@pytest.mark.parametrize("n", [1, 2, 5, 9, 10, 25])
def test_small_datasets_hold_out_their_last_episode(n: int) -> None:
    class Entry:
        def __init__(self, index: int) -> None:
            self.index = index

    entries = [Entry(i) for i in range(n)]
    split = {s: [e.index for e in split_entries(entries, s, split_of)] for s in SPLITS}
    if n >= 10:  # the index rule
        assert split["val"] == [i for i in range(n) if i % 10 == 8]
        assert split["test"] == [i for i in range(n) if i % 10 == 9]
    elif n == 1:
        assert split == {"train": [0], "val": [0], "test": [0]}
    else:
        assert split == {"train": list(range(n - 1)), "val": [n - 1], "test": [n - 1]}


def test_three_episodes_train_and_a_finished_run_continues_both(
    hg_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _small_dataset(hg_dataset, tmp_path / "three", 3)
    assert len(EpisodeStore(data, "val")) == 1
    train = entry_point("train")
    common = ["--data", str(data), "--out", "runs/s", "--preset", "tiny", "--quiet"]
    train([*common, "--steps", "2"])
    out = capsys.readouterr().out
    assert "has 3 episodes, too few for the 8:1:1 split" in out and "holding out episode 2" in out
    assert "play it: python play.py --env health_gathering --checkpoint runs/s/worldmodel.pt" in out
    train([*common, "--steps", "4", "--resume"])  # the README's "continue both"
    out = capsys.readouterr().out
    assert "the prior starts over" in out
    run_dir = Path("runs/s")
    assert load_checkpoint(run_dir / "vqvae.pt", "vqvae")["step"] == 4
    prior = load_checkpoint(run_dir / "prior.pt", "prior")
    assert prior["step"] == 4 and prior["tokenizer"]["step"] == 4
    assert (run_dir / "prior.tokenizer-step-2.pt").exists()


def test_ctrl_c_in_training_saves_and_says_how_to_resume(
    hg_dataset: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from worldmodel.training.vqvae_stage import VQVAEStage

    loss, calls = VQVAEStage.loss, []

    def interrupted_at_step_3(self, model, x):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return loss(self, model, x)

    monkeypatch.setattr(VQVAEStage, "loss", interrupted_at_step_3)
    args = ["--data", str(hg_dataset), "--out", "runs/i", "--preset", "tiny", "--quiet"]
    with pytest.raises(SystemExit) as stop:
        entry_point("train")([*args, "--stage", "vqvae"])
    assert stop.value.code == 130
    err = capsys.readouterr().err.strip()
    assert err == "interrupted; vqvae.pt in runs/i saved: rerun with --resume to continue"
    assert load_checkpoint(Path("runs/i/vqvae.pt"), "vqvae")["step"] == 2
    calls.clear()
    monkeypatch.setattr(VQVAEStage, "loss", loss)
    entry_point("train")([*args, "--stage", "all", "--steps", "4", "--resume"])  # as told
    assert load_checkpoint(Path("runs/i/prior.pt"), "prior")["step"] == 4  # begun, not refused


def test_ctrl_c_in_evaluation_exits_130(
    hg_dataset: Path,
    tiny_model_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import worldmodel.evaluation.pipeline as pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "evaluate", interrupted)
    args = ["--checkpoint", str(tiny_model_path), "--data", str(hg_dataset), "--quick"]
    with pytest.raises(SystemExit) as stop:
        entry_point("evaluate")([*args, "--quiet"])  # loaded after the patch: sees it
    assert stop.value.code == 130
    err = capsys.readouterr().err.strip()
    assert err == "interrupted; nothing was measured yet; rerun to evaluate"


def test_ctrl_c_in_play_keeps_the_recording(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    step, calls = PlaySession.step, []

    def interrupted_at_step_4(self, action):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return step(self, action)

    monkeypatch.setattr(PlaySession, "step", interrupted_at_step_4)
    record = tmp_path / "s.gif"
    args = ["--mode", "real", "--headless", "--steps", "50", "--record", str(record)]
    with pytest.raises(SystemExit) as stop:
        entry_point("play")(args)
    assert stop.value.code == 130
    out, err = capsys.readouterr()
    assert f"the recording so far is in {record}" in err
    assert "played 3 steps" in out and "median" in out  # the fps summary ESC prints too
    assert record.stat().st_size > 0
    log = json.loads(record.with_name("s.actions.json").read_text())
    assert len(log["steps"]) == 3


def test_a_recording_replays_its_temperature_changes(tmp_path: Path) -> None:
    model = tiny_world_model()

    def play(policy: str, record: Path, on_frame=None) -> list[dict]:
        session = PlaySession("health_gathering", "dream", model, seed=3)
        names = list(session.scenario.action_names)
        controller = Controller(policy, len(names), names, 0, None)
        try:
            options = PlayOptions(headless=True, steps=12, fps=0, record=record)
            run(session, options, controller, on_frame)
        finally:
            session.close()
        return json.loads(record.with_name(record.stem + ".actions.json").read_text())["steps"]

    def warmer(frame: int) -> None:
        if frame in (3, 4, 5, 8):
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_t))

    first = play("random", tmp_path / "a.gif", warmer)
    assert len({s["temperature"] for s in first}) > 2
    again = play(f"script:{tmp_path / 'a.actions.json'}", tmp_path / "b.gif")
    assert [s["temperature"] for s in again] == [s["temperature"] for s in first]
    assert [s["reward_pred"] for s in again] == [s["reward_pred"] for s in first]  # same dream


def test_progress_in_a_log_is_plain_lines(capsys: pytest.CaptureFixture[str]) -> None:
    bar = progress_bar(10, "collect x", "ep", enabled=True)  # stderr is captured: no terminal
    assert isinstance(bar, LineProgress)
    for _ in range(10):
        bar.update(1)
    bar.set_postfix(ret="12")
    bar.close()
    bar.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("collect x: 0/10 ep (0%)")
    assert lines[-1].startswith("collect x: 10/10 ep (100%)") and lines[-1].endswith("ret 12")
    assert len(lines) == 2 and "\r" not in "".join(lines)


def test_progress_past_its_total_never_counts_time_left(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """PPO steps whole rollouts, so its count passes the total: no "-0.0 min left"."""
    bar = LineProgress(10, "train PPO", "env steps", every=0.0)
    bar.update(6)
    bar.update(8)
    bar.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("train PPO: 6/10") and lines[1].endswith("min left")
    past = [line for line in lines if line.startswith("train PPO: 14/10")]
    assert len(past) == 2 and not any("left" in line for line in past)


def test_a_report_for_the_shipped_model_goes_under_runs() -> None:
    module = script_module("evaluate.py")
    shipped = ROOT / "worldmodel" / "assets" / "health_gathering.pt"
    assert module.default_out(shipped, True) == Path("runs/eval/health_gathering-eval-quick")
    mine = Path("runs/hg-cpu/worldmodel.pt")
    assert module.default_out(mine, False) == Path("runs/hg-cpu/eval")
