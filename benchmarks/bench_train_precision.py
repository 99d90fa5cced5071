"""Training step time in fp32 and in bf16 autocast (``--precision bf16``) on the CPU, for the
cpu preset's tokenizer and frame prior as the runs of docs/EVALUATION.md train them (8 clips a
step; the grid of ``--space-down``: 4 gives the 16x16 codes of the sharp-dream line, whose prior
reads them in 2x2 tokens).

    python benchmarks/bench_train_precision.py --threads 1 --steps 8

The fp32 and bf16 steps alternate, so the host's load falls on both alike; each figure is the
median over ``--steps`` steps after two warm-up steps of each. bf16 needs a CPU with bf16 units
(``amx_bf16`` or ``avx512_bf16`` in /proc/cpuinfo; ``worldmodel.precision``); the script says
so and stops where there are none. Prints Markdown rows for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable


def tokenizer_step(space_down: int) -> tuple[Callable[[], float], str]:
    import torch

    from worldmodel.config import VQVAE_PRESETS
    from worldmodel.tokenizer.vqvae import VQVAE

    config = dataclasses.replace(VQVAE_PRESETS["cpu"], space_down=space_down)
    model = VQVAE(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4)
    x = torch.rand(8, 3, config.clip_len, 64, 64) - 0.5

    def step() -> float:
        out = model(x)
        loss = out.losses["recon"] + out.losses["commit"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    side = 64 // space_down
    return step, f"tokenizer, cpu preset, {side}x{side} codes, 8 clips of {config.clip_len} frames"


def prior_step(space_down: int) -> tuple[Callable[[], float], str]:
    import torch

    from worldmodel.config import FRAME_PRIOR_PRESETS, VQVAE_PRESETS, frame_prior_config_for
    from worldmodel.prior.frame import FramePrior

    vqvae = dataclasses.replace(VQVAE_PRESETS["cpu"], space_down=space_down)
    group = 2 if space_down == 4 else 1
    base = dataclasses.replace(FRAME_PRIOR_PRESETS["cpu"], group=group)
    config = frame_prior_config_for(base, vqvae, n_actions=4, state_vocab=(101,))
    model = FramePrior(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    b, t, side = 8, 2 * config.steps, config.height
    gen = torch.Generator().manual_seed(0)
    codes = torch.randint(0, config.n_codes, (b, t, side, side), generator=gen)
    state = torch.randint(0, 101, (b, t, 1), generator=gen)
    actions = torch.randint(0, 4, (b, t, config.actions_per_step), generator=gen)

    def step() -> float:
        out = model(codes, state, actions, targets=(codes, state))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        return float(out.loss.detach())

    return step, (
        f"frame prior, cpu preset, {side}x{side} codes in {group}x{group} tokens, "
        f"8 windows of {t} steps"
    )


def timed(step: Callable[[], float], bf16: bool) -> float:
    import torch

    from worldmodel.precision import autocast

    t0 = time.perf_counter()
    with autocast(torch.device("cpu"), "bf16" if bf16 else "fp32"):
        loss = step()
    if loss != loss:
        raise SystemExit("error: a training step gave NaN")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--space-down", type=int, default=4, choices=(4, 8))
    args = p.parse_args(argv)
    import torch

    from worldmodel.precision import cpu_bf16_units

    if not cpu_bf16_units():
        print("error: this CPU has no bf16 units (amx_bf16, avx512_bf16): nothing to compare")
        return 2
    torch.set_num_threads(args.threads)
    print(f"| model ({args.threads} thread(s)) | fp32 s/step | bf16 s/step | fp32 / bf16 |")
    print("|---|---|---|---|")
    for build in (tokenizer_step, prior_step):
        torch.manual_seed(0)
        step, name = build(args.space_down)
        times: dict[bool, list[float]] = {False: [], True: []}
        for i in range(args.steps + 2):
            for bf16 in (False, True):
                took = timed(step, bf16)
                if i >= 2:
                    times[bf16].append(took)
        fp32, bf16 = (statistics.median(times[k]) for k in (False, True))
        print(f"| {name} | {fp32:.3f} | {bf16:.3f} | {fp32 / bf16:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
