"""Training windows for the frame-parallel prior, cut from a split's cached codes.

A window of T blocks covers latent steps p .. p+T-1 of one episode: block j reads step p+j-1
(BOS / no state before the episode's first step) and predicts step p+j. Blocks whose input is
BOS predict an episode's first frame from nothing; they are left out of the loss (a dream always
starts from real frames).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldmodel.data.codes import CodeSet
from worldmodel.game_state import GameState


def window_starts(codes: CodeSet, blocks: int) -> np.ndarray:
    """Global index of every window's first target step (episodes with >= ``blocks`` steps)."""
    out = [
        s + np.arange(n - blocks + 1)
        for s, n in zip(codes.starts, codes.lengths, strict=True)
        if n >= blocks
    ]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


@dataclass
class FrameBatch:
    in_codes: np.ndarray  # (B, T, H, W) int64, BOS = n_codes
    in_state: np.ndarray  # (B, T, V) int64 bins, -1 = none
    actions: np.ndarray  # (B, T, s) int64
    codes: np.ndarray  # (B, T, H, W) targets
    state: np.ndarray  # (B, T, V) targets
    valid: np.ndarray  # (B, T) bool
    level: np.ndarray  # (B,) int64 corruption level bucket
    starts: np.ndarray  # (B,) global index of each window's first target step
    current: np.ndarray | None = None  # (B, T, H, W) revealed codes, n_codes = hidden (reveal)


# Shares of blocks drawn with nothing revealed (a frame in one pass, and every pass's start)
# and with everything revealed (how a dream's context blocks from real frames look).
NONE_REVEALED, ALL_REVEALED = 0.25, 0.1


def reveal(codes: np.ndarray, mask_id: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``codes`` (B, T, H, W) with some places of each block hidden (``mask_id``).

    A block is all hidden with probability ``NONE_REVEALED``, all shown with ``ALL_REVEALED``,
    else hides a share cos(pi/2 * u), u ~ U(0, 1), of its places (MaskGIT's schedule, so the
    early passes of a dream, which see few codes, are trained as often as the late ones)."""
    b, t = codes.shape[:2]
    places = int(np.prod(codes.shape[2:]))
    kind = rng.random((b, t))
    share = np.cos(np.pi / 2 * rng.random((b, t)))
    share = np.where(
        kind < NONE_REVEALED, 1.0, np.where(kind < NONE_REVEALED + ALL_REVEALED, 0.0, share)
    )
    n_hidden = np.ceil(share * places).astype(np.int64)  # (B, T)
    rank = rng.random((b, t, places)).argsort(-1).argsort(-1)  # a random order of the places
    hidden = rank < n_hidden[..., None]
    out = codes.reshape(b, t, places).copy()
    out[hidden] = mask_id
    return out.reshape(codes.shape)


def frame_batch(
    codes: CodeSet,
    starts: np.ndarray,
    blocks: int,
    game: GameState,
    n_codes: int,
    corrupt: float = 0.0,
    levels: int = 8,
    rng: np.random.Generator | None = None,
    reveal_codes: bool = False,
) -> FrameBatch:
    """The windows of ``blocks`` blocks whose first target steps are ``starts``.

    With ``corrupt`` > 0, half the windows get a level r ~ U(0, corrupt): each input code is
    replaced by a random one with probability r, and each input state value moved by up to 10
    bins with probability r / 2, so the model learns to lean on the history when its input is
    wrong, as its own dreamed input will be. The level's bucket is an input of the model.
    With ``reveal_codes`` (and an ``rng``), ``current`` holds each block's own codes with some
    hidden (:func:`reveal`).
    """
    b = len(starts)
    g = starts[:, None] + np.arange(blocks)[None]  # (B, T) target steps
    first = np.array([codes.starts[codes.episode_of(int(s))] for s in starts])
    prev = g - 1
    bos = prev < first[:, None]  # the step before an episode's first
    prev = np.maximum(prev, 0)
    in_codes = codes.codes[prev].astype(np.int64)
    in_codes[bos] = n_codes
    state = game.quantize(codes.variables[g]) if game.size else np.zeros((b, blocks, 0), np.int64)
    in_state = game.quantize(codes.variables[prev]) if game.size else state.copy()
    in_state[bos] = -1
    level = np.zeros(b, dtype=np.int64)
    if corrupt > 0 and rng is not None:
        r = np.where(rng.random(b) < 0.5, 0.0, rng.uniform(0.0, corrupt, b))
        level = np.minimum((r / corrupt * levels).astype(np.int64), levels - 1)
        hit = (rng.random(in_codes.shape) < r[:, None, None, None]) & ~bos[..., None, None]
        in_codes[hit] = rng.integers(0, n_codes, int(hit.sum()))
        if game.size:
            move = (rng.random(in_state.shape) < r[:, None, None] / 2) & ~bos[..., None]
            shift = rng.integers(-10, 11, in_state.shape)
            hi = np.array(game.vocab) - 1
            in_state = np.where(move, np.clip(in_state + shift, 0, hi), in_state)
    targets = codes.codes[g].astype(np.int64)
    current = reveal(targets, n_codes, rng) if reveal_codes and rng is not None else None
    return FrameBatch(
        in_codes=in_codes,
        in_state=in_state,
        actions=codes.actions[g].astype(np.int64),
        codes=targets,
        state=state,
        valid=~bos,
        level=level,
        starts=starts,
        current=current,
    )
