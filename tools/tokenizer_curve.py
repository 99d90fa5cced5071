"""Score tokenizer checkpoints taken during training on the same held-out clips: reconstruction
PSNR, SSIM, detail (fine texture relative to real) and FVD against the CPU-minutes each had
trained, as one JSON and one plot (the tokenizer pilots of docs/EVALUATION.md).

    python tools/tokenizer_curve.py --data data/hg2_eval --split all --clips 64 \
        --i3d ../shared/data/i3d/i3d_kinetics400_tfhub_rgb.pt \
        --run "context 16=runs/snap/pilotA16_decoder_*.pt" --run "16x16=runs/snap/pilotB16_*.pt" \
        --baseline shipped=worldmodel/assets/health_gathering.pt --out runs/pilots

Each --run is NAME=GLOB of checkpoints of one training run (vqvae, decoder, prior or
worldmodel); the minutes are each checkpoint's ``metrics.cpu_minutes`` (CPU time of the run,
all threads: comparable on a shared machine), else ``--cpu-log``'s, else its wall minutes. A
run that fine-tunes another tokenizer (a decoder checkpoint) counts only its own minutes. A
tokenizer with a context decoder is scored as it reconstructs: painted step by step from the
codes alone. Clips are drawn as evaluate.py draws them; a second draw gives the floor.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # scipy's sqrtm is much faster single-threaded

import argparse
import glob
import json
from pathlib import Path

import torch

from worldmodel.checkpoint import CheckpointError, load_checkpoint, write_atomic
from worldmodel.cli.args import UserError, fail
from worldmodel.cli.validate import at_least, existing_file, writable_dir
from worldmodel.config import VQVAEConfig, from_dict
from worldmodel.data import DatasetError, EpisodeStore
from worldmodel.evaluation.decoders import reconstructions, score_decoders
from worldmodel.evaluation.openloop import real_clips
from worldmodel.tokenizer.swap import TOKENIZER_KINDS, read_tokenizer
from worldmodel.tokenizer.vqvae import VQVAE


def load(path: Path) -> tuple[VQVAE, int, float]:
    """The tokenizer in ``path``, its step, and the CPU-minutes its run had trained (the wall
    minutes of a run too old to record them: ``metrics.train_minutes``)."""
    blob = load_checkpoint(path, TOKENIZER_KINDS)
    config, state, _ = read_tokenizer(blob)
    model = VQVAE(from_dict(VQVAEConfig, config))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    # the whole run's clock where the checkpoint has one, else its last evaluation's session
    metrics = blob.get("clock") or blob.get("metrics") or {}
    minutes = float(metrics.get("cpu_minutes", metrics.get("train_minutes", float("nan"))))
    return model.eval(), int(blob.get("step", -1)), minutes


def cpu_log(path: Path | None) -> dict[tuple[str, int], float]:
    """(run, step) -> CPU-minutes of a run's process when its checkpoint of that step was
    copied (lines ``RUN STEP WALL_MINUTES CPU_SECONDS ...``, as a snapshot script logs them)."""
    out: dict[tuple[str, int], float] = {}
    if path is None:
        return out
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[3].isdigit():
            out[(parts[0], int(parts[1]))] = int(parts[3]) / 60
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="held-out dataset folder")
    p.add_argument("--split", default="all", help="dataset split (default: %(default)s)")
    p.add_argument("--run", action="append", default=[], metavar="NAME=GLOB")
    p.add_argument("--baseline", action="append", default=[], metavar="NAME=CHECKPOINT")
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--length", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--i3d", type=Path, required=True, help="I3D weights (FVD)")
    p.add_argument("--out", type=Path, required=True, help="folder for curve.json, curve.png")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument(
        "--cpu-log",
        type=Path,
        help="CPU seconds per (run folder, step) for checkpoints that do not record them",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs: dict[str, list[Path]] = {}
    for item in [*args.run, *args.baseline]:
        name, sep, pattern = item.partition("=")
        if not sep:
            fail(f"--run/--baseline expect NAME=PATH, got {item!r}")
        paths = sorted(Path(x) for x in glob.glob(pattern))
        if not paths:
            fail(f"{item}: no checkpoint matches {pattern!r}")
        runs[name] = paths
    try:
        existing_file("--i3d", args.i3d)
        at_least("--clips", args.clips, 2)
        at_least("--length", args.length, 9)  # FVD's I3D needs 9 frames
        writable_dir("--out", args.out)
        if args.cpu_log is not None:
            existing_file("--cpu-log", args.cpu_log)
    except UserError as e:
        fail(str(e))
    try:
        from worldmodel.fvd import I3DFeatures, feature_stats, frechet_distance

        store = EpisodeStore(args.data, args.split)
        real = real_clips(store, args.clips, args.length, args.seed)
        other = real_clips(store, args.clips, args.length, args.seed + 1)
        features = I3DFeatures(args.i3d)
        real_features = features(real)
        floor = frechet_distance(*feature_stats(real_features), *feature_stats(features(other)))
        points: dict[str, list[dict]] = {}
        logged = cpu_log(args.cpu_log)
        for name, paths in runs.items():
            for path in paths:
                model, step, minutes = load(path)
                run = path.name.rsplit("_", 2)[0]  # runs/snap/RUN_KIND_STEP.pt
                minutes = logged.get((run, step), minutes)
                recon = reconstructions(model, {name: model}, real)
                s = score_decoders(real, recon, features, real_features)[name]
                row = {"checkpoint": str(path), "step": step, "minutes": minutes, **vars(s)}
                points.setdefault(name, []).append(row)
                print(
                    f"{name:12s} {minutes:6.1f} min  PSNR {s.psnr:.2f}  SSIM {s.ssim:.3f}  "
                    f"detail {s.detail_ratio:.2f}  FVD {s.fvd:.1f}  ({path})",
                    flush=True,
                )
    except (CheckpointError, DatasetError, ValueError, FileNotFoundError) as e:
        fail(str(e))
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"clips": args.clips, "frames": args.length, "real_vs_real_fvd": floor, **points}
    write_atomic(args.out / "curve.json", json.dumps(result, indent=1))
    print(f"real vs real FVD ({args.clips} clips): {floor:.1f}")
    plot(points, floor, args.out / "curve.png", set(n.partition("=")[0] for n in args.baseline))


def plot(points: dict[str, list[dict]], floor: float, path: Path, baselines: set[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, rows in points.items():
        rows = sorted(rows, key=lambda r: r["minutes"])
        if name in baselines:
            for ax, key in zip(axes, ("fvd", "psnr"), strict=True):
                ax.axhline(rows[-1][key], ls="--", color="gray", lw=1)
                ax.annotate(name, (0, rows[-1][key]), fontsize=8, color="gray")
            continue
        xs = [r["minutes"] for r in rows]
        axes[0].plot(xs, [r["fvd"] for r in rows], "o-", label=name)
        axes[1].plot(xs, [r["psnr"] for r in rows], "o-", label=name)
    axes[0].axhline(floor, ls=":", color="k", lw=1)
    axes[0].annotate("real vs real", (0, floor), fontsize=8)
    axes[0].set(xlabel="CPU-minutes of training", ylabel="reconstruction FVD", yscale="log")
    axes[1].set(xlabel="CPU-minutes of training", ylabel="reconstruction PSNR (dB)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
