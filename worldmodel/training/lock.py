"""One training process per run folder.

Two ``train.py`` processes writing the same ``--out`` (a resumed run started while the first
still runs, easy with background jobs) would overwrite each other's checkpoints. A run holds an
advisory lock for its folder while it trains; the kernel drops it when the process ends,
however it ends, so a killed run never leaves a stale lock behind.

The lock file lives in the system's temporary folder, named by the run folder's resolved
path, not in the run folder: taking it creates nothing there (a run refused for bad input
changes nothing on disk), and it works for a folder that does not exist yet.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from worldmodel.cli.args import UserError


def lock_path(out: Path) -> Path:
    """Where the lock of run folder ``out`` lives."""
    key = hashlib.sha1(str(out.resolve()).encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / "worldmodel-train-locks" / f"{key}.lock"


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock for the block; a :class:`UserError` naming the holder if taken."""
    path = lock_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().split(" ", 1)[0].strip() or "unknown"
            raise UserError(
                f"another training process (pid {pid}) is writing {out}; wait for it to end "
                "or stop it (kill PID) before starting this one"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()} {out.resolve()}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
