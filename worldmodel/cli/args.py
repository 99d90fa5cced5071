"""Small helpers shared by the command-line entry points: dataclass-built flags, clean errors."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import sys
import types
import typing
from collections.abc import Iterator
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")


class UserError(Exception):
    """Bad input from the user: the entry point prints the message and exits with code 2."""


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with code 2 (no traceback)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def interrupted(message: str) -> NoReturn:
    """After Ctrl-C: print ``interrupted; message`` (what was kept, how to resume), exit 130."""
    start = "\n" if sys.stderr.isatty() else ""  # off the line a progress bar was drawing
    print(f"{start}interrupted; {message}", file=sys.stderr)
    raise SystemExit(130)


def _raise_interrupt(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second kill must not cut the cleanup short
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block a plain ``kill`` (SIGTERM, as job schedulers send) stops the program
    the way Ctrl-C does, so the same cleanup runs: ViZDoom games, which ignore SIGTERM, are
    closed instead of orphaned, and checkpoints and episodes in flight are saved or dropped."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _base_type(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def add_dataclass_flags(
    parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = (), base: Any = None
) -> None:
    """Add ``--field-name`` for each field of dataclass ``cls`` (help from ``metadata['help']``;
    the default it names is ``base``'s where given, the instance :func:`dataclass_from_args`
    will start from).

    Defaults are left as ``None`` so :func:`dataclass_from_args` can tell what the user set.
    """
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(cls.__name__)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = _base_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        if base is not None:
            default = getattr(base, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        else:
            default = f.default_factory()  # type: ignore[misc]
        help_text = f"{f.metadata.get('help', '')} (default: {default})"
        if tp is bool:
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            group.add_argument(flag, type=tp, default=None, metavar=f.name.upper(), help=help_text)


def dataclass_from_args(cls: type[T], args: argparse.Namespace, base: T | None = None) -> T:
    """An instance of ``cls``: ``base`` (or the defaults) with the flags the user gave applied."""
    obj = base if base is not None else cls()
    changes = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if getattr(args, f.name, None) is not None
    }
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
