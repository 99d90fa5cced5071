"""End-to-end play speed: key read -> dreamed frame on screen, the real play loop, headless.

    python benchmarks/bench_play.py --checkpoint worldmodel/assets/health_gathering.pt --steps 300
    python benchmarks/bench_play.py --checkpoint CKPT --configs dream:1,dream:1:keep \
        --temperature 0.5

Runs ``play.py``'s loop under the SDL dummy driver (drawing, scaling and HUD included) with a
random policy for each configuration in turn, and prints the median fps over all frames and
the median milliseconds per part. Each configuration dreams with the model's own sampling
(``tools/set_sampling.py``); one ending in ``:keep`` adds ``--copy-unchanged`` (codes that did
not change keep their pixels), one ending in ``:plain`` uses the plain defaults instead (T = 1,
all codes, nothing kept; a reveal prior still draws in its passes).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from agents.play.loop import Controller, PlayOptions, run
from agents.play.session import PlaySession
from worldmodel.sampling.settings import SamplingConfig, sampling_label
from worldmodel.world_model import WorldModel


def describe(sampling: SamplingConfig) -> str:
    """``T1 p0.8 k0.05 + copy``: the sampling a configuration played with."""
    label = sampling_label(
        sampling.temperature, sampling.top_p, sampling.passes, sampling.keep_likely
    )
    return label + (" + copy" if sampling.copy_unchanged else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--env", default="health_gathering")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--configs",
        default="dream:1,dream:2,side-by-side:1",
        help="mode:threads pairs, each optionally :keep (copy unchanged pixels) or :plain",
    )
    p.add_argument("--temperature", type=float, help="sampling temperature (default: model's)")
    args = p.parse_args()
    model = WorldModel.load(args.checkpoint, args.env, args.device)
    temperature = "the model's" if args.temperature is None else f"{args.temperature:g}"
    print(
        f"{args.checkpoint}, {args.steps} steps per configuration, device {args.device}, "
        f"temperature {temperature}"
    )
    print(
        "| mode | torch threads | sampling | frames | median fps | mean fps | p95 frame ms "
        "| prior ms | decode ms | draw ms | real game ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for item in args.configs.split(","):
        mode, threads, *rest = item.split(":")
        keep, plain = rest == ["keep"], rest == ["plain"]
        torch.set_num_threads(int(threads))
        dreams = dataclasses.replace(model, sampling=SamplingConfig()) if plain else model
        session = PlaySession(
            args.env, mode, dreams, args.temperature, seed=0, copy_unchanged=True if keep else None
        )
        label = describe(session.sampling)
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
            f"| {mode} | {threads} | {label} | {s.frames} | "
            f"{s.median_fps():.1f} | {s.frames / s.seconds:.1f} | {p95:.1f} | "
            f"{ms.get('prior', '-')} | {ms.get('decode', '-')} | {ms.get('draw', '-')} | "
            f"{ms.get('real', '-')} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
