"""Progress that reads well where it lands: a tqdm bar on a terminal, plain lines in a log.

A bar redraws one line with carriage returns, which a log file or a pipe shows as nothing
useful (or nothing at all, for rich's bars) for many minutes. When stderr is not a terminal,
:class:`LineProgress` prints a plain line to stdout at the start, every ``every`` seconds and
at the end instead.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm


def to_terminal() -> bool:
    return sys.stderr.isatty()


class LineProgress:
    """The part of tqdm's interface the training loop and collection use, as log lines."""

    def __init__(
        self, total: int, desc: str, unit: str, initial: int = 0, every: float = 30.0
    ) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.every = every
        self.start, self.start_n = time.perf_counter(), initial
        self.postfix = ""
        self.last = -float("inf")
        self._line()

    def _line(self) -> None:
        self.last = time.perf_counter()
        elapsed = self.last - self.start
        done = self.n - self.start_n
        eta, left = "", self.total - self.n  # a last update may step past the total
        if done > 0 and left > 0:
            eta = f", about {left * elapsed / done / 60:.1f} min left"
        percent = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        print(
            f"{self.desc}: {self.n}/{self.total} {self.unit}{percent}, "
            f"{elapsed / 60:.1f} min{eta}{self.postfix}",
            flush=True,
        )

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.perf_counter() - self.last >= self.every:
            self._line()

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = "".join(f", {k} {v}" for k, v in items.items())

    def close(self) -> None:
        if self.last != float("inf"):  # a second close prints nothing
            self._line()
            self.last = float("inf")


def progress_bar(
    total: int, desc: str, unit: str, enabled: bool, initial: int = 0
) -> tqdm | LineProgress:
    """A tqdm bar on a terminal, plain lines elsewhere; a silent bar when not ``enabled``."""
    if enabled and not to_terminal():
        return LineProgress(total, desc, unit, initial)
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        disable=not enabled,
        dynamic_ncols=True,
    )
