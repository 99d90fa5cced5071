from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import (
    I3D_WEIGHTS,
    ROOT,
    needs_i3d,
    save_frame_world_model,
    tiny_frame_world_model,
    tiny_world_model,
)
from worldmodel.data import EpisodeStore
from worldmodel.evaluation.decoders import redecode
from worldmodel.evaluation.dynamics import grouped, one_step_suite, open_loop_suite, state_suite
from worldmodel.evaluation.idm import dream_transitions
from worldmodel.evaluation.openloop import open_loop
from worldmodel.evaluation.pipeline import PARTIAL, EvalConfig, evaluate
from worldmodel.sampling.settings import SamplingConfig


def test_open_loop_dreams_the_requested_horizon(hg_dataset: Path) -> None:
    model = tiny_world_model()
    store = EpisodeStore(hg_dataset, "val")
    ol = open_loop(model, store, n_clips=3, context=2, horizon=5, batch=2)
    assert ol.real.shape == ol.dream.shape == (3, 5, 64, 64, 3)
    assert ol.context.shape == (3, 2, 64, 64, 3) and ol.actions.shape == (3, 7)
    assert ol.psnr.shape == ol.ssim.shape == (5,)
    pairs, actions = dream_transitions(ol.context, ol.dream, ol.actions)
    assert pairs.shape == (15, 2, 64, 64, 3) and actions.shape == (15,)
    np.testing.assert_array_equal(pairs[0, 0], ol.context[0, -1])
    np.testing.assert_array_equal(pairs[0, 1], ol.dream[0, 0])
    assert (actions >= 0).all()
    # The dream's codes decode again to the dream: other decoders can be scored on them.
    again = redecode({"same": model.tokenizer}, ol.codes, 5)["same"]
    assert np.abs(again.astype(int) - ol.dream).max() <= 1  # uint8 rounding of float noise


def test_grouped_means_per_key() -> None:
    got = grouped({"x": np.array([1.0, 2.0, 3.0, 5.0])}, np.array(["b", "a", "b", "a"]))
    assert got == {"a": {"x": 3.5, "n": 2}, "b": {"x": 2.0, "n": 2}}


def test_split_all_holds_every_episode(hg_dataset: Path) -> None:
    store = EpisodeStore(hg_dataset, "all")
    assert len(store) == 10
    assert sorted(e.index for e in store.entries) == list(range(10))


def _two_behaviours(hg_dataset: Path, root: Path) -> Path:
    """A copy of the dataset whose even episodes are labelled ``a`` and odd ones ``b``."""
    data = root / "two"
    shutil.copytree(hg_dataset, data)
    manifest = json.loads((data / "manifest.json").read_text())
    for e in manifest["episodes"]:
        e["behaviour"] = "ab"[e["index"] % 2]
    (data / "manifest.json").write_text(json.dumps(manifest))
    return data


def test_one_step_groups_by_action_and_behaviour(hg_dataset: Path, tmp_path: Path) -> None:
    model = tiny_frame_world_model(bank=False)
    store = EpisodeStore(_two_behaviours(hg_dataset, tmp_path), "all")
    suite = one_step_suite(model, store, 12, [3, 5], 1.0, batch=5, seed=0)
    assert set(suite) == {
        f"ctx{c}/{s}" for c in (3, 5) for s in ("T1", "greedy", "T1+copy", "greedy+copy")
    }
    row = suite["ctx3/T1"]
    assert row["samples"] == 12
    # clips go round the episodes in order: 6 from even (a) and 6 from odd (b) episodes
    assert {k: v["n"] for k, v in row["per_behaviour"].items()} == {"a": 6, "b": 6}
    assert sum(v["n"] for v in row["per_action"].values()) == 12
    means = [v["dream"] * v["n"] for v in row["per_action"].values()]
    assert sum(means) / 12 == pytest.approx(row["dream"])
    # the same samples in every setting: the baselines do not depend on the sampling
    assert (
        suite["ctx3/greedy"]["copy"] == row["copy"]
        and suite["ctx3/greedy"]["recon"] == row["recon"]
    )
    assert len(row["state_mae"]) == 1


