"""The decoder fine-tuning stage: codes stay bit-identical, resume, discriminator, swapping."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from tests.conftest import save_world_model, tiny_world_model
from tests.test_training import CPU, Crash, assert_same_run, crash_after
from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.tokenizer.discriminator import PatchDiscriminator, hinge_d_loss
from worldmodel.tokenizer.swap import is_frozen, swap_decoder
from worldmodel.training.decoder_stage import DecoderStage, DecoderTuneConfig
from worldmodel.training.loop import TrainConfig, train
from worldmodel.training.run import train_decoder
from worldmodel.world_model import WorldModel

CONFIG = TrainConfig(steps=6, batch_size=2, lr=1e-3, warmup=2, eval_every=100, save_every=2)
# The GAN terms enter at step 2 so that a 6-step run exercises every loss.
TUNE = DecoderTuneConfig(window=4, loss_steps=2, gan_start=2, gan_ramp=2, disc_channels=8)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_world_model(tiny_world_model(), tmp_path_factory.mktemp("base") / "wm.pt")


def stage(data: Path, base: Path, out: Path, tune: DecoderTuneConfig = TUNE) -> DecoderStage:
    torch.manual_seed(0)
    config = WorldModel.load(base).tokenizer.config
    return DecoderStage(
        "health_gathering", data, base, config, tune, "tiny", out, CPU.device, 4, progress=False
    )


def test_discriminator_scores_patches_of_every_frame() -> None:
    frames = torch.rand(2, 3, 5, 64, 64) - 0.5
    logits, features = PatchDiscriminator(8, 3)(frames)
    assert logits.shape == (2, 5, 8, 8) and [f.shape[1] for f in features] == [8, 16, 32]
    logits, _ = PatchDiscriminator(8, 2, temporal=True)(frames)
    assert logits.shape == (2, 4, 16, 16)  # the first frame is only the second's past
    assert float(hinge_d_loss(torch.full((4,), 2.0), torch.full((4,), -2.0))) == 0.0


def test_decoder_stage_trains_the_decoder_and_leaves_the_codes(
    hg_dataset: Path, base: Path, tmp_path: Path
):
    before = WorldModel.load(base).tokenizer.state_dict()
    out = tmp_path / "run"
    metrics = train_decoder(
        "health_gathering",
        hg_dataset,
        out,
        base,
        "tiny",
        CONFIG,
        CPU,
        overrides=[f"decoder.{k}={v}" for k, v in dataclasses.asdict(TUNE).items()],
        progress=False,
    )
    assert {"psnr", "ssim"} <= metrics.keys()
    tuned = WorldModel.load(out / "worldmodel.pt")  # base with the new decoder swapped in
    after = tuned.tokenizer.state_dict()
    for key, value in before.items():
        if is_frozen(key):
            assert torch.equal(value, after[key]), key
    assert not all(torch.equal(before[k], after[k]) for k in before if not is_frozen(k))
    x = torch.rand(2, 3, 4, 64, 64) - 0.5
    assert torch.equal(tuned.tokenizer.encode(x), WorldModel.load(base).tokenizer.encode(x))
    prior = WorldModel.load(base).prior.state_dict()
    assert all(torch.equal(v, tuned.prior.state_dict()[k]) for k, v in prior.items())


def test_decoder_stage_resumes_after_a_kill(hg_dataset: Path, base: Path, tmp_path: Path):
    straight = tmp_path / "straight"
    train(stage(hg_dataset, base, straight), CONFIG, straight / "decoder.pt", CPU, progress=False)
    killed = tmp_path / "killed"
    with pytest.raises(Crash):
        train(
            crash_after(stage(hg_dataset, base, killed), 3),
            CONFIG,
            killed / "decoder.pt",
            CPU,
            progress=False,
        )
    assert load_checkpoint(killed / "decoder.pt", "decoder")["step"] == 2
    resumed = stage(hg_dataset, base, killed)
    train(resumed, CONFIG, killed / "decoder.pt", CPU, resume=True, progress=False)
    a, b = (load_checkpoint(p / "decoder.pt", "decoder")["model"] for p in (straight, killed))
    assert_same_run(a, b)
    other = dataclasses.replace(TUNE, adv_weight=2.0)
    with pytest.raises(CheckpointError, match="tune_config"):
        train(stage(hg_dataset, base, killed, other), CONFIG, killed / "decoder.pt", CPU, True)


def test_mse_only_decoder_stage_has_no_discriminator(hg_dataset: Path, base: Path, tmp_path):
    plain = stage(hg_dataset, base, tmp_path, dataclasses.replace(TUNE, adversarial=False))
    assert plain.model.disc is None
    _, logs = plain.loss(plain.model, next(plain.batches(0, 2, 0, 0, 1)))
    assert set(logs) == {"recon", "loss"}


def test_swap_refuses_a_decoder_of_other_codes(base: Path, tmp_path: Path):
    target = load_checkpoint(base, "worldmodel")
    other = save_world_model(tiny_world_model(seed=1), tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="codes"):
        swap_decoder(target, load_checkpoint(other, "worldmodel"))
    same = swap_decoder(target, target)
    save_checkpoint(tmp_path / "same.pt", same)
    assert (
        WorldModel.load(tmp_path / "same.pt").tokenizer.config
        == WorldModel.load(base).tokenizer.config
    )


def test_train_cli_passes_decoder_settings_to_the_decoder_stage(
    hg_dataset: Path, base: Path, tmp_path: Path
):
    """``--set decoder.X=...`` reaches the stage from the command line (and only there)."""
    import train

    out = tmp_path / "cli"
    args = ["--env", "health_gathering", "--stage", "decoder", "--preset", "tiny",
            "--checkpoint", str(base), "--data", str(hg_dataset), "--out", str(out),
            "--steps", "2", "--threads", "1", "--quiet", "--set", "decoder.adv_weight=2",
            "--set", "decoder.gan_start=0"]  # fmt: skip
    train.main(args)
    tune = load_checkpoint(out / "decoder.pt", "decoder", "health_gathering")["tune_config"]
    assert tune["adv_weight"] == 2 and tune["gan_start"] == 0
    with pytest.raises(SystemExit) as refused:
        train.main([*args[:3], "prior", *args[4:]])
    assert refused.value.code == 2
