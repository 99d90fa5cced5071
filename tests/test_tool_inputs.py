"""Bad input to every tool in tools/, one case per line (as tests/test_bad_inputs.py does for the
main commands): tool, arguments and a fragment of the one-line error. Each must exit with
status 2 after one ``error: ...`` line and leave every file as it was, byte for byte, with no
temporary file behind. Then the tools that write shipped files, writing: the model and its
card agree, and a write that fails half-way replaces nothing.

``{name}`` in the arguments is a file or folder made by the ``files`` fixture.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from pathlib import Path

import pytest

from agents.ppo import load_agent, save_agent
from tests.conftest import save_frame_world_model, script_module, tiny_frame_world_model
from tests.test_ship_model import write_run
from worldmodel.checkpoint import load_checkpoint, write_all_atomic

TOOLS = (
    "ship_model",
    "set_sampling",
    "swap_decoder",
    "ship_agent",
    "dream_ranking",
    "dream_difficulty",
    "compare_decoders",
    "real_ppo",
    "code_stability",
    "keep_sweep",
    "scripted_take_cover",
    "tb",
    "tokenizer_curve",
)
MODULES = {name: script_module(f"tools/{name}.py") for name in TOOLS}

# Flags every case of a tool gets first (a later flag of the case overrides them).
BASE = {
    "ship_model": "--run {run} --env health_gathering",
    "set_sampling": "--checkpoint {model}",
    "swap_decoder": "--decoder {model} --into {twin} --out {cwd}/new.pt",
    "ship_agent": "--run {agent_run} --env health_gathering --out {cwd}/shipped.pt",
    "dream_ranking": "--checkpoint {model_tc} --sweeps 4 --starts 1",
    "dream_difficulty": "--checkpoint {model} --data {data} --dreams 1 --max-steps 2 --quiet",
    "compare_decoders": "--data {data} --decoder a={model} --out {cwd}/cmp --clips 1 --length 2",
    "real_ppo": "--out {cwd}/screen --steps 64 --n-envs 1 --episodes 1",
    "code_stability": "--checkpoint {model} --data {data} --episodes 1 --frames 4",
    "keep_sweep": "--checkpoint {model} --data {data} --split all --samples 2",
    "scripted_take_cover": "--episodes 1",
    "tb": "",
    "tokenizer_curve": "--data {data} --run a={model} --i3d {model} --out {cwd}/curve --clips 2",
}

# fmt: off
CASES = [
    # ship_model
    ("ship_model", "--env battle", "unknown env 'battle'"),
    ("ship_model", "--env take_cover", "was trained on 'health_gathering', not 'take_cover'"),
    ("ship_model", "--run {cwd}/nothing", "nothing: no such folder"),
    ("ship_model", "--run {text}", "notes.txt: a file, not a folder"),
    ("ship_model", "--run {empty}", "no checkpoint at"),
    ("ship_model", "--run {run_truncated}", "is damaged or not a checkpoint of this project"),
    ("ship_model", "--run {run_bad_export}", "is damaged or not a checkpoint of this project"),
    ("ship_model", "--agent {model}", "is a worldmodel checkpoint, not a PPO agent"),
    ("ship_model", "--agent {agent_tc}", "is an agent for 'take_cover', not 'health_gathering'"),
    ("ship_model", "--agent {cwd}/missing.pt", "missing.pt: no such file"),
    ("ship_model", "--eval {empty}", "metrics.json: no such file"),
    ("ship_model", "--eval {eval_junk}", "cannot be read (not valid JSON"),
    ("ship_model", "--eval {eval_list}", "should hold a JSON object"),
    ("ship_model", "--decoder {garbage}", "is damaged or not a checkpoint of this project"),
    ("ship_model", "--decoder {bad_card}", "--decoder's card"),
    ("ship_model", "--decoder {other_codes}", "another encoder or codebook"),
    # set_sampling
    ("set_sampling", "--temperature -1", "--temperature must be in [0, 3], got -1"),
    ("set_sampling", "--temperature nan", "--temperature must be in [0, 3], got nan"),
    ("set_sampling", "--top-p 0", "--top-p must be in [0.01, 1]"),
    ("set_sampling", "--passes 0", "--passes must be at least 1"),
    ("set_sampling", "--passes 4", "draws a frame in one pass"),
    ("set_sampling", "--out {ro}/x.pt", "cannot write in"),
    ("set_sampling", "--out {folder}", "is a folder; give a file name"),
    ("set_sampling", "--checkpoint {bad_card}", "cannot be read (not valid JSON"),
    ("set_sampling", "--checkpoint {agent}", "is a PPO agent, not a worldmodel"),
    ("set_sampling", "--checkpoint {cwd}/missing.pt", "no checkpoint at"),
    # swap_decoder
    ("swap_decoder", "--out {twin}", "--out must differ from --into"),
    ("swap_decoder", "--out {model}", "--out must differ from --decoder"),
    ("swap_decoder", "--out {ro}/new.pt", "cannot write in"),
    ("swap_decoder", "--out {folder}", "is a folder; give a file name"),
    ("swap_decoder", "--into {garbage}", "is damaged or not a checkpoint of this project"),
    ("swap_decoder", "--decoder {agent}", "is a PPO agent"),
    ("swap_decoder", "--decoder {other_codes}", "another encoder or codebook"),
    ("swap_decoder", "--decoder {model_tc}", "was trained on 'take_cover', not 'health_gathering'"),
    # ship_agent
    ("ship_agent", "--env battle", "unknown env 'battle'"),
    ("ship_agent", "--env take_cover", "is an agent for 'health_gathering', not 'take_cover'"),
    ("ship_agent", "--run {cwd}/nothing", "nothing: no such folder"),
    ("ship_agent", "--run {empty}", "no agent at"),
    ("ship_agent", "--run {agent_run_junk_score}", "score.json"),
    ("ship_agent", "--run {agent_run_no_returns}", "holds no per-episode returns and steps"),
    ("ship_agent", "--out {ro}/a.pt", "cannot write in"),
    ("ship_agent", "--out {agent_run}/agent.pt", "--out must differ from the run's agent.pt"),
    # dream_ranking
    ("dream_ranking", "--temperature -1", "--temperature must be in [0, 3], got -1"),
    ("dream_ranking", "--hold attack_right", "--hold attack_right: not an action of take_cover"),
    ("dream_ranking", "--temperature nan", "--temperature must be in [0, 3], got nan"),
    ("dream_ranking", "--state-temperature -1", "--state-temperature must be in [0, 3]"),
    ("dream_ranking", "--passes 0", "--passes must be at least 1"),
    ("dream_ranking", "--passes 4", "draws a frame in one pass"),
    ("dream_ranking", "--json {ro}/r.json", "cannot write in"),
    ("dream_ranking", "--json {folder}", "is a folder; give a file name"),
    ("dream_ranking", "--checkpoint {model}", "needs move_left and move_right"),
    # dream_difficulty
    ("dream_difficulty", "--odds 0", "--odds must be in [0.01, 1000], got 0"),
    ("dream_difficulty", "--temperature -1", "--temperature must be in [0, 3]"),
    ("dream_difficulty", "--dreams 0", "--dreams must be at least 1"),
    ("dream_difficulty", "--passes 0", "--passes must be at least 1"),
    ("dream_difficulty", "--passes 4", "draws a frame in one pass"),
    ("dream_difficulty", "--max-steps 0", "--max-steps must be at least 1"),
    ("dream_difficulty", "--split training", "--split must be one of train, val, test, all"),
    ("dream_difficulty", "--checkpoint {cwd}/missing.pt", "missing.pt: no such file"),
    ("dream_difficulty", "--checkpoint {agent}", "is a PPO agent"),
    ("dream_difficulty", "--data {cwd}/nothing", "has no manifest.json"),
    # tokenizer_curve
    ("tokenizer_curve", "--run nonsense", "expect NAME=PATH"),
    ("tokenizer_curve", "--run b={cwd}/none*.pt", "no checkpoint matches"),
    ("tokenizer_curve", "--i3d {cwd}/missing.pt", "missing.pt: no such file"),
    ("tokenizer_curve", "--length 4", "--length must be at least 9"),
    ("tokenizer_curve", "--out {ro}/c", "cannot write in"),
    # compare_decoders
    ("compare_decoders", "--decoder nonsense", "--decoder expects NAME=CHECKPOINT"),
    ("compare_decoders", "--decoder a={model}", "the name 'a' is given twice"),
    ("compare_decoders", "--decoder b={cwd}/missing.pt", "missing.pt: no such file"),
    ("compare_decoders", "--decoder b={other_codes}", "tokenizers with different codes"),
    ("compare_decoders", "--clips 0", "--clips must be at least 1"),
    ("compare_decoders", "--split training", "--split must be one of"),
    ("compare_decoders", "--out {ro}/c", "cannot write in"),
    ("compare_decoders", "--out {text}", "is a file, not a folder"),
    ("compare_decoders", "--stills {cwd}/s.jpg", "--stills needs a .png file name"),
    ("compare_decoders", "--i3d {text} --length 8", "FVD needs at least 9 frames"),
    ("compare_decoders", "--data {cwd}/nothing", "has no manifest.json"),
    # real_ppo
    ("real_ppo", "--env doom2", "unknown env 'doom2'"),
    ("real_ppo", "--out {ro}/r", "cannot write in"),
    ("real_ppo", "--out {text}", "is a file, not a folder"),
    ("real_ppo", "--n-steps 1", "--n-steps must be at least 2"),
    ("real_ppo", "--episodes 0", "--episodes must be at least 1"),
    # code_stability
    ("code_stability", "--episodes 0", "--episodes must be at least 1"),
    ("code_stability", "--frames 1", "--frames must be at least 2"),
    ("code_stability", "--tau 1 -1", "--tau must be at least 0"),
    ("code_stability", "--threads 0", "--threads must be at least 1"),
    ("code_stability", "--split training", "--split must be one of"),
    ("code_stability", "--checkpoint {agent}", "is a PPO agent"),
    ("code_stability", "--data {cwd}/nothing", "has no manifest.json"),
    # keep_sweep
    ("keep_sweep", "--keep-likely 0.1 -1", "--keep-likely must be in [0, 1]"),
    ("keep_sweep", "--context 0", "--context must be at least 1"),
    ("keep_sweep", "--checkpoint {agent}", "is a PPO agent"),
    ("keep_sweep", "--checkpoint {cwd}/missing.pt", "missing.pt"),
    ("keep_sweep", "--data {cwd}/nothing", "has no manifest.json"),
    # scripted_take_cover
    ("scripted_take_cover", "--episodes 0", "--episodes must be at least 1"),
    ("scripted_take_cover", "--sweeps 4 0", "--sweeps must be at least 1"),
    # tb
    ("tb", "{cwd}/nothing", "nothing: no such folder"),
    ("tb", "{text}", "notes.txt: a file, not a folder"),
    ("tb", "{empty}", "holds no TensorBoard scalars"),
]
# fmt: on


def _agent(path: Path, env: str) -> Path:
    from stable_baselines3.common.policies import ActorCriticCnnPolicy

    from agents.ppo import _policy_spaces

    policy = ActorCriticCnnPolicy(*_policy_spaces(env), lr_schedule=lambda _: 0.0)
    save_agent(path, env, policy, {"train_steps": 64})
    return path


def _folder(path: Path, files: dict[str, bytes | str] | None = None) -> Path:
    path.mkdir()
    for name, data in (files or {}).items():
        target = path / name
        target.write_bytes(data) if isinstance(data, bytes) else target.write_text(data)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, hg_dataset: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tools")
    model = save_frame_world_model(tiny_frame_world_model(bank=False), root / "hg.pt")
    (root / "hg.json").write_text(json.dumps({"env": "health_gathering", "sha256": "0"}))
    twin = save_frame_world_model(tiny_frame_world_model(bank=False), root / "twin.pt")
    run = root / "run"
    write_run(run, tiny_frame_world_model(seed=0, bank=False))
    agent_run = _folder(root / "agent_run")
    _agent(agent_run / "agent.pt", "health_gathering")
    (agent_run / "score.json").write_text(json.dumps({"returns": [1.0], "steps": [3]}))
    junk_score = _folder(root / "agent_run_junk_score", {"score.json": "{returns"})
    _agent(junk_score / "agent.pt", "health_gathering")
    no_returns = _folder(root / "agent_run_no_returns", {"score.json": '{"episodes": 2}'})
    _agent(no_returns / "agent.pt", "health_gathering")
    bad_card = _folder(root / "bad_card")
    save_frame_world_model(tiny_frame_world_model(bank=False), bad_card / "hg.pt")
    (bad_card / "hg.json").write_text("{not json")
    (root / "garbage.pt").write_bytes(os.urandom(3000))
    (root / "notes.txt").write_text("not a folder\n")
    return {
        "data": hg_dataset,
        "model": model,
        "twin": twin,
        "model_tc": save_frame_world_model(tiny_frame_world_model("take_cover"), root / "tc.pt"),
        "other_codes": save_frame_world_model(
            tiny_frame_world_model(seed=1, bank=False), root / "other.pt"
        ),
        "bad_card": bad_card / "hg.pt",
        "run": run,
        "run_truncated": _folder(
            root / "run_truncated", {"prior.pt": (run / "prior.pt").read_bytes()[:2000]}
        ),
        "run_bad_export": _folder(
            root / "run_bad_export",
            {"prior.pt": (run / "prior.pt").read_bytes(), "worldmodel.pt": os.urandom(3000)},
        ),
        "agent": _agent(root / "agent.pt", "health_gathering"),
        "agent_tc": _agent(root / "agent_tc.pt", "take_cover"),
        "agent_run": agent_run,
        "agent_run_junk_score": junk_score,
        "agent_run_no_returns": no_returns,
        "eval_junk": _folder(root / "eval_junk", {"metrics.json": "{oops"}),
        "eval_list": _folder(root / "eval_list", {"metrics.json": "[1, 2]"}),
        "garbage": root / "garbage.pt",
        "text": root / "notes.txt",
        "folder": _folder(root / "folder"),
        "empty": _folder(root / "empty"),
    }


@pytest.fixture
def assets(
    files: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """ship_model's destinations, in tmp: a shipped model and card already there."""
    folder = tmp_path_factory.mktemp("assets")
    (folder / "health_gathering.pt").write_bytes(files["other_codes"].read_bytes())
    (folder / "health_gathering.json").write_text(json.dumps({"env": "health_gathering"}))
    monkeypatch.setattr(MODULES["ship_model"], "ASSETS", folder)
    monkeypatch.setattr(MODULES["ship_model"], "AGENT_ASSETS", folder / "agents")
    return folder