def test_open_loop_suite_has_the_frozen_baseline_and_state(hg_dataset: Path) -> None:
    model = tiny_frame_world_model(bank=False)
    store = EpisodeStore(hg_dataset, "all")
    r = open_loop_suite(model, store, 3, 2, 4, SamplingConfig(), batch=2, seed=0)
    m = r.metrics
    assert len(m["psnr_per_frame"]) == len(m["frozen_psnr_per_frame"]) == 4
    assert len(m["state_mae_per_step"]) == 4 and m["clips"] == 3
    frozen = np.repeat(r.clips.context[:, -1:], 4, axis=1)
    assert m["frozen_psnr_mean"] == pytest.approx(
        float(np.minimum(_psnr(r.clips.real, frozen), 60).mean())
    )
    # keeping the last context value: its error at step 1 is the real one-step change
    assert m["state_keep_last_mae_per_step"][0] >= 0
    assert sum(v["n"] for v in m["per_behaviour"].values()) == 3


def _psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    mse = ((a.astype(np.float64) - b) ** 2).mean(axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):
        return 10 * np.log10(255.0**2 / mse)


def test_state_suite_keep_last_baseline_on_a_known_health_curve(tmp_path: Path) -> None:
    from tests.test_game_state import STEPS, synthetic_dataset
    from worldmodel.data.codes import encode_split

    data = synthetic_dataset(tmp_path / "synthetic", episodes=3)
    model = tiny_frame_world_model(bank=False)
    codes = encode_split(model.tokenizer, data, "health_gathering", "all", torch.device("cpu"))
    st = state_suite(model, codes, EpisodeStore(data, "all"))
    assert st["steps"] == 3 * (STEPS + 1) and st["deaths"] == 3
    # health 92, 92, 84, 84, ... 4, 4, -4: every other step drops by 8
    assert st["keep_last_mae"] == [4.0]
    assert list(st["per_behaviour"]) == ["synthetic"]
    assert st["per_behaviour"]["synthetic"]["steps"] == st["steps"]


def _small(split: str = "test") -> EvalConfig:
    return EvalConfig(
        split=split, clips=2, horizon=9, one_step=3, idm_steps=10, idm_transitions=20, batch=2
    )


