"""Play ViZDoom inside the learned world model: python play.py --env health_gathering

Keys: arrows or WASD to move and turn (Q/E strafe, space fires where the scenario can), R
restart, P pause, T/G temperature, TAB hand control to the PPO agent and back, H help, ESC quit.
--mode side-by-side runs the real game next to the dream under the same keys.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import argparse
from pathlib import Path

import torch

from agents.play.loop import Controller, PlayOptions, run
from agents.play.session import MODES, PlaySession
from agents.play.window import NoDisplayError
from agents.ppo import AgentError, find_agent, load_agent
from agents.scenarios import DEFAULT_ENV, UnknownEnvError, get_scenario
from worldmodel.checkpoint import CheckpointError
from worldmodel.cli import validate
from worldmodel.cli.args import UserError, fail, interrupted, sigterm_as_interrupt
from worldmodel.world_model import WorldModel, shipped_checkpoint


def default_checkpoint(env: str) -> Path:
    """The shipped model for ``env`` if there is one, else the quickstart's output."""
    for path in (shipped_checkpoint(env), Path("runs") / f"{env}-cpu" / "worldmodel.pt"):
        if path is not None and path.exists():
            return path
    raise CheckpointError(
        f"no world model for {env!r}: make one with python train.py --env {env} --quickstart, "
        "or pass --checkpoint PATH (python play.py --mode real plays the real game)"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--env", default=DEFAULT_ENV, help="scenario (default: %(default)s)")
    p.add_argument("--checkpoint", type=Path, help="world model .pt (default: the shipped one)")
    p.add_argument("--mode", choices=MODES, default="dream", help="what to show")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument(
        "--temperature", type=float, help="sampling temperature (default: the model's, 1 if none)"
    )
    p.add_argument(
        "--copy-unchanged",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the pixels whose codes did not change (a steadier still view; default: the "
        "model's)",
    )
    p.add_argument(
        "--top-p",
        type=float,
        help="nucleus sampling: draw each code from the smallest set holding this probability "
        "(1: all codes; default: the model's)",
    )
    p.add_argument(
        "--passes",
        type=int,
        help="draw each frame in N passes, each committing its surest codes (a model trained "
        "with frame.reveal; default: the model's own, else 4 for those and 1 for others)",
    )
    p.add_argument(
        "--keep-likely",
        type=float,
        help="keep a code wherever the model gives the last frame's code there at least this "
        "probability (a still view stays still; 0: off; default: the model's; "
        "docs/EVALUATION.md)",
    )
    p.add_argument("--scale", type=int, default=8, help="pixel scale of the 64x64 frames")
    p.add_argument(
        "--fps", type=float, help="frame-rate cap, 0 for none (default: 15, headless: none)"
    )
    p.add_argument("--record", type=Path, help="write what is shown to FILE.mp4 or FILE.gif")
    p.add_argument("--headless", action="store_true", help="no window (SDL dummy driver)")
    p.add_argument("--steps", type=int, help="stop after N steps")
    p.add_argument(
        "--policy",
        default=None,
        help="human (default with a window), random (default headless), agent, "
        "or script:FILE (action names/indices per line, or a recorded .json)",
    )
    p.add_argument("--agent", type=Path, help="PPO agent for TAB / --policy agent")
    p.add_argument("--seed", type=int, default=0, help="seed of the real start and the dream")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    policy = args.policy or ("random" if args.headless else "human")
    with sigterm_as_interrupt():
        try:
            scenario = get_scenario(args.env)
            device = validate.play_args(args)
            torch.set_num_threads(args.threads)
            model = None
            if args.mode != "real":
                model = WorldModel.load(
                    args.checkpoint or default_checkpoint(args.env), args.env, device
                )
            agent_path = args.agent or find_agent(args.env)
            agent = load_agent(agent_path, args.env, seed=args.seed) if agent_path else None
            controller = Controller(
                policy, len(scenario.actions), list(scenario.action_names), args.seed, agent
            )
            session = PlaySession(
                args.env,
                args.mode,
                model,
                args.temperature,
                args.seed,
                copy_unchanged=args.copy_unchanged,
                top_p=args.top_p,
                passes=args.passes,
                keep_likely=args.keep_likely,
            )
        except (UnknownEnvError, CheckpointError, AgentError, UserError, ValueError, OSError) as e:
            fail(str(e))
        options = PlayOptions(
            scale=args.scale,
            fps=args.fps if args.fps is not None else (0.0 if args.headless else 15.0),
            headless=args.headless,
            steps=args.steps,
            policy=policy,
            record=args.record,
            device=device,
        )
        try:
            summary = run(session, options, controller)
        except NoDisplayError as e:
            fail(str(e))
        except KeyboardInterrupt:
            kept = f": the recording so far is in {args.record}" if args.record else ""
            interrupted(f"stopped after the step in play{kept}")
        finally:
            session.close()
    print(summary.line(args.mode, device))
    if args.record:
        print(f"recorded {summary.frames} frames to {args.record}")


if __name__ == "__main__":
    main()
