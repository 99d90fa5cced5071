"""The VideoGen world model: a video VQ-VAE, an action-conditioned GPT prior, and the dream.

Importing the package registers the dream envs ``worldmodel/Dream-<scenario>-v0`` with
gymnasium. It stays light (no torch): collection workers import ``worldmodel.data`` only, so
:class:`WorldModel` is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from worldmodel.dream.env import DreamEnv, VecDreamEnv, register_dream_envs

if TYPE_CHECKING:
    from worldmodel.world_model import WorldModel

__all__ = ["DreamEnv", "VecDreamEnv", "WorldModel", "register_dream_envs"]

register_dream_envs()


def __getattr__(name: str) -> Any:
    if name == "WorldModel":
        from worldmodel.world_model import WorldModel

        return WorldModel
    raise AttributeError(f"module 'worldmodel' has no attribute {name!r}")