@needs_i3d
def test_quick_evaluation_writes_the_report(hg_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    metrics = evaluate(tiny_world_model(), hg_dataset, out, I3D_WEIGHTS, _small(), progress=False)
    for name in (
        "report.md",
        "metrics.json",
        "psnr_horizon.png",
        "real_vs_dream.gif",
        "reconstruction.gif",
    ):
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["fvd"]["clips"] == 2 and saved["fvd"]["dream_vs_real"] > 0
    assert saved["fvd"]["real_vs_real"] >= 0 and saved["fvd"]["reconstruction_vs_real"] > 0
    assert len(saved["open_loop"]["psnr_per_frame"]) == 9
    assert len(saved["open_loop"]["frozen_psnr_per_frame"]) == 9
    assert 0 <= saved["action_following"]["idm_accuracy_dream"] <= 1
    assert metrics["reward_termination"]["scored_steps"] > 0
    assert "ctx7/greedy" in saved["one_step"] and "ctx7/T1+copy" not in saved["one_step"]
    report = (out / "report.md").read_text()
    assert "FVD" in report and "inverse dynamics" in report and "frozen" in report


def test_frame_prior_evaluation_reports_the_game_state(hg_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "frame"
    model = tiny_frame_world_model(bank=False)

    def checks(m, where: Path) -> dict:
        assert m is model and where == out
        return {"following": {"starts": 0, "hold": 0}}

    config = _small("all")
    metrics = evaluate(model, hg_dataset, out, None, config, progress=False, checks=checks)
    assert metrics["arch"] == "frame" and metrics["episodes"] == 10
    assert "reward_termination" not in metrics and "fvd" not in metrics
    st = metrics["state"]
    assert st["variables"] == ["HEALTH"] and st["steps"] > 0
    assert set(st["per_behaviour"]) == set(metrics["behaviours"])
    assert metrics["open_loop_full"]["context"] == metrics["full_context_frames"]
    assert "ctx7/T1+copy" in metrics["one_step"]
    assert metrics["real_game"] == {"following": {"starts": 0, "hold": 0}}
    assert not (out / PARTIAL).exists()  # the whole report replaces the parts kept on the way
    report = (out / "report.md").read_text()
    assert "Game state" in report and "HEALTH MAE" in report


def test_evaluate_cli_prints_a_summary(hg_dataset: Path, tmp_path: Path, capsys) -> None:
    import evaluate as cli

    path = save_frame_world_model(tiny_frame_world_model(bank=False), tmp_path / "wm.pt")
    out = tmp_path / "r"
    cli.main(
        [
            "--checkpoint", str(path), "--data", str(hg_dataset), "--out", str(out), "--quick",
            "--quiet", "--one-step", "2", "--clips", "2", "--horizon", "4", "--idm-steps", "5",
            "--idm-transitions", "10", "--no-full-context", "--no-real-game", "--long-play", "0",
            "--temperature", "0.5", "--state-temperature", "1", "--copy-unchanged",
            "--top-p", "0.9", "--keep-likely", "0.3",
        ]
    )  # fmt: skip
    line = capsys.readouterr().out.splitlines()[0]
    summary = json.loads(line)
    assert summary["arch"] == "frame" and summary["health_mae"] >= 0
    assert summary["one_step_copy"] is not None and summary["open_loop_frozen"] is not None
    metrics = json.loads((out / "metrics.json").read_text())
    assert "open_loop_full" not in metrics
    assert metrics["config"]["state_temperature"] == 1.0 and metrics["config"]["copy_unchanged"]
    assert set(metrics["one_step"]) == {
        "ctx7/T0.5 p0.9 k0.3", "ctx7/greedy", "ctx7/T0.5 p0.9 k0.3+copy", "ctx7/greedy+copy"
    }  # fmt: skip
    # the headline is the dream's own sampling: unchanged codes keep their pixels, as asked
    headline = metrics["one_step"]["ctx7/T0.5 p0.9 k0.3+copy"]
    assert summary["one_step_dream"] == pytest.approx(headline["dream"], abs=1e-3)
    assert summary["one_step_copy"] == pytest.approx(headline["copy"], abs=1e-3)
    assert metrics["open_loop"]["top_p"] == 0.9 and metrics["open_loop"]["keep_likely"] == 0.3
    report = (out / "report.md").read_text()
    assert (
        "temperature 0.5, top-p 0.9, 1 pass(es) per frame (game state: 1.0), copy_unchanged True, "
        "keep_likely 0.3" in report
    )
    assert "one-step PSNR (dB), ctx7/T0.5 p0.9 k0.3+copy" in report


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--i3d", "nowhere.pt"], "i3d_kinetics400_tfhub_rgb.pt"),
        (["--env", "take_cover"], "not 'take_cover'"),
        (["--data", "nowhere"], "collect.py"),
        (["--split", "nope"], "test, all"),
        (["--top-p", "1.5"], "--top-p must be in [0.01, 1]"),
    ],
)
def test_evaluate_cli_bad_input(
    tiny_model_path: Path, hg_dataset: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "evaluate.py"),
            "--checkpoint",
            str(tiny_model_path),
            "--data",
            str(hg_dataset),
            "--quick",
            "--out",
            str(tmp_path / "r"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failing_part_keeps_the_parts_measured_before_it(
    hg_dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "failing"

    def checks(m, where: Path) -> dict:
        raise ZeroDivisionError("a real-game check failed")

    config = dataclasses.replace(_small("all"), one_step=0)
    model = tiny_frame_world_model(bank=False)
    with pytest.raises(ZeroDivisionError):
        evaluate(model, hg_dataset, out, None, config, progress=False, checks=checks)
    assert not (out / "metrics.json").exists()
    kept = json.loads((out / PARTIAL).read_text())
    assert len(kept["open_loop"]["psnr_per_frame"]) == config.horizon
    assert 0 <= kept["action_following"]["idm_accuracy_dream"] <= 1
    assert kept["state"]["steps"] > 0 and "real_game" not in kept
