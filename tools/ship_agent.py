"""Ship a dream-trained agent beside the real-trained one, with its scores inside.

    python tools/ship_agent.py --run runs/take_cover-cpu/agents/dream-t1.15 --env take_cover

Writes agents/assets/ENV_dream_ppo.pt (or --out): the run's agent.pt, loadable with
``agents.ppo.load_agent(path, ENV)``, its metadata extended with the run's real-game score
(score.json) and exploit check (exploit.json) when the run has them.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from agents.ppo import SHIPPED_AGENTS, AgentError, load_agent, save_agent
from agents.scenarios import UnknownEnvError, get_scenario
from worldmodel.cli import validate
from worldmodel.cli.args import UserError, fail


def ship(run: Path, env: str, out: Path) -> dict:
    """Copy ``run``'s agent to ``out`` with its scores; refuses an agent of another env, and
    checks everything (the run's files, ``out``) before writing."""
    if not run.is_dir():
        what = "a file, not a folder" if run.exists() else "no such folder"
        raise UserError(f"--run {run}: {what}; pass an agent run folder (it holds agent.pt)")
    if out.resolve() == (run / "agent.pt").resolve():
        raise UserError("--out must differ from the run's agent.pt: keep the original")
    validate.writable_file("--out", out)
    agent = load_agent(run / "agent.pt", env)
    meta = dict(agent.meta)
    for name in ("score", "exploit"):
        path = run / f"{name}.json"
        if path.exists():
            kept = validate.json_object(f"the run's {name}.json", path)
            meta[name] = {k: v for k, v in kept.items() if not isinstance(v, list)}
            if name == "score":  # the per-episode lists stay in the run; their summary ships
                meta[name].update(score_summary(kept, path))
    meta["shipped_from"] = str(run)
    save_agent(out, env, agent.policy, meta)
    return meta


def score_summary(score: dict, path: Path) -> dict[str, float]:
    """Mean and spread of a score.json's per-episode returns and steps."""
    try:
        returns = np.array(score["returns"], dtype=float)
        steps = np.array(score["steps"], dtype=float)
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{path} holds no per-episode returns and steps; score it again") from None
    if not len(returns) or not len(steps):
        raise UserError(f"{path} holds no episodes; score the agent again")
    return {
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "steps_mean": float(steps.mean()),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="an agent run folder (agent.pt)")
    p.add_argument("--env", required=True, help="the scenario the agent plays")
    p.add_argument("--out", type=Path, help="default: agents/assets/ENV_dream_ppo.pt")
    args = p.parse_args(argv)
    out = args.out or SHIPPED_AGENTS / f"{args.env}_dream_ppo.pt"
    try:
        get_scenario(args.env)
        meta = ship(args.run, args.env, out)
    except (AgentError, UnknownEnvError, UserError) as e:
        fail(str(e))
    except OSError as e:
        fail(f"writing {out} failed ({e.strerror}); nothing was written")
    score = meta.get("score", {})
    digest = hashlib.sha256(out.read_bytes()).hexdigest()[:12]
    print(f"shipped {out} (sha256 {digest}), {meta.get('train_steps')} agent steps, {score}")


if __name__ == "__main__":
    main()
