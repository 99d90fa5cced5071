"""A world model's own default sampling: set by tools/set_sampling.py, used by play, evaluate.py
and the dream env unless their flags say otherwise."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from agents.play.session import PlaySession
from tests.conftest import save_frame_world_model, script_module, tiny_frame_world_model
from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.evaluation.pipeline import EvalConfig
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.world_model import WorldModel


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    path = save_frame_world_model(tiny_frame_world_model(bank=False), tmp_path / "hg.pt")
    path.with_suffix(".json").write_text(json.dumps({"env": "health_gathering", "sha256": "0"}))
    return path


def test_set_sampling_writes_the_default_that_loading_and_play_use(model_path: Path) -> None:
    tool = script_module("tools/set_sampling.py")
    assert WorldModel.load(model_path).sampling == SamplingConfig()
    tool.main(["--checkpoint", str(model_path), "--keep-likely", "0.05", "--copy-unchanged"])
    tool.main(["--checkpoint", str(model_path), "--top-p", "0.8"])  # adds to what is there
    model = WorldModel.load(model_path)
    want = SamplingConfig(top_p=0.8, keep_likely=0.05, copy_unchanged=True)
    assert model.sampling == want
    card = json.loads(model_path.with_suffix(".json").read_text())["default_sampling"]
    assert card["settings"] == {"top_p": 0.8, "copy_unchanged": True, "keep_likely": 0.05}
    assert card["command"].endswith("--top-p 0.8")
    written = json.loads(model_path.with_suffix(".json").read_text())
    assert written["sha256"] == hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert model.dreamer(1).sampling.keep_likely == 0.05
    session = PlaySession("health_gathering", "dream", model, seed=0)
    overridden = PlaySession(
        "health_gathering", "dream", model, 0.5, seed=0, copy_unchanged=False, keep_likely=0
    )
    try:
        assert session.dreamer.sampling.copy_unchanged and session.temperature == 1.0
        assert session.dreamer.sampling.top_p == 0.8
        got = overridden.dreamer.sampling
        assert (got.temperature, got.copy_unchanged, got.keep_likely, got.top_p) == (
            0.5,
            False,
            0,
            0.8,
        )
    finally:
        session.close()
        overridden.close()
    tool.main(["--checkpoint", str(model_path), "--reset"])
    assert WorldModel.load(model_path).sampling == SamplingConfig()


def test_set_sampling_refuses_what_the_model_cannot_do_and_keeps_the_file(
    model_path: Path, capsys: pytest.CaptureFixture
) -> None:
    tool = script_module("tools/set_sampling.py")
    before = model_path.read_bytes()
    for flags in (["--passes", "4"], ["--keep-likely", "2"]):  # a one-pass prior; out of range
        with pytest.raises(SystemExit) as e:
            tool.main(["--checkpoint", str(model_path), *flags])
        assert e.value.code != 0
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and ("pass" in err or "--keep-likely" in err)
    assert model_path.read_bytes() == before


def test_a_checkpoint_with_unknown_sampling_is_refused(model_path: Path) -> None:
    blob = load_checkpoint(model_path, "worldmodel")
    blob.pop("format_version")
    blob["sampling"] = {"temprature": 0.5}
    save_checkpoint(model_path, blob)
    with pytest.raises(CheckpointError, match="temprature"):
        WorldModel.load(model_path)


def test_evaluation_starts_from_the_models_sampling() -> None:
    own = SamplingConfig(top_p=0.8, keep_likely=0.05, copy_unchanged=True, passes=1)
    config = EvalConfig().with_sampling(own)
    assert config.sampling == own
    assert EvalConfig.quick().with_sampling(own).clips == EvalConfig.quick().clips
