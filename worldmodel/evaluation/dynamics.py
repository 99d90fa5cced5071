"""The dream's dynamics measured on held-out episodes, each figure beside its trivial baseline:
teacher-forced one-step prediction (vs copying the last real frame, and the tokenizer's own
reconstruction as the ceiling), open-loop prediction (vs freezing the last context frame), FVD
(vs reconstructions and vs a second set of real clips), and the game state (vs keeping the last
real value). Every figure is also grouped by the behaviour that played the episode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import torch

from worldmodel.data import EpisodeStore
from worldmodel.data.codes import CodeSet
from worldmodel.evaluation.metrics import capped_psnr, ssim
from worldmodel.evaluation.openloop import OpenLoop, clip_starts, one_step, open_loop
from worldmodel.evaluation.state import StateEval, combat, teacher_forced_state
from worldmodel.frames import to_model, to_uint8
from worldmodel.sampling.settings import SamplingConfig, sampling_label
from worldmodel.world_model import WorldModel


def behaviours(store: EpisodeStore) -> dict[int, str]:
    """Dataset episode index -> the behaviour that played it (``unknown`` if not recorded)."""
    return {e.index: e.behaviour or "unknown" for e in store.entries}


def grouped(columns: dict[str, np.ndarray], keys: np.ndarray) -> dict[str, dict[str, float]]:
    """The mean of every column (N, ...) per distinct key (N,), with the group's size ``n``;
    keys in sorted order."""
    out = {}
    for key in sorted(set(keys.tolist())):
        sel = keys == key
        row = {name: float(values[sel].mean()) for name, values in columns.items()}
        out[str(key)] = {**row, "n": int(sel.sum())}
    return out


def full_context(model: WorldModel) -> int:
    """Frames of real history the model's dreamer holds when started from enough of them."""
    return model.dreamer(1).history * model.frames_per_step


def sampling_settings(
    model: WorldModel,
    temperature: float,
    top_p: float | None = None,
    passes: int = 1,
    keep_likely: float | None = None,
) -> dict[str, SamplingConfig]:
    """The dream's sampling and greedy decoding (both in ``passes`` passes per frame; the dream's
    with ``keep_likely``); the frame prior also with ``copy_unchanged``."""
    base = {
        sampling_label(temperature, top_p, passes, keep_likely): SamplingConfig(
            temperature=temperature, top_p=top_p, passes=passes, keep_likely=keep_likely
        ),
        "greedy": SamplingConfig(temperature=0.0, passes=passes),
    }
    if model.arch != "frame":
        return base
    kept = {k + "+copy": dataclasses.replace(s, copy_unchanged=True) for k, s in base.items()}
    return {**base, **kept}


def one_step_suite(
    model: WorldModel,
    store: EpisodeStore,
    n: int,
    contexts: list[int],
    temperature: float,
    batch: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
    top_p: float | None = None,
    passes: int = 1,
    keep_likely: float | None = None,
) -> dict[str, dict]:
    """Teacher-forced one step for every context length and sampling setting, from the same
    ``n`` samples (same seed): mean PSNR of the dream, of copying the last real frame and of the
    reconstruction, overall, on noop steps, per action and per behaviour."""
    names = model.action_names
    of = behaviours(store)
    out: dict[str, dict] = {}
    for context in contexts:
        for label, sampling in sampling_settings(
            model, temperature, top_p, passes, keep_likely
        ).items():
            if progress is not None:
                progress(f"one step, {context} frames, {label}")
            one = one_step(model, store, n, context, batch, seed, sampling)
            cols = {"dream": one.dream, "copy": one.copy, "recon": one.recon}
            noop = one.actions == names.index("noop") if "noop" in names else one.actions < 0
            row: dict = {k: float(v.mean()) for k, v in cols.items()}
            row["samples"] = len(one.dream)
            if noop.any():
                row["noop"] = {k: float(v[noop].mean()) for k, v in cols.items()}
                row["noop"]["n"] = int(noop.sum())
            row["per_action"] = grouped(cols, np.array([names[a] for a in one.actions]))
            row["per_behaviour"] = grouped(cols, np.array([of[e] for e in one.episodes]))
            if one.pred_vars is not None:
                row["state_mae"] = np.abs(one.pred_vars - one.true_vars).mean(0).tolist()
            out[f"ctx{context}/{label}"] = row
    return out


@dataclass
class OpenLoopResult:
    metrics: dict
    clips: OpenLoop


