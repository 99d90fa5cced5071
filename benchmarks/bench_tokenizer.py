"""Tokenizer speed and memory: training step time and peak memory (batch 4 of 16x64x64 clips)
for the cpu and paper presets, and encode/decode time per latent step at batch 1.

    python benchmarks/bench_tokenizer.py --threads 2
    python benchmarks/bench_tokenizer.py --decode --checkpoint worldmodel/assets/health_gathering.pt

``--decode`` times decoding the newest frame of each row, the way play and dreaming do:
``decode_last`` (re-runs the stream window) against a primed ``DecodeStream`` step, at batch 1
with 1 and 2 torch threads and at batch 64 with 2 threads, the two calls interleaved so that
the host's load falls on both alike. Each measurement runs in a fresh subprocess so peak
memory (max RSS on CPU, max allocated on CUDA) belongs to that configuration alone. Prints
Markdown rows for docs/BENCHMARKS.md.
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
    from worldmodel.tokenizer.vqvae import VQVAE

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


def measure_decode(checkpoint: str | None, preset: str, threads: int, batch: int, n: int) -> dict:
    import numpy as np
    import torch

    from worldmodel.checkpoint import load_checkpoint
    from worldmodel.config import VQVAE_PRESETS, VQVAEConfig, from_dict
    from worldmodel.tokenizer.stream import DecodeStream
    from worldmodel.tokenizer.swap import TOKENIZER_KINDS, read_tokenizer
    from worldmodel.tokenizer.vqvae import VQVAE

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if checkpoint:
        config, state, _ = read_tokenizer(load_checkpoint(checkpoint, TOKENIZER_KINDS))
        model = VQVAE(from_dict(VQVAEConfig, config))
        model.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        )
    else:
        model = VQVAE(VQVAE_PRESETS[preset])
    model.eval()
    c = model.config
    h = c.resolution // c.space_down
    history = model.stream_window + n + 2
    codes = torch.randint(0, c.n_codes, (batch, history, h, h))
    stream = DecodeStream(model, batch)
    stream.prime(codes[:, : model.stream_window])
    last, step = [], []
    with torch.no_grad():
        for j in range(model.stream_window, history):
            t0 = time.perf_counter()
            model.decode_last(codes[:, : j + 1])
            t1 = time.perf_counter()
            stream.step(codes[:, j])
            t2 = time.perf_counter()
            last.append(t1 - t0)
            step.append(t2 - t1)
    return {
        "decode_last_ms": float(np.median(last[2:])) * 1e3,
        "stream_ms": float(np.median(step[2:])) * 1e3,
        "frames_per_step": c.time_down,
    }


def run_child(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def decode_table(checkpoint: str | None, preset: str, n: int) -> None:
    source = checkpoint or f"{preset} preset, random weights"
    print(f"decode of the newest frame(s), {source}, median of {n} steps")
    print(
        "| batch | torch threads | decode_last ms | DecodeStream.step ms | speed-up | "
        "stream ms per frame |"
    )
    print("|---|---|---|---|---|---|")
    for batch, threads in ((1, 1), (1, 2), (64, 2)):
        flags = ["--child-decode", str(batch), "--threads", str(threads), "--steps", str(n)]
        flags += ["--presets", preset] + (["--checkpoint", checkpoint] if checkpoint else [])
        r = run_child(flags)
        per_frame = r["stream_ms"] / (batch * r["frames_per_step"])
        print(
            f"| {batch} | {threads} | {r['decode_last_ms']:.2f} | {r['stream_ms']:.2f} | "
            f"{r['decode_last_ms'] / r['stream_ms']:.1f}x | {per_frame:.2f} |",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--presets", default="cpu,paper")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--decode", action="store_true", help="time decode_last vs DecodeStream")
    p.add_argument("--checkpoint", help="--decode: the tokenizer to time (default: preset)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-decode", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.threads, args.device, args.steps)))
        return
    if args.child_decode:
        r = measure_decode(
            args.checkpoint, args.presets, args.threads, args.child_decode, args.steps
        )
        print(json.dumps(r))
        return
    if args.decode:
        decode_table(args.checkpoint, args.presets.split(",")[0], max(args.steps, 20))
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
