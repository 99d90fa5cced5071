"""Does the dream rank policies as the real game does? Check it before training an agent in it.

    python tools/dream_ranking.py --checkpoint worldmodel/assets/take_cover.pt \\
        --agents agents/assets/take_cover_dream_ppo.pt agents/assets/take_cover_ppo.pt \\
        --sweeps 16 24 --starts 48 --state-change-odds 30

    python tools/dream_ranking.py --checkpoint worldmodel/assets/defend_the_center.pt \\
        --agents agents/assets/defend_the_center_ppo.pt --hold attack_right noop

Plays a random policy, each ``--agents`` file, each ``--sweeps`` (move_left and move_right
alternated every N steps, never looking) and each ``--hold`` (one action held: attack_right is
spin-and-shoot) from the same real starts in the dream and in the real game
(agents.dream.ranking), and prints on both sides the tics survived, or the return where the
scenario pays for kills (``--by``), each side's order, and Kendall's tau between them. An
agent trained in this dream learns its favourite: if that is not near the top in the real
game, train the world model, not the agent.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from agents.doom_env import FRAME_SKIP
from agents.dream.ranking import rank_policies
from agents.dream.training import DreamConfig, check_dreamable
from agents.policies import RandomPolicy
from agents.ppo import AgentError, load_agent
from agents.scripted import Hold, sweep
from worldmodel.checkpoint import CheckpointError, write_atomic
from worldmodel.cli.args import UserError, fail
from worldmodel.cli.validate import at_least, between, writable_file
from worldmodel.world_model import WorldModel


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a world model with game state")
    p.add_argument("--agents", type=Path, nargs="*", default=[], help="agent files to rank")
    p.add_argument(
        "--sweeps", type=int, nargs="*", default=[], help="blind sweeps, turning every N steps"
    )
    p.add_argument(
        "--hold", nargs="*", default=[], help="blind policies holding one action, e.g. noop"
    )
    p.add_argument(
        "--by",
        choices=("tics", "return"),
        help="what orders the policies (default: return where the scenario pays for kills)",
    )
    p.add_argument("--starts", type=int, default=48, help="real starts each policy plays from")
    p.add_argument("--dream-seeds", type=int, default=1, help="dreams per start (averaged)")
    # the dream's difficulty, as train.py --stage agent sets it (DreamConfig)
    p.add_argument("--temperature", type=float, default=1.0, help="of the frame codes")
    p.add_argument("--state-temperature", type=float, help="of the game state (default: as codes)")
    p.add_argument(
        "--state-change-odds",
        type=float,
        default=1.0,
        help="multiply the odds that the dreamed HEALTH changes in a step",
    )
    p.add_argument(
        "--passes", type=int, help="passes per dreamed frame (default: the world model's own)"
    )
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> str:
    at_least("--starts", args.starts, 1)
    at_least("--dream-seeds", args.dream_seeds, 1)
    at_least("--threads", args.threads, 1)
    between("--temperature", args.temperature, 0, 3)
    between("--state-temperature", args.state_temperature, 0, 3)
    between("--state-change-odds", args.state_change_odds, 0.01, 1000)
    at_least("--passes", args.passes, 1)
    if args.json is not None:  # before minutes of play, not after them
        writable_file("--json", args.json)
    for n in args.sweeps:
        at_least("--sweeps", n, 1)
    if not args.agents and not args.sweeps and not args.hold:
        raise UserError(
            "nothing to rank against random: pass --agents FILE ..., --sweeps N ... "
            "and/or --hold ACTION ..."
        )
    torch.set_num_threads(args.threads)
    model = WorldModel.load(args.checkpoint)
    check_dreamable(model)
    env, names = model.env, list(model.action_names)
    policies = {"random": lambda: RandomPolicy(len(names), seed=0)}
    for path in args.agents:
        load_agent(path, env)  # refuse a missing file or another env's agent before playing
        policies[str(path)] = lambda path=path: load_agent(path, env, seed=1)
    for n in args.sweeps:
        try:
            sweep(names, n)
        except ValueError as e:
            raise UserError(f"--sweeps: {e}") from None
        policies[f"sweep every {n}"] = lambda n=n: sweep(names, n)
    for action in args.hold:
        if action not in names:
            raise UserError(f"--hold {action}: not an action of {env} ({', '.join(names)})")
        index = names.index(action)
        policies[f"hold {action}"] = lambda a=index: Hold(a, len(names))
    dream = DreamConfig(
        temperature=args.temperature,
        state_temperature=args.state_temperature,
        state_change_odds=args.state_change_odds,
        passes=args.passes,
    )
    try:
        model.dreamer(1, dream.sampling(model))  # refuses passes this model cannot draw
    except ValueError as e:
        raise UserError(str(e)) from None
    by = args.by or ("return" if model.game.rules.kill_reward else "tics")
    ranking = rank_policies(
        model, policies, dream, args.starts, args.dream_seeds, by=by.replace("tics", "steps")
    )
    table = ranking.table(FRAME_SKIP)
    if args.json is not None:
        try:
            write_atomic(args.json, json.dumps(ranking.to_dict(FRAME_SKIP), indent=1))
        except OSError as e:  # the folder changed while it ran: the table is not lost
            print(table, flush=True)
            raise UserError(f"--json {args.json}: cannot write it ({e.strerror})") from None
    return table


def main(argv: list[str] | None = None) -> None:
    try:
        print(run(parse(argv)), flush=True)
    except (UserError, AgentError, CheckpointError) as e:
        fail(str(e))


if __name__ == "__main__":
    main()
