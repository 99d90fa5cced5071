"""Tokenizers inside checkpoints: read one out, and put a fine-tuned decoder into another.

A tokenizer travels in three layouts: a ``vqvae`` training checkpoint (``config``, ``model``,
``step``), a ``prior`` or ``worldmodel`` checkpoint (``tokenizer: {config, model, step}``), and
a ``decoder`` fine-tuning checkpoint (``config`` and a ``model`` whose ``tokenizer.`` entries
are the tokenizer). Swapping a decoder is only allowed between tokenizers whose frozen part
(encoder, pre_quant, codebook, shared position tables) is identical, up to the fp16 storage of
a shipped model, so every prior trained on the old codes keeps working.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from worldmodel.checkpoint import CheckpointError
from worldmodel.tokenizer.vqvae import DECODER_PREFIXES

TOKENIZER_KINDS = ("vqvae", "prior", "worldmodel", "decoder")


def read_tokenizer(blob: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor], int]:
    """(config dict, state dict, training step) of the tokenizer in a loaded checkpoint."""
    kind = blob["kind"]
    if kind in ("prior", "worldmodel"):
        tok = blob["tokenizer"]
        return tok["config"], tok["model"], int(tok["step"])
    if kind == "vqvae":
        return blob["config"], blob["model"], int(blob["step"])
    if kind == "decoder":
        prefix = "tokenizer."
        state = {k[len(prefix) :]: v for k, v in blob["model"].items() if k.startswith(prefix)}
        return blob["config"], state, int(blob["base"]["step"])
    raise CheckpointError(f"a {kind!r} checkpoint holds no tokenizer")


def is_frozen(key: str) -> bool:
    """True for tokenizer weights that decide the codes (everything but the decoder's)."""
    return not key.startswith(DECODER_PREFIXES)


def frozen_fingerprint(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the frozen weights' names and fp32 bytes: equal iff the codes are."""
    digest = hashlib.sha256()
    for key in sorted(k for k in state if is_frozen(k)):
        value = state[key].detach().cpu()
        value = value.float() if value.is_floating_point() else value
        digest.update(key.encode())
        digest.update(value.contiguous().numpy().tobytes())
    return digest.hexdigest()


def same_codes(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """True if two tokenizer states have the same frozen weights up to fp16 storage (a model
    shipped with ``--half`` keeps its encoder in fp16), so they make the same codes."""
    keys = {k for k in a if is_frozen(k)}
    if keys != {k for k in b if is_frozen(k)}:
        return False
    for key in keys:
        x, y = a[key].detach().cpu(), b[key].detach().cpu()
        if x.is_floating_point() and y.is_floating_point():
            x, y = x.half(), y.half()
        if x.shape != y.shape or not torch.equal(x, y):
            return False
    return True


def swap_decoder(target: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """``target`` (a vqvae, prior or worldmodel checkpoint) with its tokenizer's decoder
    replaced by the one in ``source`` (any checkpoint holding a tokenizer).

    Raises CheckpointError if the two tokenizers would not give the same codes.
    """
    _, old_state, _ = read_tokenizer(target)
    new_config, new_state, _ = read_tokenizer(source)
    if not same_codes(old_state, new_state):
        raise CheckpointError(
            "the decoder comes from a tokenizer with another encoder or codebook: its codes "
            "differ, so a prior trained on the target's codes would not fit it"
        )
    state = {k: v for k, v in old_state.items() if is_frozen(k)}
    state.update({k: v for k, v in new_state.items() if not is_frozen(k)})
    out = dict(target)
    if target["kind"] == "vqvae":
        out.update(config=new_config, model=state)
        out.pop("optimizer", None)  # the old optimizer state belongs to the old decoder
    elif target["kind"] in ("prior", "worldmodel"):
        out["tokenizer"] = {**target["tokenizer"], "config": new_config, "model": state}
    else:
        raise CheckpointError(f"cannot put a decoder into a {target['kind']!r} checkpoint")
    return out
