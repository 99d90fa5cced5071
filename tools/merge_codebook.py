"""Merge a trained tokenizer's codebook into fewer codes, for steadier codes on a fine grid.

    python tools/merge_codebook.py --checkpoint runs/pilotB16/vqvae.pt --codes 128 \
        --out runs/merged128/vqvae.pt

Writes a tokenizer checkpoint (kind vqvae) whose K codes are weighted k-means centres of the
old ones (worldmodel.tokenizer.merge); train a prior over it as over any tokenizer
(``train.py --stage prior --out runs/merged128``: the codes are encoded again, to the
nearest centre), and fine-tune its decoder with ``--stage decoder``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.cli import validate
from worldmodel.cli.args import UserError, fail
from worldmodel.tokenizer.merge import merge_codebook


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="a tokenizer (vqvae) checkpoint")
    p.add_argument("--codes", type=int, required=True, help="codes to keep (fewer than now)")
    p.add_argument("--out", type=Path, required=True, help="where to write the merged tokenizer")
    p.add_argument("--seed", type=int, default=0, help="seed of the k-means start")
    args = p.parse_args(argv)
    try:
        if args.out.resolve() == args.checkpoint.resolve():
            raise UserError("--out must differ from --checkpoint: keep the original")
        validate.writable_file("--out", args.out)
        blob = load_checkpoint(args.checkpoint, "vqvae")
        merged = merge_codebook(blob, args.codes, args.seed)
    except (CheckpointError, UserError, ValueError) as e:
        fail(str(e))
    try:
        save_checkpoint(args.out, merged)
    except OSError as e:
        fail(f"writing {args.out} failed ({e.strerror}); nothing was written")
    n = merged["merged_from"]["n_codes"]
    print(f"wrote {args.out}: {args.checkpoint.name} with its {n} codes merged into {args.codes}")


if __name__ == "__main__":
    main()
