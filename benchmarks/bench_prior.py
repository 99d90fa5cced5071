"""Prior sampling speed: tokens/s with the KV cache vs recomputing the whole context, and
latent steps/s of dream rollouts at batch 1 and 16.

    python benchmarks/bench_prior.py --threads 2

The cache comparison uses the cpu preset's width and depth with a 2,048-token window (32 latent
steps of 8x8 codes), generating the tokens from position 1,984 to 2,047 both ways. Rollouts use
the cpu presets exactly (random weights: the cost of a step does not depend on them).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from worldmodel.config import PRIOR_PRESETS, VQVAE_PRESETS, prior_config_for
from worldmodel.prior.kv_cache import KVCache
from worldmodel.prior.raster import Prior
from worldmodel.sampling.raster import Dreamer
from worldmodel.tokenizer.vqvae import VQVAE


@torch.inference_mode()
def cache_vs_recompute(tokens: int = 64) -> tuple[float, float]:
    vq = VQVAE_PRESETS["cpu"]
    config = dataclasses.replace(prior_config_for(PRIOR_PRESETS["cpu"], vq, 6), steps=32)
    prior = Prior(config).eval()
    length = config.block_size
    seq = torch.randint(0, config.n_codes, (1, length))
    norms_all = prior.norm_params(
        prior.condition(torch.zeros(1, config.steps, 1, dtype=torch.long))
    )
    start = length - tokens
    # recompute: a full forward over the whole prefix for every new token
    t0 = time.perf_counter()
    for p in range(start, length):
        steps = p // config.tokens_per_step + 1
        inputs = torch.cat([torch.full((1, 1), prior.bos), seq[:, :p]], 1)
        pad = steps * config.tokens_per_step - inputs.shape[1]
        inputs = torch.cat([inputs, seq[:, :pad]], 1) if pad > 0 else inputs
        norms = [None if n is None else (n[0][:, :steps], n[1][:, :steps]) for n in norms_all]
        prior.run(inputs, 0, norms)
    recompute = tokens / (time.perf_counter() - t0)
    cache = KVCache(config.n_layers, 1, config.n_heads, length, config.d_model // config.n_heads)
    inputs = torch.cat([torch.full((1, 1), prior.bos), seq[:, :-1]], 1)
    step_norms = [None if n is None else (n[0][:, -1:], n[1][:, -1:]) for n in norms_all]
    prefix = start // config.tokens_per_step * config.tokens_per_step
    prior.run(
        inputs[:, :prefix],
        0,
        [
            None if n is None else (n[0][:, : prefix // 64], n[1][:, : prefix // 64])
            for n in norms_all
        ],
        None,
        cache,
    )
    positions = prior.position_table()
    for p in range(prefix, start):
        prior.decode_step(inputs[:, p : p + 1], p, step_norms, None, cache, positions)
    t0 = time.perf_counter()
    for p in range(start, length):
        prior.head(prior.decode_step(inputs[:, p : p + 1], p, step_norms, None, cache, positions))
    cached = tokens / (time.perf_counter() - t0)
    return cached, recompute


def rollout(batch: int, steps: int) -> float:
    vq = VQVAE(VQVAE_PRESETS["cpu"]).eval()
    prior = Prior(prior_config_for(PRIOR_PRESETS["cpu"], vq.config, 6)).eval()
    dreamer = Dreamer(vq, prior, batch, generator=torch.Generator().manual_seed(0))
    frames = np.zeros((batch, 4, 64, 64, 3), dtype=np.uint8)
    dreamer.start(frames, np.zeros((batch, 4), dtype=np.int64))
    for _ in range(4):
        dreamer.step(np.ones(batch, dtype=np.int64))
    t0 = time.perf_counter()
    for _ in range(steps):
        dreamer.step(np.ones(batch, dtype=np.int64))
    return steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=40, help="rollout latent steps to time")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads {args.threads}")
    cached, recompute = cache_vs_recompute()
    print(
        f"| tokens/s at 2,048 tokens | KV cache {cached:.0f} | recompute {recompute:.1f} | "
        f"speed-up {cached / recompute:.0f}x |",
        flush=True,
    )
    one = rollout(1, args.steps)
    many = rollout(16, max(8, args.steps // 4))
    print(
        f"| cpu preset rollouts (latent steps/s) | batch 1: {one:.1f} | batch 16: "
        f"{many:.2f} batched steps/s = {16 * many:.1f} dream steps/s "
        f"({16 * many / one:.1f}x) |"
    )


if __name__ == "__main__":
    main()
