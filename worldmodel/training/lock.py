"""One training process per run folder.

Two ``train.py`` processes writing the same ``--out`` (a resumed run started while the first
still runs, easy with background jobs) would overwrite each other's checkpoints. The run holds
an advisory lock on ``.train.lock`` in its folder while it trains; the kernel drops it when the
process ends, however it ends, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from worldmodel.cli.args import UserError

LOCK = ".train.lock"


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock for the block; a :class:`UserError` naming the holder if taken."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "unknown"
            raise UserError(
                f"another training process (pid {pid}) is writing {out}; wait for it to end "
                "or stop it (kill PID) before starting this one"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
