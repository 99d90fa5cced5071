"""Merging a tokenizer's codebook into fewer codes (tools/merge_codebook.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import script_module
from worldmodel.checkpoint import load_checkpoint, save_checkpoint
from worldmodel.config import VQVAE_PRESETS, VQVAEConfig, from_dict
from worldmodel.tokenizer.merge import kmeans, merge_codebook
from worldmodel.tokenizer.vqvae import VQVAE


def test_kmeans_finds_separated_groups_and_weights_pull_their_centres() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(20, 3, generator=g) * 0.01 + c for c in (0.0, 5.0, -5.0)])
    w = torch.ones(60)
    w[0] = 1000.0  # one heavy row of the first group
    assign, centres = kmeans(x, w, 3)
    assert len({tuple(assign[i : i + 20].unique().tolist()) for i in (0, 20, 40)}) == 3
    first = centres[assign[0]]
    torch.testing.assert_close(first, (x[:20] * w[:20, None]).sum(0) / w[:20].sum())


def _tokenizer_blob() -> dict:
    torch.manual_seed(0)
    model = VQVAE(VQVAE_PRESETS["tiny"])
    with torch.no_grad():
        model.quantizer.cluster_size.uniform_(0.5, 5.0)
    return {
        "kind": "vqvae",
        "env": "health_gathering",
        "preset": "tiny",
        "config": vars(model.config).copy(),
        "model": model.state_dict(),
        "step": 10,
        "action_names": ["noop", "turn_left", "turn_right", "forward", "fwd_left", "fwd_right"],
    }


def test_a_merged_tokenizer_encodes_to_its_nearest_centre_and_keeps_ema_sums() -> None:
    blob = _tokenizer_blob()
    n = blob["config"]["n_codes"]
    merged = merge_codebook(blob, n // 4)
    q = merged["model"]
    assert q["quantizer.codebook"].shape[0] == n // 4 and merged["config"]["n_codes"] == n // 4
    assert q["quantizer.cluster_size"].sum() == pytest.approx(
        float(blob["model"]["quantizer.cluster_size"].sum()), rel=1e-5
    )
    torch.testing.assert_close(
        q["quantizer.embed_sum"], q["quantizer.codebook"] * q["quantizer.cluster_size"][:, None]
    )
    model = VQVAE(from_dict(VQVAEConfig, merged["config"]))
    model.load_state_dict(q)  # every other weight is the old tokenizer's
    x = torch.rand(1, 3, model.config.clip_len, 64, 64) - 0.5
    codes = model.eval().encode(x)
    assert int(codes.max()) < n // 4
    with pytest.raises(ValueError, match="between 2 and"):
        merge_codebook(blob, n)


def test_the_tool_writes_a_loadable_tokenizer_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    tool = script_module("tools/merge_codebook.py")
    src = tmp_path / "vqvae.pt"
    save_checkpoint(src, _tokenizer_blob())
    out = tmp_path / "merged" / "vqvae.pt"
    tool.main(["--checkpoint", str(src), "--codes", "8", "--out", str(out)])
    assert load_checkpoint(out, "vqvae", "health_gathering")["config"]["n_codes"] == 8
    for argv in (["--codes", "8", "--out", str(src)], ["--codes", "1", "--out", str(out)]):
        with pytest.raises(SystemExit) as e:
            tool.main(["--checkpoint", str(src), *argv])
        assert e.value.code == 2
    assert "error:" in capsys.readouterr().err
