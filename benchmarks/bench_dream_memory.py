"""Resident memory of a long dream: does ``DreamEnv`` stay flat over 10,000 steps?

    python benchmarks/bench_dream_memory.py --steps 10000

Collects a small random-policy dataset into a temporary folder (the dreams start from its
windows), then steps ``DreamEnv`` with random actions on one torch thread, resetting when an
episode ends, and prints the resident set size (RSS) every ``--every`` steps. Growth is measured
from step ``--warmup`` (after the allocator and the caches have reached their working size) to
the last step; the figure to reach is < 5%.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from agents.collect.run import CollectConfig, collect
from agents.policies import RandomPolicy
from agents.scenarios import get_scenario
from worldmodel.dream.env import DreamEnv
from worldmodel.world_model import shipped_checkpoint


def rss_mb() -> float:
    """This process's resident set size now, in MB (Linux: /proc/self/statm)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", type=Path, help="world model (default: the shipped one)")
    p.add_argument("--env", default="health_gathering")
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--warmup", type=int, default=500, help="growth is measured from this step")
    p.add_argument("--every", type=int, default=500, help="print RSS every N steps")
    p.add_argument("--episodes", type=int, default=10, help="random episodes to start from")
    args = p.parse_args()
    torch.set_num_threads(1)
    checkpoint = args.checkpoint or shipped_checkpoint(args.env)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        config = CollectConfig(env=args.env, episodes=args.episodes, policy="random", n_envs=4)
        n_actions = len(get_scenario(args.env).actions)
        collect(data, config, RandomPolicy(n_actions, seed=0), progress=False)
        env = DreamEnv(checkpoint, data=data, env=args.env)
        rng = np.random.default_rng(0)
        env.reset(seed=0)
        print(f"{checkpoint}, {args.steps} steps, 1 torch thread; RSS at start {rss_mb():.1f} MB")
        print("| step | RSS MB | resets | s per 100 steps (mean so far) |")
        print("|---|---|---|---|")
        resets, marks = 0, {}
        t0 = time.perf_counter()
        for step in range(1, args.steps + 1):
            _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            if terminated or truncated:
                env.reset()
                resets += 1
            if step % args.every == 0 or step == args.warmup:
                marks[step] = rss_mb()
                pace = (time.perf_counter() - t0) / step * 100
                print(f"| {step} | {marks[step]:.1f} | {resets} | {pace:.2f} |", flush=True)
        env.close()
    start, end = marks[args.warmup], marks[args.steps]
    print(
        f"RSS {start:.1f} MB after {args.warmup} steps, {end:.1f} MB after {args.steps}: "
        f"growth {100 * (end - start) / start:+.2f}%"
    )


if __name__ == "__main__":
    main()
