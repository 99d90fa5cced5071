"""What a finer code grid costs the frame prior: 8x8 codes (8x8-pixel patches, the shipped
grid) against 16x16 (4x4-pixel patches), the cpu preset's prior, random weights (the cost of a
step does not depend on them).

    python benchmarks/bench_grid.py --threads 1

Three cases: 8x8 codes, 16x16 codes one per token, and 16x16 codes in tokens of 2x2
(``frame.group=2``: 64 tokens a frame, as 8x8). For each: the prior's part of one dream step
at batch 1 (play) and at batch 64 (agents), in one pass with the ring cache, and one training
step (the cpu preset's batch of 8 windows of 32 blocks, forward + backward + AdamW). The
tokenizer's decode is not included (it is measured in bench_play / bench_dream). Medians over
the repeats, all cases in one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from worldmodel.config import FRAME_PRIOR_PRESETS, VQVAE_PRESETS, frame_prior_config_for
from worldmodel.game_state import GameState
from worldmodel.prior.frame import FramePrior
from worldmodel.sampling.frame import FrameDreamer
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.tokenizer.vqvae import VQVAE


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def grid_case(
    space_down: int, repeats: int, group: int = 1, train_batch: int = 8
) -> dict[str, float]:
    vq = dataclasses.replace(VQVAE_PRESETS["cpu"], space_down=space_down)
    tokenizer = VQVAE(vq).eval()
    game = GameState(("HEALTH",))
    config = frame_prior_config_for(FRAME_PRIOR_PRESETS["cpu"], vq, 6, game.vocab)
    config = dataclasses.replace(config, group=group, corrupt=0.0)
    prior = FramePrior(config).eval()
    side = vq.resolution // space_down
    out = {
        "grid": side,
        "group": group,
        "params_M": sum(p.numel() for p in prior.parameters()) / 1e6,
    }
    for batch in (1, 64):
        # no autograd, as in play: the ring cache's in-place writes would chain every call's graph
        with torch.inference_mode():
            dreamer = FrameDreamer(tokenizer, prior, game, batch, SamplingConfig(passes=1))
            codes = torch.randint(0, vq.n_codes, (batch, config.steps + 1, side, side))
            actions = np.zeros((batch, config.steps + 1), np.int64)
            dreamer.start_codes(codes, actions, np.full((batch, config.steps + 1, 1), 80.0))
            acts = torch.zeros(batch, 1, 1, dtype=torch.long)
            out[f"prior_ms_b{batch}"] = median_ms(lambda d=dreamer, a=acts: d._draw(a), repeats)
    prior.train()
    opt = torch.optim.AdamW(prior.parameters(), lr=1e-4)
    b, t = train_batch, 2 * config.steps

    def train_step() -> None:
        in_codes = torch.randint(0, vq.n_codes, (b, t, side, side))
        state = torch.randint(0, 201, (b, t, 1))
        out_ = prior(in_codes, state, torch.zeros(b, t, 1, dtype=torch.long), None,
                     (in_codes, state))  # fmt: skip
        opt.zero_grad()
        out_.loss.backward()
        opt.step()

    out["train_step_ms"] = median_ms(train_step, max(3, repeats // 10))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument(
        "--train-batch",
        type=int,
        default=8,
        help="windows per training step (default: the cpu preset's 8; 16x16 one code per token "
        "then needs over 20 GB: its attention spans 32 x 257 tokens; 1 fits in a few GB)",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"frame prior (cpu preset), torch threads {args.threads}, medians of {args.repeats}")
    train = f"train step ms ({args.train_batch} x 32 blocks)"
    print("| code grid (tokens of) | params (M) | prior ms, batch 1 | prior ms, batch 64 | "
          f"prior frames/s, batch 64 | {train} | train ms per window |")  # fmt: skip
    print("|---|---|---|---|---|---|---|", flush=True)
    rows = []
    for space_down, group in ((8, 1), (4, 1), (4, 2)):  # each row printed as soon as measured
        r = grid_case(space_down, args.repeats, group, args.train_batch)
        rows.append(r)
        print(
            f"| {r['grid']}x{r['grid']} ({r['group']}x{r['group']}) | {r['params_M']:.2f} | "
            f"{r['prior_ms_b1']:.1f} | {r['prior_ms_b64']:.1f} | {64e3 / r['prior_ms_b64']:.0f} | "
            f"{r['train_step_ms']:.0f} | {r['train_step_ms'] / args.train_batch:.0f} |",
            flush=True,
        )
    a = rows[0]
    for b in rows[1:]:
        print(
            f"16x16 ({b['group']}x{b['group']} tokens) / 8x8: prior at batch 1 "
            f"{b['prior_ms_b1'] / a['prior_ms_b1']:.1f}x, batch 64 "
            f"{b['prior_ms_b64'] / a['prior_ms_b64']:.1f}x, "
            f"training {b['train_step_ms'] / a['train_step_ms']:.1f}x"
        )


if __name__ == "__main__":
    main()
