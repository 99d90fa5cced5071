"""Ship a dream-trained agent beside the real-trained one, with its scores inside.

    python tools/ship_agent.py --run runs/take_cover-cpu/agents/dream-t1.15 --env take_cover

Writes agents/assets/ENV_dream_ppo.pt (or --out): the run's agent.pt, loadable with
``agents.ppo.load_agent(path, ENV)``, its metadata extended with the run's real-game score
(score.json) and exploit check (exploit.json) when the run has them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from agents.ppo import SHIPPED_AGENTS, AgentError, load_agent, save_agent
from agents.scenarios import UnknownEnvError, get_scenario
from worldmodel.cli.args import fail


def ship(run: Path, env: str, out: Path) -> dict:
    """Copy ``run``'s agent to ``out`` with its scores; refuses an agent of another env."""
    agent = load_agent(run / "agent.pt", env)
    meta = dict(agent.meta)
    for name in ("score", "exploit"):
        path = run / f"{name}.json"
        if path.exists():
            kept = json.loads(path.read_text())
            meta[name] = {k: v for k, v in kept.items() if not isinstance(v, list)}
            if name == "score":  # the per-episode lists stay in the run; their summary ships
                returns, steps = np.array(kept["returns"]), np.array(kept["steps"])
                meta[name].update(
                    return_mean=float(returns.mean()),
                    return_std=float(returns.std()),
                    steps_mean=float(steps.mean()),
                )
    meta["shipped_from"] = str(run)
    save_agent(out, env, agent.policy, meta)
    return meta


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="an agent run folder (agent.pt)")
    p.add_argument("--env", required=True, help="the scenario the agent plays")
    p.add_argument("--out", type=Path, help="default: agents/assets/ENV_dream_ppo.pt")
    args = p.parse_args()
    out = args.out or SHIPPED_AGENTS / f"{args.env}_dream_ppo.pt"
    try:
        get_scenario(args.env)
        meta = ship(args.run, args.env, out)
    except (AgentError, UnknownEnvError) as e:
        fail(str(e))
    score = meta.get("score", {})
    digest = hashlib.sha256(out.read_bytes()).hexdigest()[:12]
    print(f"shipped {out} (sha256 {digest}), {meta.get('train_steps')} agent steps, {score}")


if __name__ == "__main__":
    main()
