"""Pick a frame prior's ``keep_likely`` on a validation split: teacher-forced one step under each
value, overall, on noop steps and on moving steps, beside copying the last real frame.

    python tools/keep_sweep.py --checkpoint runs/hg16/wm16.pt --data data/hg3 --split val \\
        --keep-likely 0.002 0.004 0.05

Every other setting is the model's own sampling (temperature, top-p, passes, copy_unchanged),
so the chosen value goes into the checkpoint with ``tools/set_sampling.py --keep-likely``.
A finer code grid wants a smaller value: with 256 codes a frame, a code of a still view that
the model gives its last value 1% of the probability is still redrawn (docs/EVALUATION.md,
"Keeping codes on a finer grid"). Each value is scored on the same samples with the same seed.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from worldmodel.checkpoint import CheckpointError
from worldmodel.cli.args import UserError, fail
from worldmodel.cli.validate import at_least, one_of
from worldmodel.data import DatasetError, EpisodeStore
from worldmodel.data.manifest import SPLITS
from worldmodel.evaluation.openloop import one_step
from worldmodel.world_model import WorldModel


def sweep(
    model: WorldModel,
    store: EpisodeStore,
    values: list[float],
    samples: int,
    context: int,
    seed: int,
) -> list[dict[str, float]]:
    """One row per value: mean one-step PSNR of the dream overall, on noop and on moving steps,
    and of copying the last real frame (the same for every row)."""
    noop = model.action_names.index("noop")
    rows = []
    for value in values:
        sampling = dataclasses.replace(model.sampling, keep_likely=value or None)
        one = one_step(model, store, samples, context, 32, seed, sampling)
        still = one.actions == noop
        row = {"keep_likely": value, "all": float(one.dream.mean()), "copy": float(one.copy.mean())}
        for name, sel in (("noop", still), ("moving", ~still)):
            row[name] = float(one.dream[sel].mean()) if sel.any() else float("nan")
            row[f"{name}_copy"] = float(one.copy[sel].mean()) if sel.any() else float("nan")
        row["noop_n"] = int(still.sum())
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="a frame-prior world model")
    p.add_argument("--data", type=Path, required=True, help="a dataset folder")
    p.add_argument("--split", default="val", help="train, val, test or all (default: val)")
    p.add_argument("--keep-likely", type=float, nargs="+", default=[0.002, 0.005, 0.02, 0.05],
                   help="values to score (0: off)")  # fmt: skip
    p.add_argument("--samples", type=int, default=128, help="one-step samples per value")
    p.add_argument("--context", type=int, default=7, help="real frames before each step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    try:
        for value in args.keep_likely:
            if not 0 <= value <= 1:
                raise UserError(f"--keep-likely must be in [0, 1] (0: off), got {value:g}")
        at_least("--samples", args.samples, 1)
        at_least("--context", args.context, 1)
        at_least("--threads", args.threads, 1)
        one_of("--split", args.split, (*SPLITS, "all"))
        torch.set_num_threads(args.threads)
        model = WorldModel.load(args.checkpoint)
        if model.arch != "frame":
            raise UserError(f"{args.checkpoint} has a {model.arch} prior; this is for frame priors")
        if "noop" not in model.action_names:
            raise UserError(f"{model.env} has no noop action; this scores still steps apart")
        store = EpisodeStore(args.data, args.split, env=model.env)
    except (CheckpointError, DatasetError, UserError) as e:
        fail(str(e))
    rows = sweep(model, store, args.keep_likely, args.samples, args.context, args.seed)
    first = rows[0]
    print(f"{args.checkpoint}, {args.data} {args.split}, {args.samples} samples, "
          f"{first['noop_n']} on noop; copy last frame: all {first['copy']:.2f}, "
          f"noop {first['noop_copy']:.2f}, moving {first['moving_copy']:.2f} dB")  # fmt: skip
    print("| keep_likely | one step (dB) | noop steps | moving steps |")
    print("|---|---|---|---|")
    for row in rows:
        cells = [f"{row['keep_likely']:g}"] + [f"{row[k]:.2f}" for k in ("all", "noop", "moving")]
        print("| " + " | ".join(cells) + " |")
    best = max(rows, key=lambda r: r["all"] if np.isfinite(r["all"]) else -np.inf)
    print(f"best one step: keep_likely {best['keep_likely']:g}")


if __name__ == "__main__":
    main()
