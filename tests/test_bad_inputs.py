"""Bad input to every command line, one case per line: command, arguments, exit status and a
fragment of the one-line error. Each runs the entry point's ``main`` in this process (a few
subprocess runs in the other test files check the same from outside), and must leave the disk
as it was: a refused command creates, changes and deletes nothing.

``{name}`` in the arguments is a file or folder made by the ``paths`` fixture.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest
import torch

from tests.conftest import entry_point, tiny_world_model
from worldmodel.checkpoint import save_checkpoint
from worldmodel.config import to_dict

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")

# fmt: off
CASES = [
    # collect.py
    ("collect", "--episodes 1000000000000", 2, "--episodes 1000000000000: the episode files need"),
    ("collect", "--episodes 0", 2, "--episodes must be at least 1"),
    ("collect", "--n-envs 0", 2, "--n-envs must be at least 1"),
    ("collect", "--n-envs 100000000", 2, "--n-envs 100000000: the games alone need"),
    ("collect", "--workers 0", 2, "--workers must be at least 1"),
    ("collect", "--epsilon 1.5", 2, "--epsilon must be in [0, 1]"),
    ("collect", "--sticky-mean 0.5", 2, "--sticky-mean must be at least 1"),
    ("collect", "--agent-steps 0", 2, "--agent-steps must be at least 1"),
    ("collect", "--seed -1", 2, "--seed must be at least 0"),
    ("collect", "--env battle", 2, "unknown env 'battle'"),
    ("collect", "--policy {model} --out {cwd}/new", 2, "worldmodel checkpoint, not a PPO agent"),
    ("collect", "--policy {garbage} --out {cwd}/new", 2, "is not a readable agent file"),
    ("collect", "--policy {agent_tc} --out {cwd}/new", 2, "is an agent for 'take_cover'"),
    ("collect", "--policy missing.pt --out {cwd}/new", 2, "no agent at missing.pt"),
    ("collect", "--out {ro}/data", 2, "cannot write in"),
    ("collect", "--out {text}", 2, "is a file, not a folder"),
    ("collect", "--out {text}/data", 2, "is a file, so no folder can be made under it"),
    ("collect", "--out {manifest_list}", 2, "the top level should be an object, not a list"),
    ("collect", "--out {manifest_null}", 2, "episodes[0].file should be a string, not null"),
    ("collect", "--out {manifest_junk}", 2, "is not a valid manifest"),
    # train.py
    ("train", "--batch-size 1000000000", 2, "--batch-size 1000000000: its clips alone need"),
    ("train", "--stage prior --batch-size 100000000", 2, "--batch-size 100000000: its clips"),
    ("train", "--steps 0", 2, "--steps must be at least 1"),
    ("train", "--eval-every 0", 2, "--eval-every must be at least 1"),
    ("train", "--save-every 0", 2, "--save-every must be at least 1"),
    ("train", "--log-every 0", 2, "--log-every must be at least 1"),
    ("train", "--lr -1", 2, "--lr must be greater than 0"),
    ("train", "--lr 0", 2, "--lr must be greater than 0"),
    ("train", "--warmup -1", 2, "--warmup must be at least 0"),
    ("train", "--min-lr-ratio 2", 2, "--min-lr-ratio must be in [0, 1]"),
    ("train", "--grad-clip -1", 2, "--grad-clip must be at least 0"),
    ("train", "--minutes 0", 2, "--minutes must be greater than 0"),
    ("train", "--num-workers -1", 2, "--num-workers must be at least 0"),
    ("train", "--threads -1", 2, "--threads must be at least 1"),
    ("train", "--threads 0", 2, "--threads must be at least 1"),
    ("train", "--device tpu", 2, "--device must be one of auto, cpu, cuda"),
    pytest.param("train", "--device cuda", 2, "no CUDA GPU", marks=NO_CUDA),
    ("train", "--set bogus.x=1", 2, "the section must be vqvae, gan, prior, frame"),
    ("train", "--set decoder.adv_weight=2", 2, "the section must be vqvae, gan, prior, frame"),
    ("train", "--stage decoder --set prior.x=1", 2, "the section must be vqvae, decoder"),
    ("train", "--stage decoder --checkpoint {model} --set decoder.adv_weight=-1", 2,
     "--set decoder.adv_weight must be at least 0, got -1.0"),
    ("train", "--stage decoder --checkpoint {model} --set decoder.disc_layers=0", 2,
     "--set decoder.disc_layers must be at least 1"),
    ("train", "--set gan.fm_weight=-2", 2, "--set gan.fm_weight must be at least 0, got -2.0"),
    ("train", "--set gan.disc_lr=0", 2, "--set gan.disc_lr must be greater than 0"),
    ("train", "--stage decoder --checkpoint {model} --out {model_dir}", 2,
     "worldmodel.pt would be overwritten: --stage decoder writes its result to"),
    ("train", "--stage agent --passes 0", 2, "--passes must be at least 1"),
    ("train", "--set prior.nope=1", 2, "prior has no field 'nope'"),
    ("train", "--set vqvae.hidden=many", 2, "--set vqvae.hidden=many"),
    ("train", "--env battle", 2, "unknown env 'battle'"),
    ("train", "--out {ro}/run", 2, "cannot write in"),
    ("train", "--out {text}", 2, "is a file, not a folder"),
    ("train", "--data {manifest_list}", 2, "the top level should be an object, not a list"),
    ("train", "--data {manifest_null}", 2, "episodes[0].file should be a string, not null"),
    ("train", "--data {cwd}/nothing", 2, "has no manifest.json; collect data first"),
    pytest.param(  # each missing file is skipped with a warning first: expected here
        "train", "--data {no_episodes}", 2, "no readable 'train' episodes (all 8 unreadable)",
        marks=pytest.mark.filterwarnings("ignore:skipping ep_"),
    ),
    ("train", "--env take_cover", 2, "holds 'health_gathering' data, not 'take_cover'"),
    ("train", "--stage prior --out {run_no_weights}", 2, "vqvae.pt is damaged: model should be"),
    ("train", "--stage prior --out {run_agent}", 2, "is a PPO agent, not a vqvae checkpoint"),
    ("train", "--stage vqvae --resume --out {cwd}/fresh", 2, "--resume: no checkpoint at"),
    ("train", "--stage agent --agent-envs 0", 2, "--agent-envs must be at least 1"),
    ("train", "--stage agent --agent-steps 0", 2, "--agent-steps must be at least 1"),
    ("train", "--stage agent --checkpoint missing.pt", 2, "--checkpoint missing.pt: no such file"),
    ("train", "--stage agent --temperature 1 -1", 2, "--temperature must be in [0, 3]"),
    ("train", "--stage agent --exploit-starts -1", 2, "--exploit-starts must be at least 0"),
    ("train", "--stage agent --state-change-odds 0", 2, "--state-change-odds must be in"),
    ("train", "--stage agent --damage-penalty -1", 2, "--damage-penalty must be at least 0"),
    ("train", "--quickstart --i3d missing.pt", 2, "--i3d missing.pt: no such file"),
    ("train", "--quickstart --preset paper", 2, "--quickstart is for CPU presets"),
    ("train", "--quickstart --data {text}", 2, "is a file, not a folder"),
    # evaluate.py
    ("evaluate", "--checkpoint {agent}", 2, "is a PPO agent, not a worldmodel or prior"),
    ("evaluate", "--checkpoint {vqvae}", 2, "holds a 'vqvae' model, not worldmodel or prior"),
    ("evaluate", "--checkpoint {garbage}", 2, "is damaged or not a checkpoint of this project"),
    ("evaluate", "--checkpoint {no_prior}", 2, "is damaged: prior should be a dict"),
    ("evaluate", "--checkpoint {cwd}/missing.pt", 2, "no checkpoint at"),
    ("evaluate", "--out {ro}/eval", 2, "cannot write in"),
    ("evaluate", "--out {text}", 2, "is a file, not a folder"),
    ("evaluate", "--clips 0", 2, "--clips must be at least 1"),
    ("evaluate", "--clips 1000000000000", 2, "--clips 1000000000000: the real and dreamed"),
    ("evaluate", "--horizon 0", 2, "--horizon must be at least 1"),
    ("evaluate", "--batch 0", 2, "--batch must be at least 1"),
    ("evaluate", "--context 0", 2, "--context must be at least 1"),
    ("evaluate", "--split training", 2, "--split must be one of train, val, test"),
    ("evaluate", "--temperature -1", 2, "--temperature must be at least 0"),
    ("evaluate", "--passes 0", 2, "--passes must be at least 1"),
    ("evaluate", "--device tpu", 2, "--device must be one of"),
    ("evaluate", "--threads 0", 2, "--threads must be at least 1"),
    ("evaluate", "--i3d missing.pt", 2, "--i3d missing.pt: no such file"),
    ("evaluate", "--i3d {text} --horizon 8", 2, "FVD needs at least 9 frames"),
    ("evaluate", "--data {manifest_list}", 2, "the top level should be an object"),
    ("evaluate", "--env take_cover", 2, "holds 'health_gathering' data, not 'take_cover'"),
    # play.py
    ("play", "--agent {model}", 2, "is a worldmodel checkpoint, not a PPO agent"),
    ("play", "--agent {garbage}", 2, "is not a readable agent file"),
    ("play", "--agent {agent_tc}", 2, "is an agent for 'take_cover', not 'health_gathering'"),
    ("play", "--agent missing.pt", 2, "--agent missing.pt: no such file"),
    ("play", "--mode dream --checkpoint {agent}", 2, "is a PPO agent, not a worldmodel or prior"),
    ("play", "--mode dream --checkpoint {listed}", 2, "is not a checkpoint of this project"),
    ("play", "--mode dream --checkpoint {vqvae}", 2, "holds a 'vqvae' model"),
    ("play", "--fps -5", 2, "--fps must be at least 0"),
    ("play", "--passes 0", 2, "--passes must be at least 1"),
    ("play", "--mode dream --checkpoint {model} --passes 4", 2, "trained without reveal"),
    ("play", "--scale 0", 2, "--scale must be in [1, 16]"),
    ("play", "--scale 1000", 2, "--scale must be in [1, 16]"),
    ("play", "--temperature -1", 2, "--temperature must be in [0, 3]"),
    ("play", "--temperature 5", 2, "--temperature must be in [0, 3]"),
    ("play", "--steps 0", 2, "--steps must be at least 1"),
    ("play", "--seed -1", 2, "--seed must be at least 0"),
    ("play", "--threads 0", 2, "--threads must be at least 1"),
    ("play", "--device tpu", 2, "--device must be one of"),
    pytest.param("play", "--device cuda", 2, "no CUDA GPU", marks=NO_CUDA),
    ("play", "--policy humna", 2, "--policy must be one of human, random, agent, script:FILE"),
    ("play", "--policy script:missing.txt", 2, "--policy missing.txt: no such file"),
    ("play", "--policy script:{bad_script}", 2, "unknown action 'jump'"),
    ("play", "--policy script:{bad_log}", 2, "is not a recorded action log"),
    ("play", "--record {ro}/s.mp4", 2, "cannot write in"),
    ("play", "--record {text}/s.mp4", 2, "is a file, so no folder can be made under it"),
    ("play", "--record {folder_gif}", 2, "is a folder; give a file name"),
    ("play", "--record s.avi", 2, "--record needs a .mp4 or .gif file name"),
    ("play", "--env battle", 2, "unknown env 'battle'"),
]
# fmt: on

# Flags every case of a command gets first (a later flag of the case overrides them).
BASE = {
    "collect": "--policy random --out {data} --quiet",
    "train": "--preset tiny --data {data} --out {cwd}/runs/t --quiet",
    "evaluate": "--checkpoint {model} --data {data} --quiet",
    "play": "--mode real --headless --steps 2",
}


MAINS = {name: entry_point(name) for name in BASE}


def _agent(path: Path, env: str) -> Path:
    from stable_baselines3.common.policies import ActorCriticCnnPolicy

    from agents.ppo import _policy_spaces, save_agent

    policy = ActorCriticCnnPolicy(*_policy_spaces(env), lr_schedule=lambda _: 0.0)
    save_agent(path, env, policy, {})
    return path


def _dataset_with_manifest(root: Path, text: str) -> Path:
    root.mkdir()
    (root / "manifest.json").write_text(text)
    return root


@pytest.fixture(scope="module")
def files(
    tmp_path_factory: pytest.TempPathFactory, hg_dataset: Path, tiny_model_path: Path
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    model = tiny_world_model()
    tokenizer = {
        "kind": "vqvae",
        "env": "health_gathering",
        "config": to_dict(model.tokenizer.config),
        "model": model.tokenizer.state_dict(),
        "step": 0,
        "action_names": model.action_names,
    }
    save_checkpoint(root / "vqvae.pt", tokenizer)
    no_prior = torch.load(tiny_model_path, weights_only=True)
    del no_prior["prior"]
    torch.save(no_prior, root / "no_prior.pt")
    (root / "run_no_weights").mkdir()
    save_checkpoint(root / "run_no_weights" / "vqvae.pt", {**tokenizer, "model": None})
    (root / "run_agent").mkdir()
    _agent(root / "run_agent" / "vqvae.pt", "health_gathering")
    manifest = json.loads((hg_dataset / "manifest.json").read_text())
    manifest["episodes"][0]["file"] = None
    torch.save([1, 2, 3], root / "listed.pt")
    (root / "garbage.pt").write_bytes(os.urandom(3000))
    (root / "notes.txt").write_text("not a folder\n")
    (root / "folder.gif").mkdir()
    (root / "bad_script.txt").write_text("forward\njump\n")
    (root / "bad_log.json").write_text('{"steps": [{"act": 1}]}')
    return {
        "data": hg_dataset,
        "model": tiny_model_path,
        "model_dir": tiny_model_path.parent,
        "agent": _agent(root / "agent.pt", "health_gathering"),
        "agent_tc": _agent(root / "agent_tc.pt", "take_cover"),
        "vqvae": root / "vqvae.pt",
        "no_prior": root / "no_prior.pt",
        "run_no_weights": root / "run_no_weights",
        "run_agent": root / "run_agent",
        "listed": root / "listed.pt",
        "garbage": root / "garbage.pt",
        "text": root / "notes.txt",
        "folder_gif": root / "folder.gif",
        "bad_script": root / "bad_script.txt",
        "bad_log": root / "bad_log.json",
        "manifest_list": _dataset_with_manifest(root / "m_list", "[]"),
        "manifest_null": _dataset_with_manifest(root / "m_null", json.dumps(manifest)),
        "manifest_junk": _dataset_with_manifest(root / "m_junk", "{not json"),
        "no_episodes": _dataset_with_manifest(
            root / "no_episodes", (hg_dataset / "manifest.json").read_text()
        ),
    }


@pytest.fixture
def read_only(tmp_path: Path):
    """A folder nothing can be written in. Root writes through permission bits, so as root
    this is /sys, where the kernel refuses even root."""
    if os.geteuid() == 0:
        if not Path("/sys").is_dir():
            pytest.skip("running as root without /sys: no read-only folder to try")
        yield Path("/sys")
        return
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns)
        for root in roots
        for p in sorted(root.rglob("*"))
        if "__pycache__" not in p.parts
    }


@pytest.mark.parametrize(("command", "args", "status", "message"), CASES)
def test_bad_input_is_one_line_and_changes_nothing(
    command: str,
    args: str,
    status: int,
    message: str,
    files: dict[str, Path],
    read_only: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = {**files, "ro": read_only, "cwd": tmp_path}
    argv = shlex.split(f"{BASE[command]} {args}".format(**paths))
    roots = (tmp_path, files["data"], files["model"].parent, files["vqvae"].parent)
    before = _snapshot(*roots)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        MAINS[command](argv)
    err = capsys.readouterr().err
    assert stop.value.code == status, err
    assert message.format(**paths) in err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert _snapshot(*roots) == before
