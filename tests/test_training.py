from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch

from worldmodel.checkpoint import CheckpointError, load_checkpoint
from worldmodel.cli.args import UserError
from worldmodel.config import (
    PRIOR_PRESETS,
    VQVAE_PRESETS,
    FramePriorConfig,
    VQVAEConfig,
    from_dict,
    prior_config_for,
)
from worldmodel.tokenizer.vqvae import VQVAE
from worldmodel.training.adversarial import AdversarialConfig
from worldmodel.training.lock import run_lock
from worldmodel.training.loop import Runtime, TrainConfig, train
from worldmodel.training.prior_stage import PriorStage, check_prior_resume
from worldmodel.training.vqvae_stage import VQVAEStage
from worldmodel.world_model import WorldModel, export_world_model

CPU = Runtime(torch.device("cpu"))
CONFIG = TrainConfig(steps=6, batch_size=2, lr=1e-3, warmup=2, eval_every=100, save_every=2)


class Crash(Exception):
    """Stands in for a kill: the run stops without saving."""


def crash_after(stage, n: int):
    batches = stage.batches

    def crashing(*args):
        for i, batch in enumerate(batches(*args)):
            if i == n:
                raise Crash
            yield batch

    stage.batches = crashing
    return stage


def vqvae_stage(data: Path, out: Path, resume: bool = False, **changes) -> VQVAEStage:
    # No dead-code restarts: float noise between processes could flip a restart decision at
    # the threshold, and a restart draws random codes (the restarts have their own tests).
    config = dataclasses.replace(VQVAE_PRESETS["tiny"], restart_threshold=0.0, **changes)
    torch.manual_seed(0)  # as train.py does: the initial weights are part of the run
    return VQVAEStage(
        "health_gathering", data, config, "tiny", out, CPU.device, resume, eval_clips=4
    )


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path, ("vqvae", "prior"))["model"]


