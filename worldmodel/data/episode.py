"""One episode per HDF5 file: the on-disk format (documented in docs/DATA_FORMAT.md).

An episode of T steps holds T+1 frames: ``frames[0]`` is the reset observation and
``frames[t+1]`` the observation after ``actions[t]``. ``rewards[t]``, ``terminated[t]`` and
``truncated[t]`` belong to that same step. Since format version 2, ``variables[t]`` holds the
game variables (HEALTH, ...) at frame t, aligned like the frames, and the attribute
``end_reason`` says why the episode ended. Version 1 files (no variables) stay readable, for
frame-only training. Files are written to a temporary name and renamed, so a reader never sees
a half-written episode.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
EPISODE_GLOB = "ep_*.h5"
FRAME_CHUNK = 16  # frames per compressed HDF5 chunk: a 16-frame window touches 1–2 chunks


class CorruptEpisodeError(OSError):
    """An episode file that cannot be read or does not match the format."""


@dataclass
class Episode:
    """A whole episode in memory. Frames are (T+1, H, W, 3) uint8 RGB."""

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    attrs: dict[str, Any]
    variables: np.ndarray | None = None  # (T+1, V) float32 game variables; None in version 1

    @property
    def length(self) -> int:
        return len(self.actions)


def episode_filename(index: int) -> str:
    return f"ep_{index:06d}.h5"


def episode_index(path: Path) -> int:
    return int(path.stem.split("_")[1])


def write_episode(path: Path, episode: Episode) -> None:
    """Write ``episode`` to ``path`` atomically (temporary file, then rename)."""
    t = episode.length
    if episode.frames.shape[0] != t + 1 or episode.frames.dtype != np.uint8:
        raise ValueError(f"need {t + 1} uint8 frames for {t} steps, got {episode.frames.shape}")
    if episode.variables is None or episode.variables.shape[0] != t + 1:
        raise ValueError(f"need game variables for each of the {t + 1} frames")
    tmp = path.with_name(path.name + ".tmp")
    chunk = min(FRAME_CHUNK, t + 1)  # HDF5 refuses a chunk longer than a short episode
    chunks = _deflate_chunks(episode.frames, chunk)
    with h5py.File(tmp, "w") as f:
        frames = f.create_dataset(
            "frames",
            shape=episode.frames.shape,
            dtype=np.uint8,
            chunks=(chunk, *episode.frames.shape[1:]),
            compression="gzip",
            compression_opts=1,
        )
        for i, data in enumerate(chunks):
            frames.id.write_direct_chunk((i * chunk, 0, 0, 0), data)
        f.create_dataset("actions", data=episode.actions.astype(np.int16))
        f.create_dataset("rewards", data=episode.rewards.astype(np.float32))
        f.create_dataset("terminated", data=episode.terminated.astype(bool))
        f.create_dataset("truncated", data=episode.truncated.astype(bool))
        f.create_dataset("variables", data=episode.variables.astype(np.float32))
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["length"] = t
        for key, value in episode.attrs.items():
            f.attrs[key] = value
    os.replace(tmp, path)


def _deflate_chunks(frames: np.ndarray, chunk: int = FRAME_CHUNK) -> list[bytes]:
    """The frames as HDF5 gzip (zlib) chunks of ``chunk`` frames, the last one zero-padded.

    Compressing here rather than in HDF5's filter lets ``zlib`` release the GIL, so a writer
    thread compresses while the collector steps games. zlib's Adler-32 checksum makes damaged
    chunks fail to decompress, so corruption is still detected on read.
    """
    out = []
    for start in range(0, len(frames), chunk):
        block = frames[start : start + chunk]
        if len(block) < chunk:
            pad = np.zeros((chunk - len(block), *frames.shape[1:]), dtype=np.uint8)
            block = np.concatenate([block, pad])
        out.append(zlib.compress(np.ascontiguousarray(block).tobytes(), 1))
    return out


def _attrs(f: h5py.File) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in f.attrs.items():
        out[key] = value.item() if isinstance(value, np.generic) else value
    return out


def check_episode_file(f: h5py.File, name: str) -> int:
    """Validate an open episode file's structure; return its length T."""
    try:
        version = int(f.attrs["format_version"])
        t = int(f.attrs["length"])
        shapes = {
            k: f[k].shape for k in ("frames", "actions", "rewards", "terminated", "truncated")
        }
    except (KeyError, OSError, ValueError) as e:
        raise CorruptEpisodeError(f"{name}: not a complete episode file ({e})") from None
    if version not in READABLE_VERSIONS:
        raise CorruptEpisodeError(
            f"{name}: format version {version}; this code reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    if shapes["frames"][0] != t + 1 or any(shapes[k] != (t,) for k in shapes if k != "frames"):
        raise CorruptEpisodeError(f"{name}: array lengths do not match length={t}: {shapes}")
    if version >= 2:
        v = f["variables"].shape if "variables" in f else None
        if v is None or len(v) != 2 or v[0] != t + 1:
            raise CorruptEpisodeError(f"{name}: needs game variables (T+1, V), got {v}")
    return t


def open_episode(path: Path) -> h5py.File:
    """Open an episode file read-only, raising :class:`CorruptEpisodeError` if it is damaged."""
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise CorruptEpisodeError(f"{path.name}: cannot open ({e})") from None
    try:
        check_episode_file(f, path.name)
    except CorruptEpisodeError:
        f.close()
        raise
    return f


def read_episode(path: Path) -> Episode:
    """Read a whole episode (decompresses all its frames)."""
    with open_episode(path) as f:
        try:
            return Episode(
                frames=f["frames"][()],
                actions=f["actions"][()].astype(np.int64),
                rewards=f["rewards"][()],
                terminated=f["terminated"][()],
                truncated=f["truncated"][()],
                attrs=_attrs(f),
                variables=f["variables"][()] if "variables" in f else None,
            )
        except (OSError, ValueError) as e:
            raise CorruptEpisodeError(f"{path.name}: unreadable data ({e})") from None


def read_episode_attrs(path: Path) -> dict[str, Any]:
    """An episode's metadata without reading its frames."""
    with open_episode(path) as f:
        return _attrs(f)
