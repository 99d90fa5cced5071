"""Merge a trained tokenizer's codebook into fewer codes (k-means over its code vectors).

A finer code grid's codes flicker: at 16×16 with 512 codes only 14.5% of the codes of
health_gathering's training play stay put across a step, and the prior spends its capacity
on that noise. Codes whose vectors are close mostly draw the same patch, so merging them
into K cluster centres (each weighted by how often the tokenizer used it) gives steadier
codes for a little reconstruction (EVALUATION, "A smaller codebook by merging"). The
encoder and decoder keep their weights; frames encode to the nearest centre.
"""

from __future__ import annotations

from typing import Any

import torch

QUANTIZER = "quantizer."


def kmeans(
    x: torch.Tensor, weights: torch.Tensor, k: int, iters: int = 100, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted k-means of rows ``x`` (N, D): each row's cluster (N,) and the centres (k, D),
    started k-means++ style (each next centre drawn with odds weight × squared distance to
    the nearest centre so far)."""
    g = torch.Generator().manual_seed(seed)
    w = weights.clamp(min=1e-6)
    picks = [int(torch.multinomial(w, 1, generator=g))]
    near = (x - x[picks[0]]).pow(2).sum(1)
    for _ in range(k - 1):
        odds = w * near
        i = int(torch.multinomial(odds if odds.sum() > 0 else w, 1, generator=g))
        picks.append(i)
        near = torch.minimum(near, (x - x[i]).pow(2).sum(1))
    centres = x[picks].clone()
    assign = torch.cdist(x, centres).argmin(1)
    for _ in range(iters):
        mass = torch.zeros(k).index_add_(0, assign, w)
        sums = torch.zeros_like(centres).index_add_(0, assign, x * w[:, None])
        empty = mass == 0  # a centre nobody chose keeps its place
        centres = torch.where(empty[:, None], centres, sums / mass.clamp(min=1e-12)[:, None])
        new = torch.cdist(x, centres).argmin(1)
        if torch.equal(new, assign):
            break
        assign = new
    return assign, centres


def merge_codebook(blob: dict[str, Any], k: int, seed: int = 0) -> dict[str, Any]:
    """A copy of tokenizer checkpoint ``blob`` whose codebook holds ``k`` merged codes, with
    the EMA statistics summed per cluster (so training it on stays consistent)."""
    n = int(blob["config"]["n_codes"])
    if not 2 <= k < n:
        raise ValueError(f"--codes must be between 2 and {n - 1} (this codebook has {n})")
    model = blob["model"]
    codebook = model[QUANTIZER + "codebook"].float()
    usage = model[QUANTIZER + "cluster_size"].float()
    assign, centres = kmeans(codebook, usage, k, seed=seed)
    size = torch.zeros(k).index_add_(0, assign, usage)
    merged = {
        **model,
        QUANTIZER + "codebook": centres,
        QUANTIZER + "cluster_size": size,
        QUANTIZER + "embed_sum": centres * size[:, None],
    }
    config = {**blob["config"], "n_codes": k}
    return {**blob, "config": config, "model": merged, "merged_from": {"n_codes": n, "seed": seed}}
