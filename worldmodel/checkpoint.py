"""Checkpoint files: written atomically, read without executing code.

A checkpoint is a plain dict of tensors and Python literals saved with ``torch.save`` and read
with ``torch.load(weights_only=True)``. Every file carries ``format_version``, its ``kind``
(``vqvae``, ``prior``, ``worldmodel``, or ``decoder``: a fine-tuned tokenizer decoder), the
``env`` it was trained on and the model config, so loading needs nothing else and a file for
another env or model is refused with a clear message.
"""

from __future__ import annotations

import io
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


def write_atomic(path: Path | str, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it and a rename, so a reader
    sees the old file or the new one, never half of one; the temporary file is removed if the
    write fails (a full disk, a read-only folder, Ctrl-C)."""
    write_all_atomic({Path(path): data})


def write_all_atomic(files: dict[Path, bytes | str]) -> None:
    """Write several files that belong together (a model and its card): each goes to a
    temporary file first, and only when all of them are written in full are they renamed into
    place, one right after the other. If any write fails, no file is replaced and no temporary
    file is left."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            staged.append((tmp, path))
            if isinstance(data, str):
                tmp.write_text(data)
            else:
                tmp.write_bytes(data)
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def _with_version(payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("kind") not in KINDS or "env" not in payload or "config" not in payload:
        raise ValueError("a checkpoint needs 'kind', 'env' and 'config'")
    kept = {k: v for k, v in payload.items() if k != "format_version"}  # a checkpoint read back
    return {"format_version": CHECKPOINT_VERSION, **kept}


def checkpoint_bytes(payload: dict[str, Any]) -> bytes:
    """The bytes :func:`save_checkpoint` would write for ``payload`` (to hash them, or to write
    them with other files in :func:`write_all_atomic`)."""
    buffer = io.BytesIO()
    torch.save(_with_version(payload), buffer)
    return buffer.getvalue()


def save_checkpoint(path: Path | str, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically (temporary file in the same folder, rename;
    the temporary file is removed if the write fails)."""
    path = Path(path)
    blob = _with_version(payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(blob, tmp)  # streamed: a large checkpoint is not held twice in memory
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(
    path: Path | str, kind: str | tuple[str, ...], env: str | None = None
) -> dict[str, Any]:
    """Read a checkpoint of ``kind`` (one or several), refusing one trained on another env."""
    path = Path(path)
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
    return check_checkpoint(blob, kind, env, path)


def check_checkpoint(
    blob: Any, kind: str | tuple[str, ...], env: str | None = None, path: Path | str = "it"
) -> dict[str, Any]:
    """``blob`` (a checkpoint read into memory, or one about to be written), refused with a
    :class:`CheckpointError` naming ``path`` unless it is a complete checkpoint of ``kind``
    (one or several) for ``env``."""
    kinds = (kind,) if isinstance(kind, str) else kind
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


def _check_fields(
    blob: dict[str, Any], fields: dict[str, type], path: Path | str, prefix: str
) -> None:
    for key, tp in fields.items():
        if not isinstance(blob.get(key), tp):
            found = "nothing" if key not in blob else type(blob[key]).__name__
            raise CheckpointError(
                f"{path} is damaged: {prefix}{key} should be a {tp.__name__}, found {found}; "
                "retrain it or copy it again"
            )
