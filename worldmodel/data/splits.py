"""Which episodes of a dataset are train, val and test, also when there are only a few.

The rule is by episode index mod 10 (0-7 train, 8 val, 9 test: 8:1:1, as in the paper), so an
episode keeps its split as a dataset grows. A dataset too small for that rule to give every
split an episode (fewer than 10 episodes) would leave nothing to validate on, so there the
last episode is held out as both val and test and the others train; a single episode serves
all three. From the tenth episode on the index rule applies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

NAMES = ("train", "val", "test")


class _Indexed(Protocol):
    index: int


E = TypeVar("E", bound=_Indexed)


def _too_few(entries: Sequence[_Indexed], rule: Callable[[int], str]) -> bool:
    return bool(entries) and {rule(e.index) for e in entries} != set(NAMES)


def split_entries(entries: Sequence[E], name: str, rule: Callable[[int], str]) -> list[E]:
    """The entries of split ``name``: by ``rule`` (index -> split), or by the fallback."""
    if not _too_few(entries, rule):
        return [e for e in entries if rule(e.index) == name]
    ordered = sorted(entries, key=lambda e: e.index)
    if len(ordered) == 1 or name != "train":
        return ordered[-1:]
    return ordered[:-1]


def fallback_note(entries: Sequence[_Indexed], rule: Callable[[int], str], root: Path) -> str:
    """One line saying how a small dataset is split, or "" when the index rule applies."""
    if not _too_few(entries, rule):
        return ""
    last = max(e.index for e in entries)
    if len(entries) == 1:
        return (
            f"note: {root} has 1 episode: training, validating and testing on it "
            "(the 8:1:1 split needs 10 episodes)"
        )
    return (
        f"note: {root} has {len(entries)} episodes, too few for the 8:1:1 split (10 needed): "
        f"training on {len(entries) - 1}, holding out episode {last} for validation and test"
    )
