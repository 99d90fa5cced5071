"""How hard is the dream? Deaths and blind-policy lengths for several state_change_odds.

    python tools/dream_difficulty.py --checkpoint worldmodel/assets/take_cover.pt \
        --data data/tc2 --odds 1 10 30 100

An odds is ``--state-change-odds`` of ``train.py --stage agent``: it multiplies the odds that
the dreamed HEALTH changes in a step, whichever way (where pickups raise HEALTH, as in
health_gathering, higher odds bring more of them too, and dreams may die less). Frames are
drawn in the model's own passes (``--passes``), as dream agents train. For each odds it prints,
under a progress bar, the share of dreams under random actions that die within 16/32/64 steps
of a recorded start, beside the share of the recorded episodes that did; the share of dreams
started k steps before a recorded death (held-out split, recorded actions) that die by then;
and how many steps the dream lasts under blind policies (see agents/dream/difficulty.py). Pick
the odds whose deaths match the recording, come where the recording's came, and whose blind
policies rank as in the real game (tools/scripted_take_cover.py for take_cover).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from agents.dream import difficulty as dd
from worldmodel.checkpoint import CheckpointError
from worldmodel.cli.args import UserError, fail
from worldmodel.cli.progress import progress_bar
from worldmodel.cli.validate import at_least, between, existing_file, one_of
from worldmodel.data import DatasetError, load_manifest
from worldmodel.data.manifest import SPLITS
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.world_model import WorldModel

HORIZONS = (16, 32, 64)
AHEAD = (1, 2, 4, 8)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a world model with game state")
    p.add_argument("--data", required=True, help="a dataset folder of the model's env")
    p.add_argument("--split", default="train", help="the split dreams start from")
    p.add_argument("--check-split", default="val", help="the split of the imminent-death check")
    p.add_argument(
        "--odds",
        type=float,
        nargs="+",
        default=[1.0, 10.0, 30.0, 100.0],
        help="state_change_odds to measure: each multiplies the odds that the dreamed HEALTH "
        "changes in a step, any change (a hit, a death, but also a pickup: in "
        "health_gathering, more medkits can make dreams die less)",
    )
    p.add_argument("--temperature", type=float, default=1.0, help="of the frame codes")
    p.add_argument("--state-temperature", type=float, help="of the game state (default: as codes)")
    p.add_argument("--top-p", type=float, help="nucleus sampling of the codes (default: all)")
    p.add_argument(
        "--keep-likely", type=float, help="keep codes at least this likely to stay (default: off)"
    )
    p.add_argument(
        "--passes",
        type=int,
        help="passes per dreamed frame (default: the world model's own, as dream agents train)",
    )
    p.add_argument("--dreams", type=int, default=48, help="dreams per figure")
    p.add_argument("--max-steps", type=int, default=300, help="blind-policy dreams end here")
    p.add_argument("--no-blind", action="store_true", help="skip the blind policies (slowest)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quiet", action="store_true", help="no progress")
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    for odds in args.odds:
        between("--odds", odds, 0.01, 1000)
    between("--temperature", args.temperature, 0, 3)
    between("--state-temperature", args.state_temperature, 0, 3)
    between("--top-p", args.top_p, 0.01, 1)
    between("--keep-likely", args.keep_likely, 0, 1)
    at_least("--passes", args.passes, 1)
    at_least("--dreams", args.dreams, 1)
    at_least("--max-steps", args.max_steps, 1)
    at_least("--threads", args.threads, 1)
    one_of("--split", args.split, (*SPLITS, "all"))
    one_of("--check-split", args.check_split, (*SPLITS, "all"))
    existing_file("--checkpoint", Path(args.checkpoint))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        check_args(args)
        torch.set_num_threads(args.threads)
        model = WorldModel.load(args.checkpoint)
        if model.game.health_index is None:
            raise UserError(f"{args.checkpoint} carries no HEALTH: its dream cannot end")
        args.passes = args.passes or model.sampling.passes or model.default_passes
        model.dreamer(1, SamplingConfig(passes=args.passes))  # refuses what it cannot draw
        data_env = load_manifest(args.data).env
        if data_env != model.env:
            raise UserError(
                f"{args.data} holds {data_env!r} data but {args.checkpoint} dreams "
                f"{model.env!r}: pass --data a dataset of {model.env!r}"
            )
        context = dd.context_frames(model, args.data)
        real = dd.recorded_deaths_within(args.data, args.split, model.env, context, HORIZONS)
        measure(args, model, real)
    except (UserError, CheckpointError, DatasetError, ValueError) as e:
        fail(str(e))


def measure(args: argparse.Namespace, model: WorldModel, real: np.ndarray) -> None:
    """Print each figure as it is measured, under a progress bar over all of them."""
    blind = dd.blind_policies(model.action_names)
    policies = {} if args.no_blind else blind
    bar = progress_bar(
        len(args.odds) * (3 + len(policies)), "dream difficulty", "figures", not args.quiet
    )
    say = getattr(bar, "write", print)  # a tqdm bar keeps its line under what is printed

    def done(what: str) -> None:
        bar.update(1)
        bar.set_postfix(last=what)

    ks = "/".join(map(str, HORIZONS))
    shares = " ".join(f"{x:.2f}" for x in real)
    say(f"recorded episodes ({args.split}) that died within {ks} steps: {shares}")
    try:
        for odds in args.odds:
            sampling = SamplingConfig(
                temperature=args.temperature,
                state_temperature=args.state_temperature,
                state_change_odds=odds,
                top_p=args.top_p,
                keep_likely=args.keep_likely,
                passes=args.passes,
            )
            steps, died = dd.dream_runs(
                model, args.data, sampling, blind["random"], args.dreams, max(HORIZONS)
            )
            shares = " ".join(f"{np.mean(died & (steps <= k)):.2f}" for k in HORIZONS)
            done(f"odds {odds:g}, random actions")
            say(f"odds {odds:g}: dreams (random actions) that died within {ks} steps: {shares}")
            for event in ("hit", "death"):
                soon = dd.imminent(model, args.data, args.check_split, sampling, AHEAD, event)
                shares = "  ".join(f"k={k}: {x:.2f}" for k, x in zip(AHEAD, soon, strict=True))
                done(f"odds {odds:g}, recorded {event}s")
                say(f"  started k steps before a recorded {event}, dreamed it on time: {shares}")
            for name, policy in policies.items():
                steps, _ = dd.dream_runs(
                    model, args.data, sampling, policy, args.dreams, args.max_steps
                )
                done(f"odds {odds:g}, {name}")
                say(f"  {name}: {steps.mean():.1f} steps dreamed (cap {args.max_steps})")
    finally:
        bar.close()


if __name__ == "__main__":
    main()
