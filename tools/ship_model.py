"""Copy a trained world model (and the env's PPO agent) into the package, with a card.

    python tools/ship_model.py --run runs/health_gathering-cpu --env health_gathering \
        --agent runs/agents/health_gathering/ppo.pt --eval runs/health_gathering-cpu/eval

Writes worldmodel/assets/ENV.pt (no optimizer state), worldmodel/assets/ENV.json (config,
sha256, how it was trained, measured metrics) and agents/assets/ENV_ppo.pt.

``--decoder CKPT`` ships the run's prior with the (fine-tuned) decoder of CKPT instead of the
run's own, kept at full precision even with ``--half``. CKPT may be the model being replaced
(``worldmodel/assets/ENV.pt``): it is read before anything is written, and the decoder's entry
of its card carries over. The swap is refused if CKPT's codes differ from the run's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.cli.args import fail
from worldmodel.tokenizer.swap import TOKENIZER_KINDS, swap_decoder
from worldmodel.world_model import ASSETS, WorldModel, export_world_model

AGENT_ASSETS = Path(__file__).resolve().parents[1] / "agents" / "assets"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run", type=Path, required=True, help="run folder with prior.pt")
    p.add_argument("--env", required=True)
    p.add_argument("--agent", type=Path, help="the env's PPO agent to ship for TAB control")
    p.add_argument("--eval", type=Path, help="evaluate.py output folder (metrics.json)")
    p.add_argument("--half", action="store_true", help="store weights as fp16")
    p.add_argument("--decoder", type=Path, help="checkpoint whose decoder to ship (see above)")
    p.add_argument("--eval-command", help="the evaluate.py command that wrote --eval")
    p.add_argument("--commands", nargs="*", default=[], help="the commands that made it")
    args = p.parse_args(argv)
    out = ASSETS / f"{args.env}.pt"
    source, decoder_card = None, None
    if args.decoder is not None:  # read first: it may be the file about to be replaced
        try:
            source = load_checkpoint(args.decoder, TOKENIZER_KINDS, args.env)
        except CheckpointError as e:
            fail(str(e))
        card_path = args.decoder.with_suffix(".json")
        if card_path.exists():
            decoder_card = json.loads(card_path.read_text()).get("decoder")
    exported = args.run / "worldmodel.pt"  # the run's export holds its real start windows
    starts = WorldModel.load(exported, args.env).starts if exported.exists() else None
    # build the bundle beside the run and write the asset last, so a refused decoder swap
    # leaves the shipped model untouched
    staged = args.run / "worldmodel-ship.pt"
    try:
        export_world_model(args.run / "prior.pt", staged, half=args.half, starts=starts)
        blob = load_checkpoint(staged, "worldmodel", args.env)
    finally:
        staged.unlink(missing_ok=True)
    if source is not None:
        try:
            blob = swap_decoder(blob, source)
        except CheckpointError as e:
            fail(str(e))
    save_checkpoint(out, blob)
    card = {
        "env": args.env,
        "file": out.name,
        "bytes": out.stat().st_size,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "preset": blob.get("preset"),
        "tokenizer_config": blob["tokenizer"]["config"],
        "prior_arch": blob.get("arch", "raster"),
        "prior_config": blob["config"],
        "game": blob.get("game"),
        "start_windows": len(starts) if starts is not None else 0,
        "action_names": blob["action_names"],
        "tokenizer_steps": blob["tokenizer"]["step"],
        "prior_steps": blob["step"],
        "prior_train_config": blob.get("train_config"),
        "prior_validation": blob.get("metrics"),
        "commands": args.commands,
        "fp16": args.half,
    }
    if source is not None:
        card["decoder_from"] = str(args.decoder)
        if args.half:
            card["fp16"] = "prior and encoder fp16; the decoder from --decoder as it was stored"
        if decoder_card is not None:
            card["decoder"] = decoder_card
    if args.eval is not None:
        card["evaluation"] = json.loads((args.eval / "metrics.json").read_text())
    if args.eval_command:
        card["evaluation_command"] = args.eval_command
    (ASSETS / f"{args.env}.json").write_text(json.dumps(card, indent=1))
    if args.agent is not None:
        AGENT_ASSETS.mkdir(exist_ok=True)
        shutil.copy(args.agent, AGENT_ASSETS / f"{args.env}_ppo.pt")
    print(f"shipped {out} ({card['bytes'] / 1e6:.1f} MB), sha256 {card['sha256'][:12]}")


if __name__ == "__main__":
    main()
