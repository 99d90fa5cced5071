"""Blind scripted policies in the real take_cover game: how far sweeping alone gets.

    python tools/scripted_take_cover.py --episodes 20

Plays noop, holding left, and alternating left/right every N steps over the real-game seeds of
every agent score (agents.scoring), capped like them at 2,100 tics, and prints tics survived.
"""

from __future__ import annotations

import argparse

from agents.doom_env import make_env
from agents.scoring import EVAL_SEED, episode_cap, play_real
from agents.scripted import Hold, sweep
from worldmodel.cli.args import UserError, fail
from worldmodel.cli.validate import at_least

ENV = "take_cover"  # actions: noop, move_left, move_right


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--sweeps", type=int, nargs="*", default=[4, 10, 20, 30])
    args = p.parse_args(argv)
    try:
        at_least("--episodes", args.episodes, 1)
        for n in args.sweeps:
            at_least("--sweeps", n, 1)
    except UserError as e:
        fail(str(e))
    seeds = list(range(EVAL_SEED, EVAL_SEED + args.episodes))
    cap = episode_cap(ENV)
    env = make_env(ENV)
    skip, names = env.frame_skip, list(env.action_names)
    env.close()
    policies = {"noop": Hold(0, len(names)), "hold left": Hold(1, len(names))}
    policies |= {f"alternate every {n}": sweep(names, n) for n in args.sweeps}
    for name, policy in policies.items():
        scores, _ = play_real(policy, ENV, seeds, cap=cap, n_envs=2)
        tics = scores.steps * skip
        print(f"{name}: {tics.mean():.1f} ± {tics.std():.1f} tics survived", flush=True)


if __name__ == "__main__":
    main()
