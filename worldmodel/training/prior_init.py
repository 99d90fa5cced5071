"""Start a frame prior from a trained one (``train.py --stage prior --init-prior CKPT``), or
only its dynamics for a prior over other codes (``--init-dynamics CKPT``).

A fine-tune: the new run reads the same codes as the checkpoint's prior, so its tokenizer is the
checkpoint's (written into the run folder when the folder has none, else required to be the
same), and the prior's weights are copied in. Parameters the checkpoint lacks (a switch turned
on for the fine-tune, e.g. ``reveal``) keep their initialisation, which such switches make a
no-op, so the fine-tune starts from exactly the checkpoint's predictions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.cli.args import UserError
from worldmodel.tokenizer.swap import read_tokenizer, same_codes
from worldmodel.world_model import float32_state


def init_blob(path: Path, env: str) -> dict[str, Any]:
    """The frame-prior checkpoint (``worldmodel`` or ``prior``) to start from."""
    blob = load_checkpoint(path, ("worldmodel", "prior"), env)
    if blob.get("arch") != "frame":
        raise UserError(f"--init-prior {path} holds no frame prior; pass a frame-prior model")
    return blob


def provide_tokenizer(blob: dict[str, Any], run_tokenizer: Path) -> None:
    """Write ``blob``'s tokenizer to ``run_tokenizer`` if there is none; refuse one that makes
    other codes (a decoder fine-tuned on the same codes is accepted)."""
    config, state, step = read_tokenizer(blob)
    if run_tokenizer.exists():
        _, mine, _ = read_tokenizer(load_checkpoint(run_tokenizer, "vqvae", blob["env"]))
        if not same_codes(mine, state):
            raise UserError(
                f"{run_tokenizer} is not the tokenizer of the --init-prior model; "
                "use a new --out (the model's own tokenizer is written there)"
            )
        return
    save_checkpoint(
        run_tokenizer,
        {
            "kind": "vqvae",
            "env": blob["env"],
            "preset": blob.get("preset"),
            "action_names": list(blob["action_names"]),
            "config": config,
            "model": float32_state(state),
            "step": step,
        },
    )


def load_init_weights(model: nn.Module, blob: dict[str, Any]) -> list[str]:
    """Copy ``blob``'s prior weights into ``model``; return the names it did not have.

    Raises:
        CheckpointError: a weight of another shape, or one the model does not have (the
            checkpoint's prior is of another size or kind).
    """
    weights = float32_state(blob["model"] if blob["kind"] == "prior" else blob["prior"])
    own = model.state_dict()
    extra = sorted(set(weights) - set(own))
    wrong = sorted(k for k in weights if k in own and weights[k].shape != own[k].shape)
    if extra or wrong:
        raise CheckpointError(
            "the --init-prior model is another size or kind of prior "
            f"({', '.join((extra + wrong)[:4])} differ); use --preset and --set as it was trained"
        )
    missing = sorted(set(own) - set(weights))
    model.load_state_dict(weights, strict=False)
    return missing


# What reads or writes the codes themselves: a prior over another tokenizer's codes starts these
# afresh; everything else (attention, MLPs, norms, actions, game state, place and time
# embeddings) is how the game moves, and carries over.
CODE_WEIGHTS = (
    "tok_emb.",
    "head.",
    "reveal_emb.",
    "codebook",
    "code_in.",
    "code_out.",
    "code_bias",
)


def load_dynamics_weights(model: nn.Module, blob: dict[str, Any]) -> list[str]:
    """Copy ``blob``'s frame-prior weights into ``model`` except those of the codes
    (:data:`CODE_WEIGHTS`): a warm start for a prior over a new tokenizer's codes laid out on
    the same token grid (e.g. 16x16 codes in 2x2 tokens after an 8x8 prior). Returns the names
    that start afresh.

    Raises:
        CheckpointError: any other weight of another shape (a prior of another size, or a
            token grid of another shape).
    """
    weights = float32_state(blob["model"] if blob["kind"] == "prior" else blob["prior"])
    own = model.state_dict()
    keep = {k: v for k, v in weights.items() if k in own and not k.startswith(CODE_WEIGHTS)}
    wrong = sorted(k for k, v in keep.items() if v.shape != own[k].shape)
    if wrong:
        raise CheckpointError(
            "the --init-dynamics model is another size of prior or another token grid "
            f"({', '.join(wrong[:4])} differ); use --set frame.* as it was trained"
        )
    model.load_state_dict(keep, strict=False)
    return sorted(set(own) - set(keep))
