"""The dataset format: one HDF5 file per episode plus ``manifest.json`` (docs/DATA_FORMAT.md)."""

from worldmodel.data.dataset import EpisodeStore, WindowDataset
from worldmodel.data.episode import (
    FORMAT_VERSION,
    CorruptEpisodeError,
    Episode,
    episode_filename,
    read_episode,
    write_episode,
)
from worldmodel.data.manifest import (
    MANIFEST,
    DatasetError,
    EpisodeEntry,
    Manifest,
    load_manifest,
    split_of,
    write_manifest,
)

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "CorruptEpisodeError",
    "DatasetError",
    "Episode",
    "EpisodeEntry",
    "EpisodeStore",
    "Manifest",
    "WindowDataset",
    "episode_filename",
    "load_manifest",
    "read_episode",
    "split_of",
    "write_episode",
    "write_manifest",
]
