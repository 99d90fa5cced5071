"""Checkpoint files: written atomically, read without executing code.

A checkpoint is a plain dict of tensors and Python literals saved with ``torch.save`` and read
with ``torch.load(weights_only=True)``. Every file carries ``format_version``, its ``kind``
(``vqvae``, ``prior``, ``worldmodel``, or ``decoder``: a fine-tuned tokenizer decoder), the
``env`` it was trained on and the model config, so loading needs nothing else and a file for
another env or model is refused with a clear message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_VERSION = 1
KINDS = ("vqvae", "prior", "worldmodel", "decoder")
# What each kind must hold, and of which type, for the code that reads it not to fail later.
REQUIRED: dict[str, dict[str, type]] = {
    "vqvae": {"config": dict, "model": dict, "step": int, "action_names": list},
    "prior": {"config": dict, "model": dict, "step": int, "action_names": list, "tokenizer": dict},
    "worldmodel": {"config": dict, "prior": dict, "tokenizer": dict, "action_names": list},
    "decoder": {"config": dict, "model": dict, "step": int, "action_names": list, "base": dict},
}
TOKENIZER_KEYS = {"config": dict, "model": dict, "step": int}


class CheckpointError(ValueError):
    """A checkpoint that is missing, damaged, or not the one the caller needs."""


def save_checkpoint(path: Path | str, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically (temporary file in the same folder, rename)."""
    path = Path(path)
    if payload.get("kind") not in KINDS or "env" not in payload or "config" not in payload:
        raise ValueError("a checkpoint needs 'kind', 'env' and 'config'")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format_version": CHECKPOINT_VERSION, **payload}, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: Path | str, kind: str | tuple[str, ...], env: str | None = None
) -> dict[str, Any]:
    """Read a checkpoint of ``kind`` (one or several), refusing one trained on another env."""
    path = Path(path)
    kinds = (kind,) if isinstance(kind, str) else kind
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged file raises many different types
        # torch's own message runs to several lines and suggests weights_only=False: keep one
        # line, and never that advice (loading a file must not run code).
        reason = type(e).__name__
        raise CheckpointError(
            f"{path} is damaged or not a checkpoint of this project ({reason}); "
            "retrain it or copy it again"
        ) from None
    if isinstance(blob, dict) and "state_dict" in blob and "kind" not in blob:
        raise CheckpointError(f"{path} is a PPO agent, not a {' or '.join(kinds)} checkpoint")
    if not isinstance(blob, dict) or "format_version" not in blob:
        raise CheckpointError(f"{path} is not a checkpoint of this project")
    if blob["format_version"] != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {blob['format_version']}; "
            f"this code reads format {CHECKPOINT_VERSION}"
        )
    if blob.get("kind") not in kinds:
        raise CheckpointError(
            f"{path} holds a {blob.get('kind')!r} model, not {' or '.join(kinds)}"
        )
    if env is not None and blob.get("env") != env:
        raise CheckpointError(
            f"{path} was trained on {blob.get('env')!r}, not {env!r}; "
            f"pass --env {blob.get('env')} or a checkpoint for {env!r}"
        )
    _check_fields(blob, REQUIRED[blob["kind"]], path, "")
    if "tokenizer" in REQUIRED[blob["kind"]]:
        _check_fields(blob["tokenizer"], TOKENIZER_KEYS, path, "tokenizer.")
    return blob


def _check_fields(blob: dict[str, Any], fields: dict[str, type], path: Path, prefix: str) -> None:
    for key, tp in fields.items():
        if not isinstance(blob.get(key), tp):
            found = "nothing" if key not in blob else type(blob[key]).__name__
            raise CheckpointError(
                f"{path} is damaged: {prefix}{key} should be a {tp.__name__}, found {found}; "
                "retrain it or copy it again"
            )
