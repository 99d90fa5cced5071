"""Tokenizer speed and memory: training step time and peak memory (batch 4 of 16x64x64 clips)
for the cpu and paper presets, and encode/decode time per latent step at batch 1.

    python benchmarks/bench_tokenizer.py --threads 2

Each measurement runs in a fresh subprocess so peak memory (max RSS on CPU, max allocated on
CUDA) belongs to that configuration alone. Prints Markdown rows for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def measure(preset: str, threads: int, device: str, steps: int) -> dict:
    import resource

    import numpy as np
    import torch

    from worldmodel.config import VQVAE_PRESETS
    from worldmodel.vqvae import VQVAE

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = VQVAE_PRESETS[preset]
    model = VQVAE(config).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    x = torch.rand(4, 3, 16, 64, 64, device=device) - 0.5
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")
    times = []
    for _ in range(steps + 2):
        t0 = time.perf_counter()
        with autocast:
            out = model(x)
            loss = out.losses["recon"] + out.losses["commit"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    model.eval()
    frames = torch.rand(1, 3, config.clip_len, 64, 64, device=device) - 0.5
    with torch.no_grad():
        enc, dec = [], []
        codes = model.encode(frames)
        for _ in range(10):
            t0 = time.perf_counter()
            model.encode(frames)
            enc.append((time.perf_counter() - t0) / codes.shape[1])
            t0 = time.perf_counter()
            if config.causal:
                model.decode_last(codes)
                dec.append(time.perf_counter() - t0)
            else:
                model.decode(codes)
                dec.append((time.perf_counter() - t0) / codes.shape[1])
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "step_s": float(np.median(times[2:])),
        "peak_mb": peak,
        "encode_ms_per_step": float(np.median(enc)) * 1e3,
        "decode_ms_per_step": float(np.median(dec)) * 1e3,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--presets", default="cpu,paper")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.threads, args.device, args.steps)))
        return
    print(
        f"device {args.device}, torch threads {args.threads}, batch 4 x 16 x 64 x 64, "
        f"median of {args.steps} steps"
    )
    print(
        "| preset | params (M) | train step (s) | peak memory (MB) | encode ms/latent step | "
        "decode ms/latent step (batch 1) |"
    )
    print("|---|---|---|---|---|---|")
    for preset in args.presets.split(","):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                preset,
                "--threads",
                str(args.threads),
                "--device",
                args.device,
                "--steps",
                str(args.steps),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"| {preset} | {r['params_m']:.2f} | {r['step_s']:.3f} | {r['peak_mb']:.0f} | "
            f"{r['encode_ms_per_step']:.2f} | {r['decode_ms_per_step']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
