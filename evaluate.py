"""Evaluate a world model: python evaluate.py --env health_gathering --checkpoint PATH --data DIR
--i3d PATH/i3d_kinetics400_tfhub_rgb.pt --out DIR [--quick]

Writes DIR/report.md (tables, PSNR-vs-horizon and training-curve plots, real-vs-dream GIFs) and
DIR/metrics.json: tokenizer reconstruction, open-loop PSNR/SSIM per dreamed frame, FVD,
action-following (inverse dynamics on real vs dreamed transitions), reward and termination.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # scipy's sqrtm is much faster single-threaded

import argparse
import json
from pathlib import Path

import torch

from agents.scenarios import DEFAULT_ENV, UnknownEnvError, get_scenario
from worldmodel import validate
from worldmodel.checkpoint import CheckpointError
from worldmodel.cli import (
    UserError,
    add_dataclass_flags,
    dataclass_from_args,
    fail,
    interrupted,
    sigterm_as_interrupt,
)
from worldmodel.data import DatasetError, load_manifest
from worldmodel.evaluation.pipeline import EvalConfig, evaluate
from worldmodel.world_model import WorldModel


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--env", default=DEFAULT_ENV, help="scenario (default: %(default)s)")
    p.add_argument("--checkpoint", type=Path, help="worldmodel.pt (default: runs/ENV-cpu/)")
    p.add_argument("--data", type=Path, help="dataset folder (default: data/ENV)")
    p.add_argument("--i3d", type=Path, help="I3D weights for FVD (no download: pass the file)")
    p.add_argument(
        "--out", type=Path, help="report folder (default: next to the checkpoint, under runs/)"
    )
    p.add_argument("--quick", action="store_true", help="a small sample (16 clips)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_dataclass_flags(p, EvalConfig)
    return p.parse_args(argv)


def default_out(checkpoint: Path, quick: bool) -> Path:
    """Next to a checkpoint under runs/; for one elsewhere (the shipped model in the package
    folder), under runs/eval/: a report never lands among the installed files."""
    name = "eval-quick" if quick else "eval"
    if Path("runs").resolve() in checkpoint.resolve().parents:
        return checkpoint.parent / name
    return Path("runs") / "eval" / f"{checkpoint.stem}-{name}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    checkpoint = args.checkpoint or Path("runs") / f"{args.env}-cpu" / "worldmodel.pt"
    data = args.data or Path("data") / args.env
    out = args.out or default_out(checkpoint, args.quick)
    base = EvalConfig.quick() if args.quick else EvalConfig()
    config = dataclass_from_args(EvalConfig, args, base)
    with sigterm_as_interrupt():
        try:
            get_scenario(args.env)
            device = validate.evaluate_args(args, config, out)
            note = load_manifest(data, args.env).split_note(data)
            if note:
                print(note)
            if args.threads:
                torch.set_num_threads(args.threads)
            model = WorldModel.load(checkpoint, args.env, device)
            metrics = evaluate(
                model, data, out, args.i3d, config, not args.quiet, run_dir=checkpoint.parent
            )
        except (UnknownEnvError, CheckpointError, DatasetError, UserError, ValueError) as e:
            fail(str(e))
        except KeyboardInterrupt:
            interrupted(f"the report in {out} is written at the end: rerun to evaluate")
    summary = {
        "reconstruction_psnr": metrics["reconstruction"]["psnr"],
        "open_loop_psnr": metrics["open_loop"]["psnr_mean"],
        "fvd": metrics.get("fvd", {}).get("dream_vs_real"),
        "idm_real": metrics["action_following"]["idm_accuracy_real"],
        "idm_dream": metrics["action_following"]["idm_accuracy_dream"],
        "bits_per_dim": metrics["reward_termination"]["bits_per_dim"],
    }
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()}))
    print(f"report: {out / 'report.md'}")


if __name__ == "__main__":
    main()
