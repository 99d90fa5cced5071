"""Put a fine-tuned decoder into another checkpoint of the same tokenizer's codes.

    python tools/swap_decoder.py --decoder runs/decoder/decoder.pt \
        --into runs/my-prior/worldmodel.pt --out runs/my-prior/worldmodel-sharp.pt

--decoder is any checkpoint holding a tokenizer (a ``decoder`` stage checkpoint, or a world
model whose decoder you want); --into a worldmodel, prior or vqvae checkpoint. Only the
decoder (and post_quant) change; the prior and everything that makes the codes stay as they
are, and the swap is refused if the two tokenizers' encoders or codebooks differ.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.cli import validate
from worldmodel.cli.args import UserError, fail
from worldmodel.tokenizer.swap import TOKENIZER_KINDS, swap_decoder


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--decoder", type=Path, required=True, help="checkpoint with the new decoder")
    p.add_argument("--into", type=Path, required=True, help="worldmodel, prior or vqvae checkpoint")
    p.add_argument("--out", type=Path, required=True, help="where to write the result")
    args = p.parse_args(argv)
    try:
        for flag, path in (("--into", args.into), ("--decoder", args.decoder)):
            if args.out.resolve() == path.resolve():
                raise UserError(f"--out must differ from {flag}: keep the original")
        validate.writable_file("--out", args.out)
        target = load_checkpoint(args.into, ("worldmodel", "prior", "vqvae"))
        source = load_checkpoint(args.decoder, TOKENIZER_KINDS, target["env"])
        swapped = swap_decoder(target, source)
    except (CheckpointError, UserError) as e:
        fail(str(e))
    try:
        save_checkpoint(args.out, swapped)
    except OSError as e:
        fail(f"writing {args.out} failed ({e.strerror}); nothing was written")
    print(f"wrote {args.out}: {args.into.name} with the decoder of {args.decoder}")


if __name__ == "__main__":
    main()
