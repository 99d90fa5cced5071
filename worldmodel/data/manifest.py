"""``manifest.json``: what a dataset folder holds, how it was collected, and its split."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from worldmodel.data.episode import FORMAT_VERSION, READABLE_VERSIONS
from worldmodel.data.schema import check_fields
from worldmodel.data.splits import fallback_note, split_entries

MANIFEST = "manifest.json"
SPLITS = ("train", "val", "test")
SPLIT_RULE = (
    "episode index mod 10: 0-7 train, 8 val, 9 test (8:1:1, as in the paper); with fewer than "
    "10 episodes the last one is val and test, the others train"
)


class DatasetError(ValueError):
    """A dataset folder that is missing, incompatible, or not what the caller asked for."""


def split_of(index: int) -> str:
    """The split of episode ``index``: deterministic, and stable as a dataset grows."""
    r = index % 10
    return "train" if r < 8 else ("val" if r == 8 else "test")


@dataclass
class EpisodeEntry:
    index: int
    file: str
    seed: int
    length: int
    ret: float
    terminated: bool
    truncated: bool
    behaviour: str = ""  # which policy played it (a name of the collection's mixture)
    end_reason: str = ""  # death, timeout or goal (empty in version 1 datasets)


@dataclass
class Manifest:
    """Everything a reader needs to interpret the episode files, without opening them."""

    env: str
    action_names: list[str]
    buttons: list[str]
    policy: str
    epsilon: float
    sticky_mean: float
    seed: int
    resolution: list[int] = field(default_factory=lambda: [64, 64])
    render_resolution: list[int] = field(default_factory=lambda: [120, 160])
    frame_skip: int = 4
    format_version: int = FORMAT_VERSION
    episodes: list[EpisodeEntry] = field(default_factory=list)
    action_counts: list[int] = field(default_factory=list)
    # Since version 2: the game variables recorded per frame and the scenario's reward rules
    # (living_reward, death_penalty, episode_timeout_tics, frame_skip), from its config file.
    variable_names: list[str] = field(default_factory=list)
    rules: dict[str, float] = field(default_factory=dict)

    @property
    def has_variables(self) -> bool:
        return self.format_version >= 2 and bool(self.variable_names)

    def split(self, name: str) -> list[EpisodeEntry]:
        """The episodes of split ``name``, or every episode for ``"all"`` (a held-out dataset
        is evaluated whole)."""
        if name == "all":
            return list(self.episodes)
        if name not in SPLITS:
            raise DatasetError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)} or all")
        return split_entries(self.episodes, name, split_of)

    def split_note(self, root: Path) -> str:
        """One line on how a dataset too small for the index rule is split, else ""."""
        return fallback_note(self.episodes, split_of, root)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        steps = sum(e.length for e in self.episodes)
        out["counts"] = {
            "episodes": len(self.episodes),
            "steps": steps,
            "frames": steps + len(self.episodes),
        }
        total = max(1, sum(self.action_counts))
        counts = zip(self.action_names, self.action_counts, strict=True)
        out["action_frequencies"] = {name: round(c / total, 4) for name, c in counts}
        out["split_rule"] = SPLIT_RULE
        out["split"] = {s: [e.index for e in self.split(s)] for s in SPLITS}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        keys = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in keys}
        kwargs["episodes"] = [EpisodeEntry(**e) for e in data.get("episodes", [])]
        return cls(**kwargs)


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Write ``root/manifest.json`` atomically."""
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest.to_json(), indent=1))
    os.replace(tmp, root / MANIFEST)


def load_manifest(root: Path | str, env: str | None = None) -> Manifest:
    """Read ``root/manifest.json``; if ``env`` is given, refuse another env's data."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise DatasetError(
            f"{root} has no {MANIFEST}; collect data first: python collect.py --out {root}"
        )
    try:
        data = json.loads(path.read_text())
        check_fields(Manifest, data, "")
        manifest = Manifest.from_json(data)
    except (ValueError, TypeError, KeyError) as e:  # JSONDecodeError is a ValueError
        raise DatasetError(f"{path} is not a valid manifest: {e}") from None
    if manifest.format_version not in READABLE_VERSIONS:
        raise DatasetError(
            f"{path} has data format version {manifest.format_version}; this code reads "
            f"versions {', '.join(map(str, READABLE_VERSIONS))}"
        )
    if env is not None and manifest.env != env:
        raise DatasetError(
            f"{root} holds {manifest.env!r} data, not {env!r}: point --data at a {env} dataset, "
            f"or use a {manifest.env} model (--env {manifest.env} where the tool has one)"
        )
    return manifest