def open_loop_suite(
    model: WorldModel,
    store: EpisodeStore,
    clips: int,
    context: int,
    horizon: int,
    sampling: SamplingConfig,
    batch: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> OpenLoopResult:
    """Open loop under the real actions, beside freezing the last context frame: PSNR and SSIM
    per horizon step, per behaviour, and (models with game state) each variable's error per
    step beside keeping its last real value."""
    ol = open_loop(model, store, clips, context, horizon, batch, seed, sampling, progress)
    frozen = np.repeat(ol.context[:, -1:], horizon, axis=1)
    dream_psnr, frozen_psnr = capped_psnr(ol.real, ol.dream), capped_psnr(ol.real, frozen)
    frozen_ssim = ssim(ol.real, frozen).mean(0)
    m: dict = {
        "context": context,
        "clips": len(ol.real),
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "passes": sampling.passes,
        "keep_likely": sampling.keep_likely,
        "psnr_per_frame": ol.psnr.tolist(),
        "frozen_psnr_per_frame": frozen_psnr.mean(0).tolist(),
        "ssim_per_frame": ol.ssim.tolist(),
        "frozen_ssim_per_frame": frozen_ssim.tolist(),
        "psnr_mean": float(ol.psnr.mean()),
        "frozen_psnr_mean": float(frozen_psnr.mean()),
        "ssim_mean": float(ol.ssim.mean()),
        "frozen_ssim_mean": float(frozen_ssim.mean()),
    }
    cols = {"dream_psnr": dream_psnr.mean(1), "frozen_psnr": frozen_psnr.mean(1)}
    if ol.pred_vars is not None:
        # the same seed draws the very clips of ``ol``: read their last real context values
        ends = clip_starts(store, clips, context + horizon, seed)
        last = np.stack(
            [store.read(p, f + context - 1, f + context)["variables"][0] for p, f in ends]
        )
        err = np.abs(ol.pred_vars - ol.true_vars)  # (N, n, V)
        kept = np.abs(last[:, None] - ol.true_vars)
        m["state_mae_per_step"] = err.mean((0, 2)).tolist()
        m["state_keep_last_mae_per_step"] = kept.mean((0, 2)).tolist()
        m["state_mae"] = err.mean((0, 1)).tolist()
        m["state_keep_last_mae"] = kept.mean((0, 1)).tolist()
        # after the whole horizon: each variable exactly as the real game's, and within 1
        end = np.rint(ol.pred_vars[:, -1]) - np.rint(ol.true_vars[:, -1])  # (N, V)
        m["state_exact_at_end"] = (end == 0).mean(0).tolist()
        m["state_within_one_at_end"] = (np.abs(end) <= 1).mean(0).tolist()
        cols["state_mae"] = err.mean((1, 2))
        cols["state_keep_last_mae"] = kept.mean((1, 2))
    of = behaviours(store)
    m["per_behaviour"] = grouped(cols, np.array([of[e] for e in ol.episodes]))
    return OpenLoopResult(m, ol)


@torch.no_grad()
def reconstruct_clips(model: WorldModel, context: np.ndarray, real: np.ndarray) -> np.ndarray:
    """The tokenizer's reconstruction of ``real`` (N, n, H, W, 3) uint8, encoded after its
    ``context`` (N, k, H, W, 3) as the dream was: what perfect code prediction would show."""
    out = []
    for i in range(0, len(real), 16):
        clip = np.concatenate([context[i : i + 16], real[i : i + 16]], 1)
        codes = model.tokenizer.encode(to_model(clip, model.device))
        out.append(to_uint8(model.tokenizer.decode(codes))[:, context.shape[1] :])
    return np.concatenate(out)


def fvd_suite(
    features: Callable[[np.ndarray], np.ndarray],
    real: np.ndarray,
    dream: np.ndarray,
    recon: np.ndarray,
    real_again: np.ndarray,
) -> dict[str, float]:
    """FVD of dreams and of reconstructions against the same real clips, and of a second set of
    real clips of the same size (the floor that sampling noise alone gives at this size)."""
    from worldmodel.fvd import feature_stats, frechet_distance

    ref = feature_stats(features(real))
    dist = {
        name: frechet_distance(*ref, *feature_stats(features(videos)))
        for name, videos in (("dream", dream), ("recon", recon), ("real", real_again))
    }
    return {
        "dream_vs_real": dist["dream"],
        "reconstruction_vs_real": dist["recon"],
        "real_vs_real": dist["real"],
        "dream_over_recon": dist["dream"] / max(dist["recon"], 1e-9),
        "clips": len(real),
        "frames": real.shape[1],
    }


def state_suite(
    model: WorldModel, codes: CodeSet, store: EpisodeStore, threshold: float = 0.5
) -> dict:
    """Teacher-forced game state over every step of the split's episodes: each variable's error
    beside keeping the previous real value, and deaths predicted at the dream env's threshold.

    A dream dies when its sampled HEALTH bin is 0, which happens with the predicted
    probability at each step; the expected number of such deaths on steps where the player
    lived says how often a long dream would die for nothing."""
    ev = teacher_forced_state(model.prior, codes, model.game, model.device)
    err = np.abs(ev.pred - ev.true)  # (N, V)
    start = dict(zip(codes.episodes.tolist(), codes.starts.tolist(), strict=True))
    g = np.array([start[int(e)] for e in ev.episodes]) + ev.steps
    has_previous = ev.steps > 0  # an episode's first step has no earlier value to keep
    keep = np.abs(codes.variables[np.maximum(g - 1, 0)] - ev.true)
    of = behaviours(store)
    keys = np.array([of[int(e)] for e in ev.episodes])
    m: dict = {"variables": list(model.game.names), "threshold": threshold}
    if {"AMMO2", "KILLCOUNT"} & set(model.game.names):
        previous = codes.variables[np.maximum(g - 1, 0)]
        m["combat"] = combat(ev, previous, has_previous, model.game)
    for key in ["all", *sorted(set(keys.tolist()))]:
        sel = np.ones(len(keys), bool) if key == "all" else keys == key
        lived = sel & ~ev.died
        died = sel & ev.died
        row = {
            "steps": int(sel.sum()),
            "episodes": len(np.unique(ev.episodes[sel])),
            "mae": err[sel].mean(0).tolist(),
            "keep_last_mae": keep[sel & has_previous].mean(0).tolist(),
            **StateEval(*(getattr(ev, f.name)[sel] for f in fields(StateEval))).termination(
                threshold
            ),
            "dead_prob_on_deaths": float(ev.dead_prob[died].mean()) if died.any() else None,
            "sampled_deaths_per_1000_lived_steps": float(1000 * ev.dead_prob[lived].mean()),
        }
        if key == "all":
            m.update(row)
        else:
            m.setdefault("per_behaviour", {})[key] = row
    return m
