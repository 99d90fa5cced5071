"""tools/ship_model.py: a run's prior shipped with another checkpoint's fine-tuned decoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import save_frame_world_model, script_module, tiny_frame_world_model
from worldmodel.checkpoint import load_checkpoint, save_checkpoint
from worldmodel.tokenizer.swap import is_frozen


@pytest.fixture
def shipping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """(the tool with its assets folder in tmp, that folder, a run holding a tiny prior)."""
    tool = script_module("tools/ship_model.py")
    assets = tmp_path / "assets"
    assets.mkdir()
    monkeypatch.setattr(tool, "ASSETS", assets)
    run = tmp_path / "run"
    write_run(run, tiny_frame_world_model(seed=0, bank=False))
    return tool, assets, run


def write_run(run: Path, model) -> None:
    """A run folder holding ``model``'s prior as a ``prior`` training checkpoint."""
    blob = load_checkpoint(save_frame_world_model(model, run / "export.pt"), "worldmodel")
    blob["kind"] = "prior"
    blob["model"] = blob.pop("prior")
    blob["step"] = 7
    save_checkpoint(run / "prior.pt", blob)
    (run / "export.pt").unlink()


def with_new_decoder(model, path: Path, seed: int) -> Path:
    """``model`` saved to ``path`` with its decoder weights redrawn (codes unchanged)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.tokenizer.state_dict().items():
            if not is_frozen(key) and value.is_floating_point():
                value.add_(torch.randn(value.shape, generator=generator) * 0.01)
    return save_frame_world_model(model, path)


def test_ship_takes_the_decoder_of_the_replaced_model(shipping) -> None:
    tool, assets, run = shipping
    # the model being replaced: same codes, a tuned decoder, an older prior, and its card
    shipped = with_new_decoder(
        tiny_frame_world_model(seed=0, bank=False), assets / "health_gathering.pt", 1
    )
    (assets / "health_gathering.json").write_text(json.dumps({"decoder": {"steps": 4000}}))
    old_tokenizer = load_checkpoint(shipped, "worldmodel")["tokenizer"]["model"]

    tool.main(["--run", str(run), "--env", "health_gathering", "--half", "--decoder", str(shipped)])

    blob = load_checkpoint(assets / "health_gathering.pt", "worldmodel", "health_gathering")
    prior = load_checkpoint(run / "prior.pt", "prior")
    assert blob["step"] == 7
    for key, value in prior["model"].items():  # the run's prior, stored as fp16
        assert torch.equal(blob["prior"][key], value.half() if value.is_floating_point() else value)
    for key, value in old_tokenizer.items():
        new = blob["tokenizer"]["model"][key]
        if is_frozen(key):
            assert torch.equal(new.float(), value.half().float()), key
        else:  # the decoder comes over untouched, at full precision
            assert new.dtype == value.dtype and torch.equal(new, value), key
    card = json.loads((assets / "health_gathering.json").read_text())
    assert card["decoder"] == {"steps": 4000} and card["decoder_from"] == str(shipped)
    assert not (run / "worldmodel-ship.pt").exists()


def test_ship_refuses_a_decoder_of_other_codes_and_keeps_the_shipped_model(
    shipping, capsys: pytest.CaptureFixture[str]
) -> None:
    tool, assets, run = shipping
    shipped = save_frame_world_model(tiny_frame_world_model(seed=1), assets / "health_gathering.pt")
    before = shipped.read_bytes()
    with pytest.raises(SystemExit) as e:
        tool.main(["--run", str(run), "--env", "health_gathering", "--decoder", str(shipped)])
    assert e.value.code == 2
    assert "another encoder or codebook" in capsys.readouterr().err
    assert shipped.read_bytes() == before
    assert not (run / "worldmodel-ship.pt").exists()
