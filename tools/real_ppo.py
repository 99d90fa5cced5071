"""PPO trained in the real game alone, scored like every agent: a quick screen of PPO settings.

    python tools/real_ppo.py --out runs/screen/r16n32 --action-repeat 16 --n-steps 32

A dream-trained agent can only be as good as PPO makes it with the same settings, and PPO in the
real game takes minutes where the dream takes tens of them. So a setting is worth a dream run
only if it does well here first. Trains (or with ``--resume`` continues) PPO in the real game,
then scores it over the 100 real episodes of every agent score (``agents.scoring``, fixed seeds)
and prints one JSON line: the settings, train minutes and tics survived (mean, std).
Every :class:`agents.ppo.PPOConfig` field is a flag; the defaults are ``train.py --stage agent``'s
(200k steps, 16 games) with the last action shown (``--no-prev-action`` hides it).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from agents.doom_env import FRAME_SKIP
from agents.dream.training import AgentRun, EvalConfig, real_venv_factory, train_agent
from agents.ppo import AgentError, PPOConfig, load_agent
from agents.scenarios import UnknownEnvError, get_scenario
from agents.scoring import score_real
from worldmodel.checkpoint import write_atomic
from worldmodel.cli.args import UserError, add_dataclass_flags, dataclass_from_args, fail
from worldmodel.cli.validate import above, at_least, writable_dir

# train.py --stage agent's defaults where they differ from PPOConfig's; the last action shown
SCREEN = PPOConfig(steps=200_000, n_envs=16, prev_action=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--env", default="take_cover")
    p.add_argument("--out", type=Path, required=True, help="the run's folder")
    p.add_argument("--episodes", type=int, default=100, help="real episodes scoring it")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--threads", type=int, default=1)
    add_dataclass_flags(p, PPOConfig, base=SCREEN)  # --steps, --n-steps, --seed, ...
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    get_scenario(args.env)  # an unknown env: one line naming the known ones
    config = dataclass_from_args(PPOConfig, args, SCREEN)
    for flag in ("steps", "n_envs", "batch_size", "n_epochs", "action_repeat"):
        at_least(f"--{flag.replace('_', '-')}", getattr(config, flag), 1)
    at_least("--n-steps", config.n_steps, 2)
    above("--learning-rate", config.learning_rate, 0)
    at_least("--episodes", args.episodes, 1)
    at_least("--threads", args.threads, 1)
    writable_dir("--out", args.out)
    torch.set_num_threads(args.threads)
    run = AgentRun(args.out, args.env, {"trained_in": "real game"})
    start = time.time()
    steps = train_agent(
        run, real_venv_factory(args.env, config.n_envs), config, EvalConfig(every=0), args.resume
    )
    agent = load_agent(run.agent_path, args.env, seed=1)
    # the whole run's training time, across resumes (this process's if the agent lacks it)
    minutes = agent.meta.get("train_seconds", time.time() - start) / 60
    scores = score_real(agent, args.env, args.episodes)
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
        # per episode, so tools/ship_agent.py can ship the agent with its score
        "returns": scores.returns.tolist(),
        "steps": scores.steps.tolist(),
    }
    write_atomic(args.out / "score.json", json.dumps(result, indent=1))
    return result


def main(argv: list[str] | None = None) -> None:
    try:
        result = run(parse(argv))
    except (UserError, AgentError, UnknownEnvError) as e:
        fail(str(e))
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}), flush=True)


if __name__ == "__main__":
    main()
