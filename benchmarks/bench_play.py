"""End-to-end play speed: key read -> dreamed frame on screen, the real play loop, headless.

    python benchmarks/bench_play.py --checkpoint worldmodel/assets/health_gathering.pt --steps 300
    python benchmarks/bench_play.py --checkpoint CKPT --configs dream:1,dream:1:keep \
        --temperature 0.5

Runs ``play.py``'s loop under the SDL dummy driver (drawing, scaling and HUD included) with a
random policy for each configuration in turn, and prints the median fps over all frames and
the median milliseconds per part. A configuration ending in ``:keep`` plays with
``--copy-unchanged`` (codes that did not change keep their pixels).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import argparse
from pathlib import Path

import numpy as np
import torch

from agents.play.loop import Controller, PlayOptions, run
from agents.play.session import PlaySession
from worldmodel.world_model import WorldModel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--env", default="health_gathering")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--configs",
        default="dream:1,dream:2,side-by-side:1",
        help="mode:threads pairs, each optionally :keep (copy unchanged pixels)",
    )
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    args = p.parse_args()
    model = WorldModel.load(args.checkpoint, args.env, args.device)
    print(
        f"{args.checkpoint}, {args.steps} steps per configuration, device {args.device}, "
        f"temperature {args.temperature:g}"
    )
    print(
        "| mode | torch threads | copy unchanged | frames | median fps | mean fps | p95 frame ms "
        "| prior ms | decode ms | draw ms | real game ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for item in args.configs.split(","):
        mode, threads, *rest = item.split(":")
        keep = rest == ["keep"]
        torch.set_num_threads(int(threads))
        session = PlaySession(args.env, mode, model, args.temperature, seed=0, copy_unchanged=keep)
        names = list(session.scenario.action_names)
        controller = Controller("random", len(names), names, 0, None)
        try:
            s = run(
                session,
                PlayOptions(headless=True, steps=args.steps, fps=0, device=args.device),
                controller,
            )
        finally:
            session.close()

        ms = {k: f"{np.median(v) * 1e3:.1f}" for k, v in s.parts.items() if v}
        p95 = np.percentile(s.frame_times, 95) * 1e3
        print(
            f"| {mode} | {threads} | {'yes' if keep else 'no'} | {s.frames} | "
            f"{s.median_fps():.1f} | {s.frames / s.seconds:.1f} | {p95:.1f} | "
            f"{ms.get('prior', '-')} | {ms.get('decode', '-')} | {ms.get('draw', '-')} | "
            f"{ms.get('real', '-')} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
