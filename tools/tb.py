"""Print a run's TensorBoard scalars: python tools/tb.py runs/NAME/tb/prior [tag-substring ...]"""

from __future__ import annotations

import argparse
from pathlib import Path

from worldmodel.cli.args import UserError, fail
from worldmodel.evaluation.report import read_scalars


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("log_dir", type=Path, help="a TensorBoard log folder (RUN/tb/STAGE)")
    p.add_argument("tags", nargs="*", help="print only tags holding one of these")
    args = p.parse_args(argv)
    try:
        if not args.log_dir.is_dir():
            what = "a file, not a folder" if args.log_dir.exists() else "no such folder"
            raise UserError(f"{args.log_dir}: {what}; pass a run's tb/STAGE folder")
        scalars = read_scalars(args.log_dir)
        if not scalars:
            raise UserError(f"{args.log_dir} holds no TensorBoard scalars")
    except UserError as e:
        fail(str(e))
    for tag, points in sorted(scalars.items()):
        if args.tags and not any(w in tag for w in args.tags):
            continue
        tail = points[-8:]
        print(f"{tag:32s} " + "  ".join(f"{s}:{v:.4g}" for s, v in tail))


if __name__ == "__main__":
    main()
