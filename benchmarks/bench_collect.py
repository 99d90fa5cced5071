"""Collection throughput (frames/s) and bytes per stored frame, with the real collect() loop.

    python benchmarks/bench_collect.py --agent runs/agents/health_gathering/ppo.pt --episodes 150

Runs the PPO policy (with the default exploration) and a random policy for comparison, each
into a fresh temporary dataset, and prints a Markdown row per run for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import tempfile
import time
from pathlib import Path

from agents.collect.run import CollectConfig, collect
from agents.policies import RandomPolicy
from agents.ppo import load_agent


def run(label: str, policy, episodes: int, n_envs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "data"
        config = CollectConfig(episodes=episodes, n_envs=n_envs, policy=label)
        t0 = time.perf_counter()
        result = collect(out, config, policy, progress=False)
        seconds = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in out.glob("ep_*.h5"))
        frames = result.new_frames
        print(
            f"| {label} | {n_envs} | {episodes} | {frames} | {seconds:.1f} | "
            f"{frames / seconds:.0f} | {size / frames:.0f} |",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--agent", type=Path, default=Path("runs/agents/health_gathering/ppo.pt"))
    p.add_argument("--episodes", type=int, default=64)
    p.add_argument("--n-envs", type=int, default=24)
    args = p.parse_args()
    print(f"cores: {os.cpu_count()}; collect() runs the policy on 1 torch thread")
    print(
        "| policy | envs | episodes | frames | seconds (incl. env start) | frames/s | bytes/frame |"
    )
    print("|---|---|---|---|---|---|---|")
    run("ppo", load_agent(args.agent, "health_gathering", seed=0), args.episodes, args.n_envs)
    run("random", RandomPolicy(6, seed=0), args.episodes, args.n_envs)


if __name__ == "__main__":
    main()
