"""Encode a dataset once with a trained tokenizer; the prior then trains on the cached codes.

A split becomes one ``codes_SPLIT.npz`` (no pickle) holding, per latent step of every
episode: its codes, the actions that led into its frames, the summed reward of those steps,
and whether the episode ended there. The file records which tokenizer made it and is rebuilt
when the tokenizer changes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldmodel.data import EpisodeStore, load_manifest
from worldmodel.frames import to_model
from worldmodel.tokenizer.vqvae import VQVAE


@dataclass
class CodeSet:
    """Latent steps of all episodes of a split, concatenated; ``starts[e]`` is episode e's
    first step and ``lengths[e]`` its number of steps."""

    codes: np.ndarray  # (N, H', W') int16
    actions: np.ndarray  # (N, s) int16, -1 = none
    rewards: np.ndarray  # (N,) float32
    dones: np.ndarray  # (N,) bool: terminated on arriving at this step
    variables: np.ndarray  # (N, V) float32 game variables at the step's last frame (V = 0: none)
    starts: np.ndarray  # (E,) int64
    lengths: np.ndarray  # (E,) int64
    episodes: np.ndarray  # (E,) int64 dataset episode indices
    meta: dict

    def window_starts(self, steps: int) -> np.ndarray:
        """Global indices of every window of ``steps`` consecutive steps within an episode."""
        out = [
            s + np.arange(n - steps + 1)
            for s, n in zip(self.starts, self.lengths, strict=True)
            if n >= steps
        ]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def window(self, start: int, steps: int) -> dict[str, np.ndarray]:
        sl = slice(start, start + steps)
        return {
            "codes": self.codes[sl].astype(np.int64),
            "actions": self.actions[sl].astype(np.int64),
            "rewards": self.rewards[sl],
            "dones": self.dones[sl],
            "variables": self.variables[sl],
        }

    def episode_of(self, g: int) -> int:
        """Position (in ``starts``) of the episode holding global step ``g``."""
        return int(np.searchsorted(self.starts, g, side="right") - 1)


def step_arrays(item: dict[str, np.ndarray], s: int) -> dict[str, np.ndarray]:
    """Frame-aligned window arrays (see ``EpisodeStore.read``) -> per-latent-step arrays.

    Step j covers frames [j*s, (j+1)*s): its actions are the s actions into those frames,
    its reward their sum, and it is an ending if any of them ended the episode.
    """
    n = len(item["actions"]) // s * s
    out = {
        "actions": item["actions"][:n].reshape(-1, s),
        "rewards": item["rewards"][:n].reshape(-1, s).sum(1),
        "dones": item["terminated"][:n].reshape(-1, s).any(1),
    }
    if "variables" in item:
        out["variables"] = item["variables"][s - 1 : n : s].astype(np.float32)
    return out


@torch.no_grad()
def encode_episode(
    tokenizer: VQVAE, frames: np.ndarray, device: torch.device, chunk: int = 64
) -> np.ndarray:
    """Codes (T', H', W') of a whole episode's frames (T, H, W, 3), T a multiple of time_down.

    A causal tokenizer is run on overlapping chunks (each with enough earlier frames for an
    exact result); a non-causal one on independent clips of its training length.
    """
    c = tokenizer.config
    out = []
    if c.causal:
        ctx = tokenizer.encode_context
        step = chunk * c.time_down
        for start in range(0, len(frames), step):
            lo = max(0, start - ctx)
            x = to_model(frames[None, lo : start + step], device)
            z = tokenizer.encode_latents(x)[:, :, (start - lo) // c.time_down :]
            # sticky codes continue from the chunk before (nothing changes without stickiness)
            out.append(tokenizer.quantize(z, out[-1][None, -1] if out else None)[0])
    else:
        for start in range(0, len(frames) - c.clip_len + 1, c.clip_len):
            x = to_model(frames[None, start : start + c.clip_len], device)
            out.append(tokenizer.encode(x, out[-1][None, -1] if out else None)[0])
    return torch.cat(out).cpu().numpy().astype(np.int16)


def encode_split(
    tokenizer: VQVAE,
    data: Path,
    env: str,
    split: str,
    device: torch.device,
    progress: bool = True,
    episodes: int | None = None,
) -> CodeSet:
    """Codes of every episode of the split, or of ``episodes`` of them spread evenly over it."""
    store = EpisodeStore(data, split, env=env)
    positions = range(len(store))
    if episodes is not None and episodes < len(store):
        positions = np.unique(np.linspace(0, len(store) - 1, episodes).round().astype(int))
    s = tokenizer.config.time_down
    n_vars = len(store.manifest.variable_names) if store.manifest.has_variables else 0
    parts: dict[str, list[np.ndarray]] = {
        "codes": [],
        "actions": [],
        "rewards": [],
        "dones": [],
        "variables": [],
    }
    lengths, episodes = [], []
    for pos in tqdm(positions, desc=f"encode {split}", unit="ep", disable=not progress):
        entry = store.entries[int(pos)]
        n = (entry.length + 1) // s * s
        if not tokenizer.config.causal:
            n = n // tokenizer.config.clip_len * tokenizer.config.clip_len
        if n == 0:
            continue
        item = store.read(int(pos), 0, n)
        codes = encode_episode(tokenizer, item["frames"], device)
        steps = step_arrays(item, s)
        parts["codes"].append(codes)
        parts["actions"].append(steps["actions"].astype(np.int16))
        parts["rewards"].append(steps["rewards"].astype(np.float32))
        parts["dones"].append(steps["dones"])
        parts["variables"].append(steps.get("variables", np.zeros((len(codes), 0), np.float32)))
        lengths.append(len(codes))
        episodes.append(entry.index)
    store.close()
    lengths_a = np.array(lengths, dtype=np.int64)
    if not parts["variables"]:
        parts["variables"] = [np.zeros((0, n_vars), np.float32)]
    return CodeSet(
        **{k: np.concatenate(v) for k, v in parts.items()},
        starts=np.concatenate([[0], np.cumsum(lengths_a)[:-1]]).astype(np.int64),
        lengths=lengths_a,
        episodes=np.array(episodes, dtype=np.int64),
        meta={},
    )


def save_codes(path: Path, codes: CodeSet) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    arrays = {
        k: getattr(codes, k)
        for k in (
            "codes",
            "actions",
            "rewards",
            "dones",
            "variables",
            "starts",
            "lengths",
            "episodes",
        )
    }
    np.savez(tmp, **arrays, meta=np.array(json.dumps(codes.meta)))
    os.replace(tmp, path)


def load_codes(path: Path) -> CodeSet:
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k != "meta"}
        meta = json.loads(str(f["meta"]))
    return CodeSet(**arrays, meta=meta)


def codebook_fingerprint(tokenizer: VQVAE) -> str:
    """A short hash of the tokenizer's codebook: two trained tokenizers never share one."""
    codebook = tokenizer.quantizer.codebook.detach().float().cpu().numpy()
    return hashlib.sha1(codebook.tobytes()).hexdigest()[:16]


def cached_codes(
    tokenizer: VQVAE,
    tokenizer_id: dict,
    data: Path,
    env: str,
    split: str,
    out_dir: Path,
    device: torch.device,
    progress: bool = True,
) -> CodeSet:
    """The split's codes from ``out_dir``, encoding them first if missing or stale."""
    path = out_dir / f"codes_{split}.npz"
    entries = load_manifest(data, env).split(split)
    # Also rebuilt when the split's episodes change (more were collected), or when another
    # tokenizer of the same step and config (another run, copied in) holds other codes.
    tokenizer_id = {
        **tokenizer_id,
        "codebook": codebook_fingerprint(tokenizer),
        "episodes": len(entries),
        "steps": sum(e.length for e in entries),
    }
    if path.exists():
        try:
            codes = load_codes(path)
            if codes.meta == tokenizer_id:
                return codes
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable, from an older tokenizer or an older layout: encode again
    codes = encode_split(tokenizer, data, env, split, device, progress)
    codes.meta = tokenizer_id
    out_dir.mkdir(parents=True, exist_ok=True)
    save_codes(path, codes)
    return codes
