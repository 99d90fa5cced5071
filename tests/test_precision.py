"""bf16 training on the CPU (``--precision bf16``): what runs in bf16, what stays fp32, and who
may ask for it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from worldmodel import precision
from worldmodel.checkpoint import load_checkpoint
from worldmodel.cli import validate
from worldmodel.cli.args import UserError
from worldmodel.config import VQVAE_PRESETS, FramePriorConfig
from worldmodel.prior.frame import FramePrior
from worldmodel.tokenizer.vqvae import VQVAE
from worldmodel.training.loop import Runtime, TrainConfig, train
from worldmodel.training.vqvae_stage import VQVAEStage

BF16 = torch.autocast("cpu", dtype=torch.bfloat16)


def test_bf16_units_are_read_from_the_cpu_flags(tmp_path: Path) -> None:
    amx = tmp_path / "amx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n")
    plain = tmp_path / "plain"
    plain.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw\n")
    assert precision.cpu_bf16_units(str(amx))
    assert not precision.cpu_bf16_units(str(plain))
    assert not precision.cpu_bf16_units(str(tmp_path / "missing"))


def test_autocast_is_on_only_where_asked() -> None:
    cpu = torch.device("cpu")
    with precision.autocast(cpu, "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with precision.autocast(cpu, "bf16"):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="fp16"):
        precision.autocast(cpu, "fp16")


def test_attention_runs_in_fp32_inside_a_bf16_region() -> None:
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 9, 8, requires_grad=True) for _ in range(3))
    mask = torch.tril(torch.ones(9, 9, dtype=torch.bool))
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    with BF16:
        got = precision.attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), attn_mask=mask)
    assert got.dtype == torch.float32
    # only the inputs' rounding to bf16 separates them, not a bf16 softmax
    torch.testing.assert_close(got, want, atol=3e-2, rtol=0)
    got.sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_the_codebook_quantises_and_learns_in_fp32_under_bf16() -> None:
    torch.manual_seed(0)
    model = VQVAE(VQVAE_PRESETS["tiny"]).train()
    x = torch.rand(2, 3, 4, 64, 64) - 0.5
    with BF16:
        out = model(x)
    before = model.quantizer.codebook.clone()
    with BF16:
        out = model(x)
        loss = out.losses["recon"] + out.losses["commit"]
    loss.backward()
    assert torch.isfinite(loss)
    assert model.quantizer.codebook.dtype == torch.float32
    assert not torch.equal(model.quantizer.codebook, before)  # the EMA moved it
    assert model.encoder.parameters().__next__().grad is not None


def test_a_frame_prior_step_in_bf16_gives_the_fp32_loss() -> None:
    torch.manual_seed(0)
    config = FramePriorConfig(
        steps=4, d_model=32, n_layers=2, n_heads=2, height=4, width=4, group=2, n_codes=16,
        n_actions=3, action_dim=8, state_vocab=(11,),
    )  # fmt: skip
    model = FramePrior(config).train()
    codes = torch.randint(0, 16, (2, 8, 4, 4))
    state = torch.randint(0, 11, (2, 8, 1))
    actions = torch.randint(0, 3, (2, 8, 1))
    model.eval()  # no dropout: the two passes see the same network
    fp32 = model(codes, state, actions, targets=(codes, state)).loss
    with BF16:
        bf16 = model(codes, state, actions, targets=(codes, state)).loss
    assert bf16.dtype == torch.float32
    assert float(bf16.detach()) == pytest.approx(float(fp32.detach()), rel=0.02)
    bf16.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_a_tokenizer_trains_and_saves_fp32_weights_with_precision_bf16(
    hg_dataset: Path, tmp_path: Path
) -> None:
    config = dataclasses.replace(VQVAE_PRESETS["tiny"], restart_threshold=0.0)
    torch.manual_seed(0)
    stage = VQVAEStage(
        "health_gathering", hg_dataset, config, "tiny", tmp_path, torch.device("cpu"), False, 4
    )
    run = TrainConfig(steps=3, batch_size=2, warmup=1, eval_every=3, precision="bf16")
    train(stage, run, tmp_path / "vqvae.pt", Runtime(torch.device("cpu")), progress=False)
    blob = load_checkpoint(tmp_path / "vqvae.pt", "vqvae")
    assert blob["step"] == 3 and blob["train_config"]["precision"] == "bf16"
    assert all(v.dtype != torch.bfloat16 for v in blob["model"].values())
    assert blob["metrics"]["psnr"] == blob["metrics"]["psnr"]  # evaluated, not NaN


def test_precision_is_checked_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="--precision"):
        validate.train_config(TrainConfig(precision="fp16"))
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: False)
    with pytest.raises(UserError, match=r"no bf16 units.*use --precision fp32"):
        validate.precision_fits(TrainConfig(precision="bf16"), "cpu")
    validate.precision_fits(TrainConfig(precision="bf16"), "cuda")  # GPUs have them
    validate.precision_fits(TrainConfig(precision="fp32"), "cpu")
