"""A trained world model in one object: tokenizer + prior + what env it dreams.

``worldmodel.pt`` (written after prior training, no optimizer state) and ``prior.pt`` (a
training checkpoint, which also carries its tokenizer) both load with :meth:`WorldModel.load`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.config import FramePriorConfig, PriorConfig, VQVAEConfig, from_dict
from worldmodel.game_state import GameState
from worldmodel.prior.frame import FramePrior
from worldmodel.prior.raster import Prior
from worldmodel.sampling.frame import FrameDreamer, default_passes
from worldmodel.sampling.raster import Dreamer
from worldmodel.sampling.settings import SamplingConfig, sampling_from_dict
from worldmodel.tokenizer.vqvae import VQVAE

HEAD_KEYS = ("reward_head.weight", "done_head.weight")
ASSETS = Path(__file__).resolve().parent / "assets"


def shipped_checkpoint(env: str) -> Path | None:
    """The trained model that ships with the package for ``env``, if there is one."""
    path = ASSETS / f"{env}.pt"
    return path if path.is_file() else None


@dataclass
class WorldModel:
    """``prior`` is the paper's raster prior (:class:`Prior`) or the frame-parallel one
    (:class:`FramePrior`); only the latter carries ``game`` state (health, ...)."""

    tokenizer: VQVAE
    prior: Prior | FramePrior
    env: str
    action_names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    game: GameState = field(default_factory=GameState)
    # Real start windows shipped inside the checkpoint, as stored (tensors by name); dreams read
    # them through ``worldmodel.dream.starts.DreamStarts``.
    starts: dict[str, torch.Tensor] | None = None
    # How the model dreams unless told otherwise (play, evaluate.py, the dream env); a
    # checkpoint may carry its own (``tools/set_sampling.py``), else SamplingConfig()'s.
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    @property
    def device(self) -> torch.device:
        return next(self.prior.parameters()).device

    @property
    def frames_per_step(self) -> int:
        return self.prior.config.actions_per_step

    @property
    def arch(self) -> str:
        return "frame" if isinstance(self.prior, FramePrior) else "raster"

    @property
    def default_passes(self) -> int:
        """Passes per dreamed frame when the sampling does not say: more only for a prior
        trained to draw in passes (``reveal``)."""
        return default_passes(self.prior) if isinstance(self.prior, FramePrior) else 1

    @property
    def window(self) -> int:
        """Latent steps of context the prior attends to."""
        return self.prior.config.steps

    def dreamer(
        self, batch: int = 1, sampling: SamplingConfig | None = None, seed: int | None = None
    ) -> Dreamer | FrameDreamer:
        """B dreams; ``sampling`` None: the model's own (:attr:`sampling`)."""
        generator = torch.Generator(self.device)
        generator.manual_seed(0 if seed is None else seed)
        sampling = self.sampling if sampling is None else sampling
        if isinstance(self.prior, FramePrior):
            return FrameDreamer(self.tokenizer, self.prior, self.game, batch, sampling, generator)
        return Dreamer(self.tokenizer, self.prior, batch, sampling, generator)

    @classmethod
    def load(
        cls, path: Path | str, env: str | None = None, device: torch.device | str = "cpu"
    ) -> WorldModel:
        """Load a ``worldmodel`` or ``prior`` checkpoint, refusing one for another env."""
        return cls.from_blob(load_checkpoint(path, ("worldmodel", "prior"), env), path, device)

    @classmethod
    def from_blob(
        cls, blob: dict[str, Any], path: Path | str, device: torch.device | str = "cpu"
    ) -> WorldModel:
        """The world model in a checkpoint already read (or about to be written: a tool checks
        that what it ships loads); ``path`` names it in errors."""
        weights = blob.get("model" if blob["kind"] == "prior" else "prior", {})
        frame = blob.get("arch") == "frame"
        missing = [] if frame else [k for k in HEAD_KEYS if k not in weights]
        if missing:
            raise CheckpointError(f"{path} has no reward/termination heads ({', '.join(missing)})")
        try:
            tokenizer = VQVAE(from_dict(VQVAEConfig, blob["tokenizer"]["config"]))
            tokenizer.load_state_dict(float32_state(blob["tokenizer"]["model"]))
            if frame:
                prior = FramePrior(from_dict(FramePriorConfig, blob["config"]))
            else:
                prior = Prior(from_dict(PriorConfig, blob["config"]))
            prior.load_state_dict(float32_state(weights))
            game = GameState.from_dict(blob.get("game"))
            starts = dict(blob["starts"]) if blob.get("starts") else None
            sampling = sampling_from_dict(blob.get("sampling") or {})
        except (KeyError, RuntimeError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path} does not hold a complete world model ({e})") from None
        meta = {k: blob.get(k) for k in ("preset", "step", "metrics", "train_config")}
        meta.update(blob.get("meta", {}))
        return cls(
            tokenizer.to(device).eval(),
            prior.to(device).eval(),
            blob["env"],
            list(blob["action_names"]),
            meta,
            game,
            starts,
            sampling,
        )


def float32_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def world_model_payload(
    blob: dict[str, Any], half: bool = False, starts: dict[str, torch.Tensor] | None = None
) -> dict[str, Any]:
    """A play/inference bundle (no optimizer state) of a prior training checkpoint's contents.

    ``half`` stores float weights as fp16 (they are cast back to fp32 on load); ``starts``
    are real start windows bundled in, so dreams start without a dataset."""

    def pack(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.half() if half and v.is_floating_point() else v for k, v in state.items()}

    extra = {k: blob[k] for k in ("arch", "game") if k in blob}
    if starts is not None:
        extra["starts"] = starts
    return {
        "kind": "worldmodel",
        **extra,
        "env": blob["env"],
        "preset": blob.get("preset"),
        "action_names": blob["action_names"],
        "config": blob["config"],
        "prior": pack(blob["model"]),
        "tokenizer": {
            "config": blob["tokenizer"]["config"],
            "model": pack(blob["tokenizer"]["model"]),
            "step": blob["tokenizer"]["step"],
        },
        "step": blob["step"],
        "metrics": blob.get("metrics", {}),
        "train_config": blob.get("train_config", {}),
    }


def export_world_model(
    prior_checkpoint: Path,
    out: Path,
    half: bool = False,
    starts: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write :func:`world_model_payload` of the prior training checkpoint to ``out``."""
    blob = load_checkpoint(prior_checkpoint, "prior")
    save_checkpoint(out, world_model_payload(blob, half, starts))
