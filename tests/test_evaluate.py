from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import I3D_WEIGHTS, ROOT, tiny_world_model
from worldmodel.data import EpisodeStore
from worldmodel.evaluation.decoders import redecode
from worldmodel.evaluation.idm import dream_transitions
from worldmodel.evaluation.openloop import open_loop
from worldmodel.evaluation.pipeline import EvalConfig, evaluate


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


@pytest.mark.skipif(not I3D_WEIGHTS.exists(), reason="needs ../shared/data/i3d weights")
def test_quick_evaluation_writes_the_report(hg_dataset: Path, tmp_path: Path) -> None:
    config = EvalConfig(split="test", clips=2, horizon=9, idm_steps=10, idm_transitions=20)
    out = tmp_path / "report"
    metrics = evaluate(tiny_world_model(), hg_dataset, out, I3D_WEIGHTS, config, progress=False)
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
    assert len(saved["open_loop"]["psnr_per_frame"]) == 9
    assert 0 <= saved["action_following"]["idm_accuracy_dream"] <= 1
    assert metrics["reward_termination"]["scored_steps"] > 0
    report = (out / "report.md").read_text()
    assert "FVD dream vs real" in report and "Action-following" in report


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--i3d", "nowhere.pt"], "i3d_kinetics400_tfhub_rgb.pt"),
        (["--env", "take_cover"], "not 'take_cover'"),
        (["--data", "nowhere"], "collect.py"),
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
