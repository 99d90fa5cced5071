"""Score decoders of the same codes on the same held-out clips: PSNR, SSIM, reconstruction
FVD, and (with --world-model) the FVD of one set of dreams decoded by each.

    python tools/compare_decoders.py --data data/health_gathering --clips 256 \
        --i3d ../shared/data/i3d/i3d_kinetics400_tfhub_rgb.pt \
        --world-model worldmodel/assets/health_gathering.pt \
        --decoder shipped=worldmodel/assets/health_gathering.pt \
        --decoder gan=runs/decoder/decoder.pt --stills docs/media/decoder_stills.png

Each --decoder is NAME=CHECKPOINT (worldmodel, prior, vqvae or decoder); all must share one
encoder and codebook (refused otherwise). Clips are drawn as evaluate.py draws them (same
seed, same clips); a second draw (seed + 1) gives the real-vs-real FVD floor. The dreams are
evaluate.py's open-loop dreams (same clips, context, seeds and temperature), sampled once by
the world model's prior; every decoder then decodes the same dreamed codes. Prints Markdown
tables and writes OUT/decoders.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # scipy's sqrtm is much faster single-threaded

import argparse
import json
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from worldmodel.checkpoint import CheckpointError, load_checkpoint, write_all_atomic
from worldmodel.cli import validate
from worldmodel.cli.args import UserError, fail
from worldmodel.config import VQVAEConfig, from_dict
from worldmodel.data import DatasetError, EpisodeStore
from worldmodel.data.manifest import SPLITS
from worldmodel.evaluation.decoders import (
    DecoderScores,
    reconstructions,
    redecode,
    score_decoders,
    stills,
)
from worldmodel.evaluation.media import clip_grid, gif_bytes
from worldmodel.evaluation.openloop import open_loop, real_clips
from worldmodel.tokenizer.swap import TOKENIZER_KINDS, frozen_fingerprint, read_tokenizer
from worldmodel.tokenizer.vqvae import VQVAE
from worldmodel.world_model import WorldModel


def load_tokenizer(path: Path) -> tuple[VQVAE, str]:
    config, state, _ = read_tokenizer(load_checkpoint(path, TOKENIZER_KINDS))
    model = VQVAE(from_dict(VQVAEConfig, config))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval(), frozen_fingerprint(state)


def print_table(what: str, scores: dict[str, DecoderScores]) -> None:
    print(f"| decoder | {what} PSNR (dB) | {what} SSIM | detail / real | FVD {what} vs real |")
    print("|---|---|---|---|---|")
    for name, s in scores.items():
        fvd = f"{s.fvd:.1f}" if s.fvd is not None else "-"
        print(f"| {name} | {s.psnr:.2f} | {s.ssim:.3f} | {s.detail_ratio:.2f} | {fvd} |")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="dataset folder")
    p.add_argument("--decoder", action="append", required=True, metavar="NAME=CHECKPOINT")
    p.add_argument("--split", default="test", help="dataset split (default: %(default)s)")
    p.add_argument("--clips", type=int, default=256, help="clips per set (default: 256)")
    p.add_argument("--length", type=int, default=16, help="frames per clip (default: 16)")
    p.add_argument("--seed", type=int, default=0, help="clip draw (evaluate.py's default: 0)")
    p.add_argument("--i3d", type=Path, help="I3D weights; without them no FVD")
    p.add_argument("--world-model", type=Path, help="dream with this model's prior (open loop)")
    p.add_argument("--context", type=int, default=4, help="real frames before a dream")
    p.add_argument("--out", type=Path, default=Path("runs/compare-decoders"))
    p.add_argument("--stills", type=Path, help="PNG of real vs each decoder, a few frames")
    p.add_argument(
        "--gif", type=Path, help="GIF of real vs each decoder's dreams (needs --world-model)"
    )
    p.add_argument("--threads", type=int, help="torch CPU threads")
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> dict[str, Path]:
    """Every flag and path, before any work; returns the decoders' checkpoints by name."""
    validate.one_of("--split", args.split, (*SPLITS, "all"))
    validate.at_least("--clips", args.clips, 1)
    validate.at_least("--length", args.length, 2)
    validate.at_least("--seed", args.seed, 0)
    validate.at_least("--context", args.context, 1)
    validate.at_least("--threads", args.threads, 1)
    validate.existing_file("--i3d", args.i3d, validate.I3D_HINT)
    if args.i3d is not None and args.length < 9:
        raise UserError("FVD needs at least 9 frames per clip: use --length 16, or no --i3d")
    validate.existing_file("--world-model", args.world_model)
    paths: dict[str, Path] = {}
    for item in args.decoder:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--decoder expects NAME=CHECKPOINT, got {item!r}")
        if name in paths:
            raise UserError(f"--decoder {item}: the name {name!r} is given twice")
        validate.existing_file("--decoder", Path(path))
        paths[name] = Path(path)
    validate.writable_dir("--out", args.out)
    if args.stills is not None:
        if args.stills.suffix.lower() != ".png":
            raise UserError(f"--stills needs a .png file name, got {args.stills.name!r}")
        validate.writable_file("--stills", args.stills)
    if args.gif is not None:
        if args.gif.suffix.lower() != ".gif" or args.world_model is None:
            raise UserError("--gif needs a .gif file name and --world-model (it shows dreams)")
        validate.writable_file("--gif", args.gif)
    return paths


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    t0 = time.perf_counter()
    try:
        paths = check_args(args)
        if args.threads:
            torch.set_num_threads(args.threads)
        decoders, prints = {}, set()
        for name, path in paths.items():
            decoders[name], fingerprint = load_tokenizer(path)
            prints.add(fingerprint)
        if len(prints) > 1:
            raise UserError("the decoders belong to tokenizers with different codes")
        store = EpisodeStore(args.data, args.split)
        real = real_clips(store, args.clips, args.length, args.seed)
        recons = reconstructions(next(iter(decoders.values())), decoders, real)
        features = floor = real_features = None
        if args.i3d is not None:
            from worldmodel.fvd import I3DFeatures, feature_stats, frechet_distance

            features = I3DFeatures(args.i3d)
            real_features = features(real)
            other = real_clips(store, args.clips, args.length, args.seed + 1)
            floor = frechet_distance(*feature_stats(real_features), *feature_stats(features(other)))
        scores = score_decoders(real, recons, features, real_features)
        dream_scores: dict[str, DecoderScores] = {}
        dreams: dict[str, np.ndarray] = {}
        if args.world_model is not None:
            model = WorldModel.load(args.world_model)
            if frozen_fingerprint(model.tokenizer.state_dict()) not in prints:
                raise UserError("--world-model's tokenizer gives other codes than the decoders'")
            ol = open_loop(model, store, args.clips, args.context, args.length, seed=args.seed)
            steps = args.length // model.frames_per_step
            dreams = redecode(decoders, ol.codes, steps, previous=ol.context[:, -1])
            dream_real = features(ol.real) if features is not None else None
            dream_scores = score_decoders(ol.real, dreams, features, dream_real)
    except (CheckpointError, DatasetError, UserError, ValueError) as e:
        fail(str(e))
    result = {
        "split": args.split,
        "clips": args.clips,
        "frames": args.length,
        "real_vs_real_fvd": floor,
        "decoders": {
            n: {**vars(s), "checkpoint": d}
            for (n, s), d in zip(scores.items(), args.decoder, strict=True)
        },
        "dream": {n: vars(s) for n, s in dream_scores.items()},
        "seconds": time.perf_counter() - t0,
    }
    files: dict[Path, bytes | str] = {args.out / "decoders.json": json.dumps(result, indent=1)}
    if args.stills is not None:
        n = min(4, args.clips)
        picks = [(i * (args.clips // n), args.length - 1) for i in range(n)]
        image = stills(real, list(recons.values()), picks, scale=4)
        files[args.stills] = iio.imwrite("<bytes>", image, extension=".png")
    if args.gif is not None:
        rows = [ol.real[:4], *(v[:4] for v in dreams.values())]
        files[args.gif] = gif_bytes(clip_grid(rows))
    try:
        write_all_atomic(files)
    except OSError as e:
        fail(f"writing {e.filename or args.out} failed ({e.strerror})")
    print(f"{args.clips} {args.split} clips of {args.length} frames")
    print_table("reconstruction", scores)
    if floor is not None:
        print(f"| real vs real (second draw) | - | - | 1 | {floor:.1f} |")
    if dream_scores:
        print()
        print_table("dream", dream_scores)


if __name__ == "__main__":
    main()