def assert_same_run(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Equal up to float noise: oneDNN picks kernels by buffer alignment, so two processes
    are not bitwise equal, but another data order or random state differs by ~0.1."""
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(
            a[key].float(),
            b[key].float(),
            rtol=1e-4,
            atol=1e-5,
            msg=lambda m, key=key: f"{key}: {m}",
        )


def test_tokenizer_resume_after_a_kill_continues_the_same_run(hg_dataset: Path, tmp_path: Path):
    straight = tmp_path / "straight"
    train(vqvae_stage(hg_dataset, straight), CONFIG, straight / "vqvae.pt", CPU, progress=False)
    killed = tmp_path / "killed"
    with pytest.raises(Crash):  # dies during step 5: the last checkpoint is from step 4
        train(
            crash_after(vqvae_stage(hg_dataset, killed), 4),
            CONFIG,
            killed / "vqvae.pt",
            CPU,
            progress=False,
        )
    before = load_checkpoint(killed / "vqvae.pt", "vqvae")
    assert before["step"] == 4 and before["clock"]["cpu_minutes"] > 0
    train(
        vqvae_stage(hg_dataset, killed, resume=True),
        CONFIG,
        killed / "vqvae.pt",
        CPU,
        resume=True,
        progress=False,
    )
    assert_same_run(weights(straight / "vqvae.pt"), weights(killed / "vqvae.pt"))
    # the cost a resumed run reports is the whole run's, its killed session included
    after = load_checkpoint(killed / "vqvae.pt", "vqvae")
    for key in ("cpu_minutes", "train_minutes"):
        assert after["clock"][key] > before["clock"][key]
        assert after["metrics"][key] == pytest.approx(after["clock"][key], rel=0.2)


def test_checkpoint_round_trip_gives_identical_outputs(hg_dataset: Path, tmp_path: Path):
    stage = vqvae_stage(hg_dataset, tmp_path)
    train(stage, dataclasses.replace(CONFIG, steps=2), tmp_path / "vqvae.pt", CPU, progress=False)
    blob = torch.load(tmp_path / "vqvae.pt", weights_only=True)  # no code runs on load
    assert blob["format_version"] == 1 and blob["kind"] == "vqvae" and blob["step"] == 2
    assert {"model", "optimizer", "rng", "config", "train_config", "env"} <= blob.keys()
    loaded = VQVAE(from_dict(VQVAEConfig, blob["config"]))
    loaded.load_state_dict(blob["model"])
    x = torch.rand(1, 3, 4, 64, 64) - 0.5
    stage.model.eval()
    loaded.eval()
    torch.testing.assert_close(
        loaded.decode(loaded.encode(x)), stage.model.decode(stage.model.encode(x))
    )


def test_checkpoints_are_refused_when_they_do_not_fit(hg_dataset: Path, tmp_path: Path):
    train(
        vqvae_stage(hg_dataset, tmp_path),
        dataclasses.replace(CONFIG, steps=2),
        tmp_path / "vqvae.pt",
        CPU,
        progress=False,
    )
    with pytest.raises(CheckpointError, match="--resume"):  # nothing is overwritten
        train(vqvae_stage(hg_dataset, tmp_path), CONFIG, tmp_path / "vqvae.pt", CPU, progress=False)
    with pytest.raises(CheckpointError, match="hidden"):
        train(
            vqvae_stage(hg_dataset, tmp_path, resume=True, hidden=32),
            CONFIG,
            tmp_path / "vqvae.pt",
            CPU,
            resume=True,
            progress=False,
        )
    with pytest.raises(CheckpointError, match="not 'take_cover'"):
        load_checkpoint(tmp_path / "vqvae.pt", "vqvae", env="take_cover")
    with pytest.raises(CheckpointError, match="holds a 'vqvae' model"):
        WorldModel.load(tmp_path / "vqvae.pt")
    broken = tmp_path / "broken.pt"
    broken.write_bytes((tmp_path / "vqvae.pt").read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="is damaged or not a checkpoint") as caught:
        load_checkpoint(broken, "vqvae")
    assert "\n" not in str(caught.value) and "weights_only" not in str(caught.value)


def test_prior_trains_resumes_and_exports_a_world_model(hg_dataset: Path, tmp_path: Path):
    train(
        vqvae_stage(hg_dataset, tmp_path),
        dataclasses.replace(CONFIG, steps=2),
        tmp_path / "vqvae.pt",
        CPU,
        progress=False,
    )
    config = prior_config_for(PRIOR_PRESETS["tiny"], VQVAE_PRESETS["tiny"], 6)

    def stage() -> PriorStage:
        torch.manual_seed(0)
        return PriorStage(
            "health_gathering",
            hg_dataset,
            config,
            "tiny",
            tmp_path,
            CPU.device,
            eval_limit=8,
            progress=False,
        )

    straight = tmp_path / "straight.pt"
    metrics = train(stage(), CONFIG, straight, CPU, progress=False)
    assert {"bits_per_dim", "reward_mae", "done_precision", "done_recall"} <= metrics.keys()
    killed = tmp_path / "prior.pt"
    with pytest.raises(Crash):
        train(crash_after(stage(), 3), CONFIG, killed, CPU, progress=False)
    train(stage(), CONFIG, killed, CPU, resume=True, progress=False)
    assert_same_run(weights(straight), weights(killed))
    assert (tmp_path / "codes_train.npz").exists() and (tmp_path / "samples").is_dir()
    export_world_model(killed, tmp_path / "worldmodel.pt", half=True)
    model = WorldModel.load(tmp_path / "worldmodel.pt", "health_gathering")
    assert model.action_names[1] == "forward"
    assert next(model.prior.parameters()).dtype == torch.float32  # fp16 on disk, fp32 in use


def test_resume_refuses_another_prior_config_or_tokenizer_and_names_the_difference():
    ours = FramePriorConfig(n_actions=6, state_vocab=(201,))
    check_prior_resume(dataclasses.replace(ours), 500, ours, 500)  # the same run: resumes
    wider = dataclasses.replace(ours, d_model=240)
    with pytest.raises(CheckpointError, match=r"d_model.*\(240, 192\).*same --preset"):
        check_prior_resume(wider, 500, ours, 500)
    with pytest.raises(CheckpointError, match="tokenizer in --out changed"):
        check_prior_resume(ours, 400, ours, 500)


def test_adversarial_tokenizer_resumes_with_its_discriminator(hg_dataset: Path, tmp_path: Path):
    """``--set gan.enabled=true``: the discriminator trains beside the tokenizer, rides in the
    checkpoint (the model stays a plain tokenizer) and a killed run resumes the same run."""
    gan = AdversarialConfig(enabled=True, gan_start=2, gan_ramp=2, disc_channels=8)

    def stage(out: Path, resume: bool = False) -> VQVAEStage:
        config = dataclasses.replace(VQVAE_PRESETS["tiny"], restart_threshold=0.0)
        torch.manual_seed(0)
        return VQVAEStage(
            "health_gathering", hg_dataset, config, "tiny", out, CPU.device, resume, 4,
            adversarial=gan,
        )  # fmt: skip

    straight = tmp_path / "straight"
    train(stage(straight), CONFIG, straight / "vqvae.pt", CPU, progress=False)
    blob = load_checkpoint(straight / "vqvae.pt", "vqvae")
    assert blob["gan"]["enabled"] and set(blob["disc"]) == {"model", "opt"}
    VQVAE(VQVAE_PRESETS["tiny"]).load_state_dict(blob["model"])  # a plain tokenizer
    killed = tmp_path / "killed"
    with pytest.raises(Crash):
        train(crash_after(stage(killed), 3), CONFIG, killed / "vqvae.pt", CPU, progress=False)
    train(stage(killed, resume=True), CONFIG, killed / "vqvae.pt", CPU, resume=True)
    assert_same_run(weights(straight / "vqvae.pt"), weights(killed / "vqvae.pt"))
    other = load_checkpoint(killed / "vqvae.pt", "vqvae")["disc"]["model"]
    assert_same_run(blob["disc"]["model"], other)


def test_a_second_training_process_on_one_run_folder_is_refused(
    hg_dataset: Path, tmp_path: Path, capsys
):
    import train

    out = tmp_path / "run"
    args = ["--env", "health_gathering", "--stage", "vqvae", "--preset", "tiny",
            "--data", str(hg_dataset), "--out", str(out), "--steps", "1", "--quiet"]  # fmt: skip
    with run_lock(out):  # stands in for a run still going in another process
        with pytest.raises(SystemExit) as refused:
            train.main(args)
        assert refused.value.code == 2
        err = capsys.readouterr().err
        assert f"(pid {os.getpid()}) is writing {out}" in err and "kill" in err
        assert not (out / "vqvae.pt").exists()
    train.main(args)  # the lock goes with the process that held it
    assert (out / "vqvae.pt").exists()


def test_the_run_lock_creates_nothing_in_or_beside_the_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "new"
    with run_lock(out):
        assert not (tmp_path / "runs").exists()
        same = tmp_path / "runs" / ".." / "runs" / "new"  # a second holder, same process
        with pytest.raises(UserError, match="is writing"), run_lock(same):
            pass
    with run_lock(out):  # released: free again
        pass
    assert list(tmp_path.iterdir()) == []
