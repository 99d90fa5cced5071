"""Copy a trained world model (and the env's PPO agent) into the package, with a card.

    python tools/ship_model.py --run runs/health_gathering-cpu --env health_gathering \
        --agent runs/agents/health_gathering/ppo.pt --eval runs/health_gathering-cpu/eval

Writes worldmodel/assets/ENV.pt (no optimizer state), worldmodel/assets/ENV.json (config,
sha256, how it was trained, measured metrics) and agents/assets/ENV_ppo.pt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

from worldmodel.checkpoint import load_checkpoint
from worldmodel.world_model import ASSETS, WorldModel, export_world_model

AGENT_ASSETS = Path(__file__).resolve().parents[1] / "agents" / "assets"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run", type=Path, required=True, help="run folder with prior.pt")
    p.add_argument("--env", required=True)
    p.add_argument("--agent", type=Path, help="the env's PPO agent to ship for TAB control")
    p.add_argument("--eval", type=Path, help="evaluate.py output folder (metrics.json)")
    p.add_argument("--half", action="store_true", help="store weights as fp16")
    p.add_argument("--commands", nargs="*", default=[], help="the commands that made it")
    args = p.parse_args()
    out = ASSETS / f"{args.env}.pt"
    exported = args.run / "worldmodel.pt"  # the run's export holds its real start windows
    starts = WorldModel.load(exported, args.env).starts if exported.exists() else None
    export_world_model(args.run / "prior.pt", out, half=args.half, starts=starts)
    blob = load_checkpoint(out, "worldmodel", args.env)
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
    if args.eval is not None:
        card["evaluation"] = json.loads((args.eval / "metrics.json").read_text())
    (ASSETS / f"{args.env}.json").write_text(json.dumps(card, indent=1))
    if args.agent is not None:
        AGENT_ASSETS.mkdir(exist_ok=True)
        shutil.copy(args.agent, AGENT_ASSETS / f"{args.env}_ppo.pt")
    print(f"shipped {out} ({card['bytes'] / 1e6:.1f} MB), sha256 {card['sha256'][:12]}")


if __name__ == "__main__":
    main()
