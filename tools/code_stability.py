"""How often a tokenizer's codes stay put from one frame to the next, and what "sticky"
quantisation (keep the previous code while it is nearly as close as the nearest) would buy.

    python tools/code_stability.py --checkpoint worldmodel/assets/health_gathering.pt \
        --data data/hg2_eval --split all --episodes 12 --frames 200 --tau 0 1 4 8

--checkpoint is a world model, a prior or a tokenizer (vqvae) checkpoint, e.g. one that
tools/merge_codebook.py wrote.

With --tau t a place keeps its previous code while that code's squared distance to the encoder
output is at most (1 + t) times the nearest code's (t = 0: plain nearest-code quantisation).
For each t it prints the reconstruction PSNR of the re-coded frames and the share of codes
unchanged across noop steps and across all steps (the measurement in docs/ARCHITECTURE.md,
"Sticky codes").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from worldmodel.checkpoint import CheckpointError, load_checkpoint
from worldmodel.cli.args import UserError, fail
from worldmodel.cli.validate import at_least, one_of
from worldmodel.data import DatasetError, EpisodeStore
from worldmodel.data.manifest import SPLITS
from worldmodel.evaluation.metrics import capped_psnr
from worldmodel.frames import to_model, to_uint8
from worldmodel.tokenizer.vqvae import VQVAE
from worldmodel.training.prior_stage import load_tokenizer
from worldmodel.world_model import WorldModel


def sticky_codes(distances: torch.Tensor, tau: float) -> torch.Tensor:
    """Codes (T, H, W) from squared distances (T, H, W, K) to every code: the nearest, except
    that a place keeps step t - 1's code while its distance is at most (1 + tau) x the nearest's."""
    nearest = distances.argmin(-1)
    codes = nearest.clone()
    for t in range(1, len(codes)):
        previous = distances[t].gather(-1, codes[t - 1, ..., None])[..., 0]
        best = distances[t].gather(-1, nearest[t, ..., None])[..., 0]
        codes[t] = torch.where(previous <= (1 + tau) * best, codes[t - 1], nearest[t])
    return codes


def measure(
    tokenizer: VQVAE, noop: int, store: EpisodeStore, episodes: int, frames: int, taus: list[float]
):
    """{tau: (reconstruction PSNR, unchanged share on noop steps, unchanged share overall)}."""
    codebook = tokenizer.quantizer.codebook
    sums = {tau: np.zeros(3) for tau in taus}
    counts = np.zeros(3)
    for pos in range(min(episodes, len(store))):
        episode = store.episode(pos)
        x = to_model(episode.frames[None, :frames])
        on_noop = torch.as_tensor(episode.actions[: x.shape[2] - 1] == noop)
        z = tokenizer.encode_latents(x)[0].permute(1, 2, 3, 0)  # (T, H, W, D)
        distances = (z[..., None, :] - codebook).pow(2).sum(-1)
        for tau in taus:
            codes = sticky_codes(distances, tau)
            recon = tokenizer.decode(codes[None])
            same = (codes[1:] == codes[:-1]).float().mean((1, 2))
            sums[tau] += [
                capped_psnr(to_uint8(recon)[0], episode.frames[: x.shape[2]]).mean(),
                same[on_noop].sum().item(),
                same.sum().item(),
            ]
        counts += [1, int(on_noop.sum()), len(same)]
    return {tau: tuple(s / np.maximum(counts, 1)) for tau, s in sums.items()}


def load_tokenizer_of(path: Path) -> tuple[VQVAE, str, list[str]]:
    """The tokenizer of a world model, prior or vqvae checkpoint, its env and action names."""
    blob = load_checkpoint(path, ("worldmodel", "prior", "vqvae"))
    if blob["kind"] != "vqvae":
        model = WorldModel.load(path)
        return model.tokenizer, model.env, list(model.action_names)
    tokenizer, _ = load_tokenizer(path, blob["env"], torch.device("cpu"))
    return tokenizer, blob["env"], list(blob["action_names"])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--checkpoint", type=Path, required=True, help="a world model, prior or vqvae (.pt)"
    )
    p.add_argument("--data", type=Path, required=True, help="a dataset folder")
    p.add_argument("--split", default="all", help="train, val, test or all")
    p.add_argument("--episodes", type=int, default=12)
    p.add_argument("--frames", type=int, default=200, help="first frames of each episode")
    p.add_argument("--tau", type=float, nargs="+", default=[0.0, 1.0, 4.0, 8.0])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    try:
        at_least("--episodes", args.episodes, 1)
        at_least("--frames", args.frames, 2)
        for tau in args.tau:
            at_least("--tau", tau, 0)
        at_least("--threads", args.threads, 1)
        one_of("--split", args.split, (*SPLITS, "all"))
        torch.set_num_threads(args.threads)
        tokenizer, env, actions = load_tokenizer_of(args.checkpoint)
        if "noop" not in actions:
            raise UserError(f"{env} has no noop action; this measures codes under noop")
        store = EpisodeStore(args.data, args.split, env=env)
    except (CheckpointError, DatasetError, UserError) as e:
        fail(str(e))
    results = measure(tokenizer, actions.index("noop"), store, args.episodes, args.frames, args.tau)
    print("| tau | reconstruction PSNR (dB) | codes unchanged, noop steps | all steps |")
    print("|---|---|---|---|")
    for tau, (psnr, noop, every) in results.items():
        print(f"| {tau:g} | {psnr:.2f} | {noop:.3f} | {every:.3f} |")


if __name__ == "__main__":
    main()
