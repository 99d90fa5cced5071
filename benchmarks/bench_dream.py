"""Batched dreaming speed: dream steps/s (frames decoded) at several batch sizes.

    python benchmarks/bench_dream.py --checkpoint worldmodel/assets/health_gathering.pt \
        --batches 1,16,64 --threads 2

Each batch size dreams ``--steps`` steps after a warm-up from real start windows (the model's
own, or random frames for a model without them), under random actions; the figure is the median
of per-step times, so one slow step on a noisy host does not move it. Prior and decoder times
are reported apart. The dream is drawn with the model's own sampling (as play and the dream env
draw it); ``--passes`` / ``--temperature`` override it, and the first line says what ran.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from worldmodel.dream.starts import DreamStarts
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.world_model import WorldModel


def start(model: WorldModel, batch: int, sampling: SamplingConfig, rng: np.random.Generator):
    dreamer = model.dreamer(batch, sampling, seed=0)
    if model.starts is not None and hasattr(dreamer, "start_codes"):
        bank = DreamStarts.from_dict(model.starts)
        pick = rng.integers(len(bank), size=batch)
        dreamer.start_codes(
            bank.codes[pick].astype(np.int64),
            bank.actions[pick].astype(np.int64),
            bank.variables[pick],
        )
    else:
        n = dreamer.history * model.frames_per_step
        frames = rng.integers(0, 256, (batch, n, 64, 64, 3), dtype=np.uint8)
        variables = np.full((batch, n, model.game.size), 80.0, np.float32)
        dreamer.start(
            frames, np.zeros((batch, n), np.int64), variables if model.game.size else None
        )
    return dreamer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--env", default="health_gathering")
    p.add_argument("--batches", default="1,16,64")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--passes", type=int, help="passes per frame (default: the model's own)")
    p.add_argument("--temperature", type=float, help="(default: the model's own)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = WorldModel.load(args.checkpoint, args.env)
    sampling = model.sampling
    if sampling.passes is None:
        sampling = dataclasses.replace(sampling, passes=model.default_passes)
    if args.passes is not None:
        sampling = dataclasses.replace(sampling, passes=args.passes)
    if args.temperature is not None:
        sampling = dataclasses.replace(sampling, temperature=args.temperature)
    rng = np.random.default_rng(0)
    n_actions = len(model.action_names)
    print(f"{args.checkpoint} ({model.arch} prior), torch threads {args.threads}")
    print(f"sampling: {sampling}")
    print("| batch | dream steps/s | ms per step | prior ms | decode ms | vs batch 1 |")
    print("|---|---|---|---|---|---|")
    base = None
    for batch in (int(b) for b in args.batches.split(",")):
        dreamer = start(model, batch, sampling, rng)
        times, prior, decode = [], [], []
        for i in range(args.steps + 3):
            t0 = time.perf_counter()
            dreamer.step(rng.integers(0, n_actions, (batch, model.frames_per_step)))
            if i >= 3:  # warm-up
                times.append(time.perf_counter() - t0)
                prior.append(dreamer.timing["prior"])
                decode.append(dreamer.timing["decode"])
        per_step = float(np.median(times))
        rate = batch / per_step
        base = base or rate
        print(
            f"| {batch} | {rate:.0f} | {per_step * 1e3:.1f} | {np.median(prior) * 1e3:.1f} | "
            f"{np.median(decode) * 1e3:.1f} | {rate / base:.1f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
