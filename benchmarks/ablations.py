"""The paper's ablations at small scale, one command each:

    python benchmarks/ablations.py attention --data data/health_gathering --steps 1500
    python benchmarks/ablations.py posemb --data data/health_gathering --steps 1500
    python benchmarks/ablations.py prior-size --data data/health_gathering --steps 1500

(the prior ablations share the tokenizer at --tokenizer, by default the cpu run's)

attention:   the cpu tokenizer with vs without axial attention (paper Table 2)
posemb:      the cpu prior with learned spatio-temporal vs sine-cosine positions (Table 4)
prior-size:  a smaller vs a larger prior than the cpu preset (paper: smaller is worse)

Every variant trains for the same number of steps from the same seed, into
runs/ablations/NAME/VARIANT, and is scored on the validation split; the table is printed and
written to runs/ablations/NAME/results.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from worldmodel.data import EpisodeStore
from worldmodel.training.loop import Runtime
from worldmodel.training.presets import TRAIN_PRESETS
from worldmodel.training.run import train_prior, train_tokenizer

VARIANTS = {
    "attention": {"with attention": [], "no attention": ["vqvae.attention=false"]},
    "posemb": {"learned t+h+w": [], "sine-cosine": ["prior.pos_emb=sincos"]},
    "prior-size": {
        "smaller (d=64, 2 layers)": ["prior.d_model=64", "prior.n_layers=2", "prior.n_heads=2"],
        "cpu preset (d=128, 4 layers)": [],
        "larger (d=192, 6 layers)": ["prior.d_model=192", "prior.n_layers=6", "prior.n_heads=4"],
    },
}


def fvd_of(real: np.ndarray, fake: np.ndarray, i3d: Path | None) -> float | None:
    if i3d is None:
        return None
    from worldmodel.fvd import I3DFeatures, fvd

    return fvd(real, fake, I3DFeatures(i3d))


def run_variant(which: str, overrides: list[str], out: Path, args: argparse.Namespace) -> dict:
    runtime = Runtime(torch.device("cpu"))
    t0 = time.perf_counter()
    stage = "vqvae" if which == "attention" else "prior"
    if stage == "prior":
        shutil.copy(args.tokenizer, out / "vqvae.pt")  # every variant dreams the same codes
        for cache in args.tokenizer.parent.glob("codes_*.npz"):  # reused if from this tokenizer
            shutil.copy(cache, out / cache.name)
    config = dataclasses.replace(
        TRAIN_PRESETS[stage][args.preset], steps=args.steps, eval_every=args.steps
    )
    fit = train_tokenizer if stage == "vqvae" else train_prior
    metrics = fit(
        args.env, args.data, out, args.preset, config, runtime, overrides, progress=not args.quiet
    )
    if stage == "vqvae":
        from worldmodel.checkpoint import load_checkpoint
        from worldmodel.config import VQVAEConfig, from_dict
        from worldmodel.evaluation.openloop import clip_starts
        from worldmodel.frames import to_model, to_uint8
        from worldmodel.tokenizer.vqvae import VQVAE

        blob = load_checkpoint(out / "vqvae.pt", "vqvae", args.env)
        model = VQVAE(from_dict(VQVAEConfig, blob["config"]))
        model.load_state_dict(blob["model"])
        model.eval()
        store = EpisodeStore(args.data, "val", env=args.env)
        clips = np.stack(
            [
                store.read(p, f, f + 16)["frames"]
                for p, f in clip_starts(store, args.clips, 16, seed=0)
            ]
        )
        recon = np.concatenate(
            [
                to_uint8(model.decode(model.encode(to_model(clips[i : i + 16]))))
                for i in range(0, len(clips), 16)
            ]
        )
        row = {k: metrics[k] for k in ("psnr", "ssim", "nmse", "perplexity")}
        row["fvd_reconstruction"] = fvd_of(clips, recon, args.i3d)
    else:
        from worldmodel.evaluation.openloop import open_loop
        from worldmodel.world_model import WorldModel

        model = WorldModel.load(out / "worldmodel.pt", args.env)
        ol = open_loop(
            model, EpisodeStore(args.data, "val", env=args.env), args.clips, context=4, horizon=16
        )
        row = {
            "bits_per_dim": metrics["bits_per_dim"],
            "open_loop_psnr": float(ol.psnr.mean()),
            "open_loop_ssim": float(ol.ssim.mean()),
            "fvd_dream": fvd_of(ol.real, ol.dream, args.i3d),
            "params_m": sum(p.numel() for p in model.prior.parameters()) / 1e6,
        }
    row["minutes"] = (time.perf_counter() - t0) / 60
    return row


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("which", choices=VARIANTS)
    p.add_argument("--env", default="health_gathering")
    p.add_argument("--data", type=Path, default=Path("data/health_gathering"))
    p.add_argument(
        "--tokenizer",
        type=Path,
        default=Path("runs/health_gathering-cpu/vqvae.pt"),
        help="the trained tokenizer the prior ablations share",
    )
    p.add_argument("--steps", type=int, default=1500, help="training steps per variant")
    p.add_argument("--preset", default="cpu", help="base preset (tiny for a smoke test)")
    p.add_argument("--clips", type=int, default=64, help="validation clips scored")
    p.add_argument("--i3d", type=Path, help="I3D weights, to add FVD")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("runs/ablations"))
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--only", nargs="*", help="run only the variants whose names start with these words"
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = {}
    for name, overrides in VARIANTS[args.which].items():
        if args.only and not any(name.startswith(word) for word in args.only):
            continue
        out = args.out / args.which / name.split(" ")[0]
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        print(f"== {args.which}: {name} ({', '.join(overrides) or 'preset'})", flush=True)
        rows[name] = run_variant(args.which, overrides, out, args)
    keys = list(next(iter(rows.values())))
    lines = [
        f"{args.which}: {args.steps} steps per variant, {args.clips} val clips, "
        f"threads {args.threads}",
        "",
        "| variant | " + " | ".join(keys) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    for name, row in rows.items():
        cells = [("-" if row[k] is None else f"{row[k]:.4g}") for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    (args.out / args.which / "results.md").write_text(text + "\n")
    (args.out / args.which / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
