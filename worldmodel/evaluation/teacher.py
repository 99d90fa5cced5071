"""Teacher-forced metrics of the prior on cached codes: bits/dim, reward, termination."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from worldmodel.data.codes import CodeSet
from worldmodel.prior.raster import Prior, symexp


def eval_windows(codes: CodeSet, steps: int, limit: int) -> tuple[list[int], np.ndarray]:
    """Windows that score every step of every episode once, and which steps of each to score:
    (starts, mask (n, steps) bool). Step 0 of a window has no context and is never scored, so
    windows overlap by one step. Thinned to ``limit`` windows, always keeping each episode's
    last window (where the endings are)."""
    regular: list[tuple[int, np.ndarray]] = []
    last: list[tuple[int, np.ndarray]] = []
    full = np.ones(steps, dtype=bool)
    full[0] = False
    for s, n in zip(codes.starts, codes.lengths, strict=True):
        if n < steps:
            continue
        windows = [(w, full) for w in range(s, s + n - steps + 1, steps - 1)]
        covered = windows[-1][0] + steps - 1  # last step the regular windows score
        final = s + n - steps
        if covered < s + n - 1:
            tail = np.zeros(steps, dtype=bool)
            tail[covered - final + 1 :] = True
            windows.append((final, tail))
        regular += windows[:-1]
        last.append(windows[-1])
    if len(regular) + len(last) > limit:
        keep = max(0, limit - len(last))
        idx = np.linspace(0, len(regular) - 1, keep).round().astype(int) if keep else []
        regular = [regular[i] for i in idx]
    chosen = sorted(regular + last, key=lambda w: w[0])
    return [w for w, _ in chosen], np.stack([m for _, m in chosen])


@torch.no_grad()
def teacher_forced_metrics(
    prior: Prior,
    codes: CodeSet,
    starts: list[int],
    mask: np.ndarray,
    device: torch.device,
    cond_frames=None,
    batch: int = 32,
) -> dict[str, float]:
    """bits/dim over the windows' codes; reward MAE and termination precision/recall (at
    p > 0.5) over the masked steps. ``cond_frames(starts)`` supplies frames if the prior is
    frame-conditioned."""
    c = prior.config
    ce_sum, tokens = 0.0, 0
    pred_r, true_r, pred_d, true_d = [], [], [], []
    for i in range(0, len(starts), batch):
        chunk = starts[i : i + batch]
        windows = [codes.window(int(g), c.steps) for g in chunk]
        b = {
            k: torch.as_tensor(np.stack([w[k] for w in windows]), device=device) for k in windows[0]
        }
        frames = cond_frames(np.array(chunk)) if cond_frames is not None else None
        out = prior(b["codes"], b["actions"] if c.n_actions else None, frames)
        ce = F.cross_entropy(out.logits.flatten(0, 1), b["codes"].reshape(-1), reduction="sum")
        ce_sum += float(ce)
        tokens += b["codes"].numel()
        m = torch.as_tensor(mask[i : i + batch], device=device)
        pred_r.append(symexp(out.reward[m]).cpu())
        true_r.append(b["rewards"][m].float().cpu())
        pred_d.append(torch.sigmoid(out.done_logit[m]).cpu())
        true_d.append(b["dones"][m].cpu())
    r_hat, r = torch.cat(pred_r), torch.cat(true_r)
    d_hat, d = torch.cat(pred_d) > 0.5, torch.cat(true_d)
    tp = int((d_hat & d).sum())
    return {
        "bits_per_dim": ce_sum / tokens / math.log(2),
        "reward_mae": float((r_hat - r).abs().mean()),
        "reward_mae_on_endings": float((r_hat - r)[d].abs().mean()) if d.any() else float("nan"),
        "done_precision": tp / max(1, int(d_hat.sum())),
        "done_recall": tp / max(1, int(d.sum())),
        "done_events": int(d.sum()),
        "scored_steps": len(r),
    }
