"""Cost of one agent decision, with and without memory (the last action beside the frame).

    python benchmarks/bench_agent.py --threads 1 --repeats 300

Times ``AgentPolicy.act`` of the shipped take_cover agents on random 64x64 frames: the
real-trained ``take_cover_ppo.pt`` (one frame) and the dream-trained ``take_cover_dream_ppo.pt``
(frame and last action), at batch 1 (play's TAB agent) and 8 (real-game scoring). Prints the
median and p95 milliseconds per call, measured in one run, interleaved so both share the noise.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from agents.ppo import SHIPPED_AGENTS, load_agent

ENV = "take_cover"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=300)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    agents = {
        name: load_agent(SHIPPED_AGENTS / f"{name}.pt", ENV, seed=0)
        for name in (f"{ENV}_ppo", f"{ENV}_dream_ppo")
    }
    rng = np.random.default_rng(0)
    print(f"torch threads {args.threads}, {args.repeats} calls each, interleaved")
    print("| agent | memory | batch | median ms | p95 ms |")
    print("|---|---|---|---|---|")
    for batch in args.batches:
        frames = rng.integers(0, 256, (batch, 64, 64, 3), dtype=np.uint8)
        times: dict[str, list[float]] = {name: [] for name in agents}
        for _ in range(args.repeats):
            for name, agent in agents.items():
                t0 = time.perf_counter()
                agent.act(frames)
                times[name].append((time.perf_counter() - t0) * 1000)
        for name, agent in agents.items():
            ms = np.array(times[name][10:])  # the first calls warm up
            print(
                f"| {name} | {'yes' if agent.memory else 'no'} | {batch} | "
                f"{np.median(ms):.3f} | {np.percentile(ms, 95):.3f} |"
            )


if __name__ == "__main__":
    main()
