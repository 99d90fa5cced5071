"""PPO trained in the real game alone, scored like every agent: a quick screen of PPO settings.

    python tools/real_ppo.py --out runs/screen/r16n32 --action-repeat 16 --n-steps 32

A dream-trained agent can only be as good as PPO makes it with the same settings, and PPO in the
real game takes minutes where the dream takes tens of them. So a setting is worth a dream run
only if it does well here first. Trains (or with ``--resume`` continues) PPO in the real game,
then scores it over the 100 real episodes of every agent score (``agents.scoring``, fixed seeds)
and prints one JSON line: the settings, train minutes and tics survived (mean, std).
``--prev-action`` is on unless ``--no-prev-action``; the rest are :class:`agents.ppo.PPOConfig`'s
fields and defaults, as ``train.py --stage agent`` uses them.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from agents.doom_env import FRAME_SKIP
from agents.dream_training import AgentRun, EvalConfig, real_venv_factory, train_agent
from agents.ppo import AgentError, PPOConfig, load_agent
from agents.scenarios import UnknownEnvError, get_scenario
from agents.scoring import score_real
from worldmodel.cli import UserError, fail


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--env", default="take_cover")
    p.add_argument("--out", type=Path, required=True, help="the run's folder")
    p.add_argument("--agent-steps", type=int, default=200_000, help="env steps of training")
    p.add_argument("--agent-envs", type=int, default=16)
    p.add_argument("--action-repeat", type=int, default=PPOConfig.action_repeat)
    p.add_argument("--n-steps", type=int, default=PPOConfig.n_steps)
    p.add_argument("--n-epochs", type=int, default=PPOConfig.n_epochs)
    p.add_argument("--ent-coef", type=float, default=PPOConfig.ent_coef)
    p.add_argument("--gamma", type=float, default=PPOConfig.gamma)
    p.add_argument("--lr", type=float, default=PPOConfig.learning_rate)
    p.add_argument("--agent-seed", type=int, default=0)
    p.add_argument("--no-prev-action", action="store_true")
    p.add_argument("--episodes", type=int, default=100, help="real episodes scoring it")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    get_scenario(args.env)  # an unknown env: one line naming the known ones
    for flag in ("agent_steps", "agent_envs", "action_repeat", "n_epochs", "episodes", "threads"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be at least 1")
    if args.n_steps < 2:
        raise UserError("--n-steps must be at least 2")
    torch.set_num_threads(args.threads)
    config = PPOConfig(
        steps=args.agent_steps,
        n_envs=args.agent_envs,
        n_steps=args.n_steps,
        n_epochs=args.n_epochs,
        ent_coef=args.ent_coef,
        gamma=args.gamma,
        learning_rate=args.lr,
        seed=args.agent_seed,
        prev_action=not args.no_prev_action,
        action_repeat=args.action_repeat,
    )
    run = AgentRun(args.out, args.env, {"trained_in": "real game"})
    start = time.time()
    steps = train_agent(
        run, real_venv_factory(args.env, config.n_envs), config, EvalConfig(every=0), args.resume
    )
    minutes = (time.time() - start) / 60
    scores = score_real(load_agent(run.agent_path, args.env, seed=1), args.env, args.episodes)
    tics = scores.steps * FRAME_SKIP
    result = {
        "env": args.env,
        "ppo": asdict(config),
        "train_steps": steps,
        "train_minutes": round(minutes, 2),
        "episodes": args.episodes,
        "return_mean": float(scores.returns.mean()),
        "tics_mean": float(tics.mean()),
        "tics_std": float(tics.std()),
    }
    (args.out / "score.json").write_text(json.dumps(result, indent=1))
    return result


def main(argv: list[str] | None = None) -> None:
    try:
        result = run(parse(argv))
    except (UserError, AgentError, UnknownEnvError) as e:
        fail(str(e))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
