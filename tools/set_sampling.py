"""Give a world model its own default sampling: how it dreams when nobody says otherwise.

    python tools/set_sampling.py --checkpoint worldmodel/assets/health_gathering.pt \
        --keep-likely 0.05 --copy-unchanged --top-p 0.8

play.py, evaluate.py and the dream env start from the checkpoint's sampling; their own flags
(``--temperature``, ``--top-p``, ...) still override each setting. Flags not given here keep
the checkpoint's current value; ``--reset`` starts from the plain defaults (temperature 1, all
codes, nothing kept: the paper's sampling). The file and the card beside it (``ENV.json``: the
new default, this command, the file's new sha256) are written together, atomically, after every
check; a damaged card stops the tool before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shlex
import sys
from pathlib import Path

from worldmodel.checkpoint import (
    CheckpointError,
    checkpoint_bytes,
    load_checkpoint,
    write_all_atomic,
)
from worldmodel.cli import validate
from worldmodel.cli.args import UserError, fail
from worldmodel.sampling.settings import USER_SETTINGS, SamplingConfig
from worldmodel.world_model import WorldModel


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="world model .pt to change")
    p.add_argument("--out", type=Path, help="write here instead of over --checkpoint")
    p.add_argument("--reset", action="store_true", help="start from the plain defaults")
    p.add_argument("--temperature", type=float, help="of the frame codes")
    p.add_argument("--top-p", type=float, help="nucleus sampling (1: all codes)")
    p.add_argument("--keep-likely", type=float, help="keep codes this likely to stay (0: off)")
    p.add_argument("--copy-unchanged", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--passes", type=int, help="passes per frame (reveal priors)")
    p.add_argument("--state-temperature", type=float, help="of the game-state tokens")
    return p.parse_args(argv)


def non_default(sampling: SamplingConfig) -> dict:
    """The settings of ``sampling`` that differ from :class:`SamplingConfig`'s defaults."""
    plain = SamplingConfig()
    return {
        f.name: getattr(sampling, f.name)
        for f in dataclasses.fields(SamplingConfig)
        if getattr(sampling, f.name) != getattr(plain, f.name)
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = args.out or args.checkpoint
    card_path = out.with_suffix(".json")
    try:
        validate.between("--temperature", args.temperature, 0, 3)
        validate.between("--top-p", args.top_p, 0.01, 1)
        validate.between("--keep-likely", args.keep_likely, 0, 1)
        validate.at_least("--passes", args.passes, 1)
        validate.between("--state-temperature", args.state_temperature, 0, 3)
        validate.writable_file("--out" if args.out else "--checkpoint", out)
        model = WorldModel.load(args.checkpoint)
        base = SamplingConfig() if args.reset else model.sampling
        changes = {k: getattr(args, k) for k in USER_SETTINGS if getattr(args, k) is not None}
        sampling = dataclasses.replace(base, **changes)
        model.dreamer(1, sampling)  # the dreamer refuses what this model cannot do
        blob = load_checkpoint(args.checkpoint, "worldmodel")
        blob["sampling"] = non_default(sampling)
        data = checkpoint_bytes(blob)
        files: dict[Path, bytes | str] = {out: data}
        # the card describes the file: it changes with it, in the same step, or not at all
        if card_path.exists():
            entry = validate.json_object("the card", card_path)
            if "sha256" in entry:
                entry["sha256"] = hashlib.sha256(data).hexdigest()
                entry["bytes"] = len(data)
            entry["default_sampling"] = {
                "settings": non_default(sampling),
                "command": shlex.join(["python", "tools/set_sampling.py", *(argv or sys.argv[1:])]),
            }
            files[card_path] = json.dumps(entry, indent=1) + "\n"
    except (CheckpointError, UserError, ValueError) as e:
        fail(str(e))
    try:
        write_all_atomic(files)
    except OSError as e:
        fail(f"writing {e.filename or out} failed ({e.strerror}); {out} is as it was")
    print(f"wrote {out}: dreams with {non_default(sampling) or 'the plain defaults'}")


if __name__ == "__main__":
    main()
