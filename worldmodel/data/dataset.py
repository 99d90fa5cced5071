"""Random access to windows of consecutive steps across a folder of episode files.

Only the chunks a window touches are decompressed, and at most ``max_open`` files are held
open, so memory stays bounded however large the dataset is.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from worldmodel.data.episode import CorruptEpisodeError, Episode, open_episode, read_episode
from worldmodel.data.manifest import DatasetError, EpisodeEntry, Manifest, load_manifest


class EpisodeStore:
    """The episodes of one split of a dataset folder, opened lazily.

    Files that are missing, damaged or do not hold what the manifest says (another length,
    frames of another size, an action outside the dataset's actions, another number of game
    variables) are reported by name and problem and skipped (``on_corrupt="skip"``) or refused
    (``on_corrupt="raise"``), here at construction, or (data damaged inside a chunk) at first
    read, so that a long training run never stops halfway because of one bad file.
    """

    def __init__(
        self,
        root: Path | str,
        split: str = "train",
        env: str | None = None,
        on_corrupt: str = "skip",
        max_open: int = 32,
    ) -> None:
        if on_corrupt not in ("skip", "raise"):
            raise ValueError(f"on_corrupt must be 'skip' or 'raise', not {on_corrupt!r}")
        self.root = Path(root)
        self.manifest: Manifest = load_manifest(self.root, env)
        self.on_corrupt = on_corrupt
        self.max_open = max_open
        self._open: OrderedDict[int, h5py.File] = OrderedDict()
        self.entries: list[EpisodeEntry] = []
        self.skipped: list[str] = []
        for entry in self.manifest.split(split):
            try:
                with open_episode(self.root / entry.file) as f:
                    check_against_manifest(f, entry, self.manifest)
            except (CorruptEpisodeError, FileNotFoundError) as e:
                self._report(str(e))
                continue
            self.entries.append(entry)
        if not self.entries:
            m = self.manifest
            why = f"all {len(self.skipped)} unreadable" if self.skipped else "none listed"
            raise DatasetError(
                f"{self.root} has no readable {split!r} episodes ({why}); collect more: python "
                f"collect.py --env {m.env} --policy {m.policy} --out {self.root} --episodes "
                f"{len(m.episodes) + 10}"
            )

    def _report(self, message: str) -> None:
        if self.on_corrupt == "raise":
            raise DatasetError(f"corrupt episode file in {self.root}: {message}")
        self.skipped.append(message)
        warnings.warn(f"skipping {message}", stacklevel=3)

    def __len__(self) -> int:
        return len(self.entries)

    def __getstate__(self) -> dict[str, Any]:  # open HDF5 handles cannot cross processes
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()
        return state

    def _file(self, pos: int) -> h5py.File:
        f = self._open.pop(pos, None)
        if f is None:
            f = open_episode(self.root / self.entries[pos].file)
            if len(self._open) >= self.max_open:
                self._open.popitem(last=False)[1].close()
        self._open[pos] = f
        return f

    def read(self, pos: int, start: int, stop: int) -> dict[str, np.ndarray]:
        """Frames ``start:stop`` of episode ``pos`` and the steps that led into them.

        Returns ``frames`` (L, H, W, 3) uint8 and, aligned to each frame, ``actions`` (L,)
        int64: the action taken just before that frame (-1 for an episode's first frame),
        ``rewards`` (L,) float32 received on that step, ``terminated``/``truncated`` (L,) bool:
        whether the episode ended on arriving at that frame, and (format version 2)
        ``variables`` (L, V) float32: the game variables at that frame.
        """
        f = self._file(pos)
        lo = max(start - 1, 0)
        frames = f["frames"][start:stop]
        pad = 1 if start == 0 else 0
        steps = {k: f[k][lo : stop - 1] for k in ("actions", "rewards", "terminated", "truncated")}
        fill = {"actions": -1, "rewards": 0.0, "terminated": False, "truncated": False}
        out = {"frames": frames}
        for key, value in steps.items():
            head = np.full(pad, fill[key], dtype=value.dtype)
            out[key] = np.concatenate([head, value])
        out["actions"] = out["actions"].astype(np.int64)
        if "variables" in f:
            out["variables"] = f["variables"][start:stop]
        return out

    def episode(self, pos: int) -> Episode:
        return read_episode(self.root / self.entries[pos].file)

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()


def check_against_manifest(f: h5py.File, entry: EpisodeEntry, manifest: Manifest) -> None:
    """Raise :class:`CorruptEpisodeError`, naming the file and the problem, unless the open
    episode file ``f`` (its structure already checked) holds what ``manifest`` describes: the
    entry's length, frames of the dataset's resolution, actions the dataset has, and one value
    per game variable. Reads the actions, never the frames."""
    name, t = entry.file, int(f.attrs["length"])
    if t != entry.length:
        raise CorruptEpisodeError(f"{name}: {t} steps, but the manifest lists {entry.length}")
    h, w = manifest.resolution
    shape, dtype = f["frames"].shape[1:], f["frames"].dtype
    if shape != (h, w, 3) or dtype != np.uint8:
        got = "x".join(map(str, shape))
        raise CorruptEpisodeError(
            f"{name}: frames of {got} {dtype}, the dataset's are {h}x{w}x3 uint8"
        )
    n = len(manifest.action_names)
    try:
        actions = f["actions"][()]
    except (OSError, ValueError) as e:  # a damaged chunk
        raise CorruptEpisodeError(f"{name}: unreadable actions ({e})") from None
    outside = np.flatnonzero((actions < 0) | (actions >= n))
    if len(outside):
        i = int(outside[0])
        raise CorruptEpisodeError(
            f"{name}: action {int(actions[i])} at step {i} is outside the dataset's {n} actions "
            f"(0-{n - 1}; {len(outside)} such step{'s' if len(outside) > 1 else ''})"
        )
    if manifest.has_variables and "variables" in f:
        v, want = f["variables"].shape[1], len(manifest.variable_names)
        if v != want:
            raise CorruptEpisodeError(
                f"{name}: {v} game variables per frame, the manifest names {want} "
                f"({', '.join(manifest.variable_names)})"
            )


class WindowDataset:
    """Every window of ``window`` consecutive frames in a split, as a map-style dataset.

    Item ``i`` is a dict of numpy arrays (see :meth:`EpisodeStore.read`), plus ``episode``
    (the episode index) and ``start`` (the first frame's index in it).
    """

    def __init__(self, store: EpisodeStore, window: int) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.store = store
        self.window = window
        counts = np.array([max(0, e.length + 2 - window) for e in store.entries])
        if counts.sum() == 0:
            raise DatasetError(f"no episode in {store.root} has {window} frames")
        self._ends = np.cumsum(counts)
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return int(self._ends[-1])

    def locate(self, i: int) -> tuple[int, int]:
        """(episode position in the store, start frame) of window ``i``."""
        pos = int(np.searchsorted(self._ends, i, side="right"))
        start = i - (int(self._ends[pos - 1]) if pos else 0)
        return pos, start

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        for _ in range(len(self.store)):
            pos, start = self.locate(i)
            if pos not in self._bad:
                try:
                    item = self.store.read(pos, start, start + self.window)
                except (OSError, CorruptEpisodeError) as e:
                    self._bad.add(pos)
                    self.store._report(f"{self.store.entries[pos].file}: unreadable ({e})")
                else:
                    item["episode"] = self.store.entries[pos].index
                    item["start"] = start
                    return item
            # a damaged episode: use the same offset in the next episode instead
            i = (i + int(self._ends[pos] - (self._ends[pos - 1] if pos else 0))) % len(self)
        raise DatasetError(f"no readable episode left in {self.store.root}")