@pytest.fixture
def read_only(tmp_path: Path):
    """A folder nothing can be written in (as root, /sys, where the kernel refuses even root)."""
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


def _contents(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` by path: a hash of its bytes."""
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for root in roots
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.mark.parametrize(("tool", "args", "message"), CASES)
def test_bad_input_is_one_line_and_changes_nothing(
    tool: str,
    args: str,
    message: str,
    files: dict[str, Path],
    assets: Path,
    read_only: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = {**files, "ro": read_only, "cwd": tmp_path}
    argv = shlex.split(f"{BASE[tool]} {args}".format(**paths))
    roots = (tmp_path, assets, files["model"].parent, files["data"])
    before = _contents(*roots)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        MODULES[tool].main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert message.format(**paths) in err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert _contents(*roots) == before
    assert not [p for root in roots for p in root.rglob("*.tmp")]


def test_ship_model_into_a_read_only_folder_changes_nothing(
    files: dict[str, Path],
    read_only: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tool = MODULES["ship_model"]
    monkeypatch.setattr(tool, "ASSETS", read_only)
    with pytest.raises(SystemExit) as stop:
        tool.main(["--run", str(files["run"]), "--env", "health_gathering"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith("error: shipping") and "cannot write in" in err


def test_shipped_model_card_and_agent_agree(
    files: dict[str, Path], assets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = MODULES["ship_model"]
    metrics = files["empty"].parent / "eval_ok"
    metrics.mkdir(exist_ok=True)
    (metrics / "metrics.json").write_text(json.dumps({"open_loop": {"psnr_mean": 20.0}}))
    argv = ["--run", str(files["run"]), "--env", "health_gathering", "--eval", str(metrics)]
    tool.main([*argv, "--agent", str(files["agent"])])
    shipped = assets / "health_gathering.pt"
    card = json.loads((assets / "health_gathering.json").read_text())
    assert card["sha256"] == hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert card["bytes"] == shipped.stat().st_size and card["evaluation"]["open_loop"]
    assert load_checkpoint(shipped, "worldmodel", "health_gathering")["step"] == 7
    agent = assets / "agents" / "health_gathering_ppo.pt"
    assert agent.read_bytes() == files["agent"].read_bytes()
    load_agent(agent, "health_gathering")
    assert f"sha256 {card['sha256'][:12]}" in capsys.readouterr().out
    assert not list(assets.rglob("*.tmp"))


def test_set_sampling_changes_the_model_and_its_card_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = save_frame_world_model(tiny_frame_world_model(bank=False), tmp_path / "hg.pt")
    model.with_suffix(".json").write_text(json.dumps({"env": "health_gathering", "sha256": "0"}))
    MODULES["set_sampling"].main(["--checkpoint", str(model), "--top-p", "0.8"])
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert card["default_sampling"]["settings"] == {"top_p": 0.8}


def test_a_write_that_fails_half_way_replaces_nothing(tmp_path: Path) -> None:
    model, card = tmp_path / "m.pt", tmp_path / "m.json"
    model.write_bytes(b"old model")
    card.write_text("old card")
    blocked = tmp_path / "notes.txt"
    blocked.write_text("a file, so nothing can be written under it")
    with pytest.raises(OSError):
        write_all_atomic({model: b"new model", card: "new card", blocked / "x": "never"})
    assert model.read_bytes() == b"old model" and card.read_text() == "old card"
    assert not list(tmp_path.rglob("*.tmp"))


def test_dream_ranking_keeps_its_table_when_the_json_cannot_be_written(
    files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tool = MODULES["dream_ranking"]

    def full_disk(path, data) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tool, "write_atomic", full_disk)
    argv = ["--checkpoint", str(files["model_tc"]), "--sweeps", "4", "--starts", "1"]
    with pytest.raises(SystemExit) as stop:
        tool.main([*argv, "--json", str(tmp_path / "r.json")])
    out, err = capsys.readouterr()
    assert stop.value.code == 2 and "| sweep every 4 |" in out
    json_path = tmp_path / "r.json"
    assert err == f"error: --json {json_path}: cannot write it (No space left on device)\n"


def test_every_tool_has_cases() -> None:
    assert {case[0] for case in CASES} == set(TOOLS)
