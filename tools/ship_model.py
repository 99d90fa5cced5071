"""Copy a trained world model (and the env's PPO agent) into the package, with a card.

    python tools/ship_model.py --run runs/health_gathering-cpu --env health_gathering \
        --agent runs/agents/health_gathering/ppo.pt --eval runs/health_gathering-cpu/eval

Writes worldmodel/assets/ENV.pt (no optimizer state), worldmodel/assets/ENV.json (config,
sha256, how it was trained, measured metrics) and agents/assets/ENV_ppo.pt.

``--decoder CKPT`` ships the run's prior with the (fine-tuned) decoder of CKPT instead of the
run's own, kept at full precision even with ``--half``. CKPT may be the model being replaced
(``worldmodel/assets/ENV.pt``): the swap is refused if CKPT's codes differ from the run's, and
the decoder's entry of its card carries over.

Every input is read and checked, and the new model is built and loaded back in memory, before
anything is written; then the model, its card and the agent are written to temporary files and
renamed into place together, so the shipped model and its card never disagree.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch

from agents.ppo import AgentError, load_agent
from agents.scenarios import UnknownEnvError, get_scenario
from worldmodel.checkpoint import (
    CheckpointError,
    check_checkpoint,
    checkpoint_bytes,
    load_checkpoint,
    write_all_atomic,
)
from worldmodel.cli import validate
from worldmodel.cli.args import UserError, fail
from worldmodel.tokenizer.swap import TOKENIZER_KINDS, swap_decoder
from worldmodel.world_model import ASSETS, WorldModel, world_model_payload

AGENT_ASSETS = Path(__file__).resolve().parents[1] / "agents" / "assets"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="run folder with prior.pt")
    p.add_argument("--env", required=True)
    p.add_argument("--agent", type=Path, help="the env's PPO agent to ship for TAB control")
    p.add_argument("--eval", type=Path, help="evaluate.py output folder (metrics.json)")
    p.add_argument("--half", action="store_true", help="store weights as fp16")
    p.add_argument("--decoder", type=Path, help="checkpoint whose decoder to ship (see above)")
    p.add_argument("--eval-command", help="the evaluate.py command that wrote --eval")
    p.add_argument("--commands", nargs="*", default=[], help="the commands that made it")
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> dict[Path, bytes | str]:
    """Every file to ship, by where it goes; reads and checks all inputs and writes nothing."""
    get_scenario(args.env)
    out = ASSETS / f"{args.env}.pt"
    validate.writable_file("shipping", out)
    if not args.run.is_dir():
        what = "a file, not a folder" if args.run.exists() else "no such folder"
        raise UserError(f"--run {args.run}: {what}; pass the run folder that holds prior.pt")
    prior = load_checkpoint(args.run / "prior.pt", "prior", args.env)
    source, decoder_card = None, None
    if args.decoder is not None:
        source = load_checkpoint(args.decoder, TOKENIZER_KINDS, args.env)
        card_path = args.decoder.with_suffix(".json")
        if card_path.exists():
            decoder_card = validate.json_object("--decoder's card", card_path).get("decoder")
    metrics = None
    if args.eval is not None:
        hint = "pass the folder evaluate.py wrote its report to"
        metrics = validate.json_object("--eval", args.eval / "metrics.json", hint)
    agent = None
    if args.agent is not None:
        validate.existing_file("--agent", args.agent)
        load_agent(args.agent, args.env)  # a PPO agent for this env, that play.py can load
        agent = AGENT_ASSETS / f"{args.env}_ppo.pt"
        validate.writable_file("shipping", agent)
    exported = args.run / "worldmodel.pt"  # the run's export holds its real start windows
    starts = WorldModel.load(exported, args.env).starts if exported.exists() else None
    blob = world_model_payload(prior, args.half, starts)
    if source is not None:
        blob = swap_decoder(blob, source)
    data = checkpoint_bytes(blob)
    # what play.py will load: refuse to ship a file it would refuse
    written = torch.load(io.BytesIO(data), weights_only=True)
    WorldModel.from_blob(check_checkpoint(written, "worldmodel", args.env, out), out)
    entry = json.dumps(card(args, data, blob, starts, metrics, decoder_card), indent=1)
    files: dict[Path, bytes | str] = {out: data, out.with_suffix(".json"): entry}
    if agent is not None:
        files[agent] = args.agent.read_bytes()
    return files


def card(
    args: argparse.Namespace,
    data: bytes,
    blob: dict[str, Any],
    starts: dict[str, Any] | None,
    metrics: dict[str, Any] | None,
    decoder_card: Any = None,
) -> dict[str, Any]:
    """The card of the model whose file holds ``data``: what it is, how it was made, its
    measured metrics (and ``decoder_card``, the decoder's entry in --decoder's card)."""
    entry = {
        "env": args.env,
        "file": f"{args.env}.pt",
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "preset": blob.get("preset"),
        "tokenizer_config": blob["tokenizer"]["config"],
        "prior_arch": blob.get("arch", "raster"),
        "prior_config": blob["config"],
        "game": blob.get("game"),
        "start_windows": len(starts["codes"]) if starts is not None else 0,
        "action_names": blob["action_names"],
        "tokenizer_steps": blob["tokenizer"]["step"],
        "prior_steps": blob["step"],
        "prior_train_config": blob.get("train_config"),
        "prior_validation": blob.get("metrics"),
        "commands": args.commands,
        "fp16": args.half,
    }
    if args.decoder is not None:
        entry["decoder_from"] = str(args.decoder)
        if args.half:
            entry["fp16"] = "prior and encoder fp16; the decoder from --decoder as it was stored"
        if decoder_card is not None:
            entry["decoder"] = decoder_card
    if metrics is not None:
        entry["evaluation"] = metrics
    if args.eval_command:
        entry["evaluation_command"] = args.eval_command
    return entry


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        files = build(args)
    except (UserError, CheckpointError, AgentError, UnknownEnvError) as e:
        fail(str(e))
    try:
        write_all_atomic(files)
    except OSError as e:
        fail(f"writing {e.filename or 'the shipped files'} failed ({e.strerror}); nothing shipped")
    out = ASSETS / f"{args.env}.pt"
    entry = json.loads(files[out.with_suffix(".json")])
    print(f"shipped {out} ({entry['bytes'] / 1e6:.1f} MB), sha256 {entry['sha256'][:12]}")


if __name__ == "__main__":
    main()
