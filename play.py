"""Play ViZDoom inside the learned world model: python play.py --env health_gathering

Keys: arrows or WASD to move and turn (Q/E strafe, space fires where the scenario can), R
restart, P pause, T/G temperature, TAB hand control to the PPO agent and back, H help, ESC quit.
--mode side-by-side runs the real game next to the dream under the same keys; there C re-syncs
the dream to the game (starts it again from the game's current frames and game variables).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import argparse
from pathlib import Path

import torch

from agents.play.loop import REPLAYED_SAMPLING, Controller, PlayOptions, run
from agents.play.recorder import read_header
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
    p.add_argument("--env", help=f"scenario (default: {DEFAULT_ENV}, or the replayed recording's)")
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
    p.add_argument(
        "--seed",
        type=int,
        help="seed of the real start and the dream (default: 0, or the replayed recording's)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return p.parse_args(argv)


def as_recorded(args: argparse.Namespace) -> None:
    """Fill in --env, --seed and the sampling flags not given: a recording's own (``--policy
    script:FILE.actions.json``) so that it replays the dream it recorded, else the defaults.
    An --env or --seed other than the recording's is refused: its dream would differ from the
    first frame on."""
    policy = args.policy or ""
    script = Path(policy[len("script:") :]) if policy.startswith("script:") else None
    header = {}
    if script is not None and script.suffix == ".json" and script.is_file():
        header = read_header(script)
    for flag, default in (("env", DEFAULT_ENV), ("seed", 0)):
        given, recorded = getattr(args, flag), header.get(flag)
        if given is not None and recorded is not None and given != recorded:
            raise UserError(
                f"--{flag} {given}: {script} was recorded with --{flag} {recorded}, and replays "
                f"the same dream only with it; leave --{flag} out (or pass --{flag} {recorded})"
            )
        if given is None:
            setattr(args, flag, default if recorded is None else recorded)
    for name, value in (header.get("sampling") or {}).items():
        if name in REPLAYED_SAMPLING and getattr(args, name) is None:
            setattr(args, name, value)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    policy = args.policy or ("random" if args.headless else "human")
    with sigterm_as_interrupt():
        try:
            as_recorded(args)
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
        except KeyboardInterrupt:
            interrupted("stopped before play began")
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
            summary = run(session, options, controller)  # Ctrl-C ends it with a full summary
        except NoDisplayError as e:
            fail(str(e))
        except KeyboardInterrupt:  # while the window or the recording closed
            summary = None
        finally:
            session.close()
    if summary is not None:
        print(summary.line(args.mode, device))
        if args.record:
            print(f"recorded {summary.frames} frames to {args.record}")
    if summary is None or summary.interrupted:
        kept = f": the recording so far is in {args.record}" if args.record else ""
        interrupted(f"stopped after the step in play{kept}")


if __name__ == "__main__":
    main()
