"""The whole evaluation of a trained world model on a dataset split, written as a report.

Both priors get: teacher-forced one step (beside copying the last frame and the tokenizer's
reconstruction), open loop (beside freezing the last context frame), FVD (beside
reconstructions and a second draw of real clips) and inverse-dynamics action following. The
paper's raster prior adds its reward and termination heads, teacher-forced; the frame prior
adds its game state, teacher-forced and open loop. Checks against the real game come from
the caller (``checks``): the model package cannot run the game.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from worldmodel.data import EpisodeStore
from worldmodel.data.codes import encode_split
from worldmodel.evaluation.dynamics import (
    full_context,
    fvd_suite,
    one_step_suite,
    open_loop_suite,
    reconstruct_clips,
    state_suite,
)
from worldmodel.evaluation.idm import dream_transitions, idm_accuracy, sample_transitions, train_idm
from worldmodel.evaluation.media import clip_grid, write_gif
from worldmodel.evaluation.metrics import capped_psnr, ssim
from worldmodel.evaluation.openloop import real_clips
from worldmodel.evaluation.report import (
    plot_horizon,
    plot_training,
    write_eval_report,
    write_json,
)
from worldmodel.evaluation.teacher import eval_windows, teacher_forced_metrics
from worldmodel.sampling.settings import USER_SETTINGS, SamplingConfig
from worldmodel.world_model import WorldModel

# each part's figures as soon as it ends; removed once the whole report is written
PARTIAL = "metrics.partial.json"


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class EvalConfig:
    split: str = field(
        default="test", metadata=_help("split: train, val, test, or all (a held-out dataset)")
    )
    clips: int = field(default=256, metadata=_help("open-loop clips, also FVD's set size"))
    context: int = field(default=4, metadata=_help("real frames before an open-loop dream"))
    horizon: int = field(default=16, metadata=_help("dreamed frames per clip (FVD needs >= 9)"))
    one_step: int = field(default=512, metadata=_help("samples per one-step setting (0: none)"))
    one_step_context: int = field(default=7, metadata=_help("real frames before one step"))
    full_context: bool = field(
        default=True, metadata=_help("also dream from the model's whole context (window + 1)")
    )
    fvd: bool = field(default=True, metadata=_help("FVD (needs --i3d)"))
    state: bool = field(default=True, metadata=_help("teacher-forced game state (frame prior)"))
    teacher_episodes: int = field(
        default=0, metadata=_help("episodes scored teacher-forced, spread over the split (0: all)")
    )
    idm_steps: int = field(default=1500, metadata=_help("inverse-dynamics training steps"))
    idm_transitions: int = field(default=2000, metadata=_help("real held-out transitions"))
    temperature: float = field(default=1.0, metadata=_help("sampling temperature of the dream"))
    top_p: float | None = field(
        default=None,
        metadata=_help(
            "nucleus sampling: draw codes from the smallest set with this much probability"
        ),
    )
    passes: int | None = field(
        default=None,
        metadata=_help(
            "draw each frame in this many passes (priors trained with frame.reveal; "
            "default: the model's, 4 for those, else 1)"
        ),
    )
    state_temperature: float | None = field(
        default=None, metadata=_help("of the game-state tokens alone (None: as the frames')")
    )
    copy_unchanged: bool = field(
        default=False, metadata=_help("the dream keeps pixels whose codes did not change")
    )
    keep_likely: float | None = field(
        default=None,
        metadata=_help(
            "keep a code wherever the model gives the last frame's code there at least this "
            "probability (frame prior)"
        ),
    )
    batch: int = field(default=16, metadata=_help("dreams run together"))
    seed: int = field(default=0, metadata=_help("seed of clip choice and sampling"))

    @classmethod
    def quick(cls) -> EvalConfig:
        return cls(clips=16, one_step=32, idm_steps=200, idm_transitions=300)

    def with_sampling(self, sampling: SamplingConfig) -> EvalConfig:
        """This config dreaming with ``sampling``'s settings (a model's own default sampling,
        which the user's flags then override); EvalConfig has a field of each name in
        ``USER_SETTINGS``."""
        return dataclasses.replace(self, **{k: getattr(sampling, k) for k in USER_SETTINGS})

    @property
    def sampling(self) -> SamplingConfig:
        return SamplingConfig(**{k: getattr(self, k) for k in USER_SETTINGS})


def _bar(desc: str, progress: bool):
    bar = tqdm(desc=desc, disable=not progress, unit="clip", file=sys.stderr)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, update


def evaluate(
    model: WorldModel,
    data: Path,
    out: Path,
    i3d: Path | None,
    config: EvalConfig,
    progress: bool = True,
    run_dir: Path | None = None,
    checks: Callable[[WorldModel, Path], dict[str, Any]] | None = None,
    idm_data: Path | None = None,
) -> dict[str, Any]:
    """Measure ``model`` on ``config.split`` of ``data``; write report.md, metrics.json, PNGs
    and GIFs into ``out`` and return the metrics. ``checks(model, out)`` adds the real-game
    checks; the inverse-dynamics model trains on the train split of ``idm_data`` (default
    ``data``).

    Each part's figures are also saved to ``out/metrics.partial.json`` as soon as it ends, so
    that a run stopped or failing in a later part keeps what it measured; that file is removed
    once the report is written."""
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    if config.passes is None:
        config = dataclasses.replace(config, passes=model.default_passes)

    def say(text: str) -> None:
        if progress:
            print(f"[{time.perf_counter() - t0:6.0f} s] {text}", file=sys.stderr, flush=True)

    store = EpisodeStore(data, config.split, env=model.env)
    s, full = model.frames_per_step, full_context(model)
    if config.context % s or config.one_step_context % s:
        raise ValueError(f"context lengths must be multiples of {s} frames (frames per step)")
    contexts = [config.context] + ([full] if config.full_context and full != config.context else [])
    metrics: dict[str, Any] = {
        "env": model.env,
        "arch": model.arch,
        "data": str(data),
        "split": config.split,
        "episodes": len(store),
        "behaviours": dict(
            sorted(Counter(e.behaviour or "unknown" for e in store.entries).items())
        ),
        "config": asdict(config),
        "context_frames": config.context,
        "full_context_frames": full,
    }

    def keep() -> None:
        write_json(out / PARTIAL, metrics)

    if config.one_step:
        one_contexts = [config.one_step_context, *contexts[1:]]
        metrics["one_step"] = one_step_suite(
            model,
            store,
            config.one_step,
            one_contexts,
            config.temperature,
            config.batch,
            config.seed,
            say,
            top_p=config.top_p,
            passes=config.passes,
            keep_likely=config.keep_likely,
        )
        keep()

    runs = {}
    for key, context in zip(("open_loop", "open_loop_full"), contexts, strict=False):
        bar, update = _bar(f"open loop, {context} real frames", progress)
        runs[key] = open_loop_suite(
            model,
            store,
            config.clips,
            context,
            config.horizon,
            config.sampling,
            config.batch,
            config.seed,
            update,
        )
        bar.close()
        metrics[key] = runs[key].metrics
        keep()
    ol = runs["open_loop"].clips
    recon = reconstruct_clips(model, ol.context, ol.real)
    metrics["reconstruction"] = {
        "psnr": float(capped_psnr(ol.real, recon).mean()),
        "ssim": float(ssim(ol.real, recon).mean()),
    }
    if i3d is not None and config.fvd:
        from worldmodel.fvd import I3DFeatures

        say("FVD")
        extractor = I3DFeatures(i3d, model.device)
        again = real_clips(store, config.clips, config.horizon, config.seed + 1)
        metrics["fvd"] = fvd_suite(extractor, ol.real, ol.dream, recon, again)
    keep()

    say("inverse dynamics")
    n_actions = len(model.action_names)
    bar, update = _bar("inverse dynamics", progress)
    idm = train_idm(
        EpisodeStore(idm_data or data, "train", env=model.env),
        n_actions,
        config.idm_steps,
        model.device,
        config.seed,
        progress=update,
    )
    bar.close()
    real_pairs, real_actions = sample_transitions(store, config.idm_transitions, config.seed + 1)
    dream_pairs, dream_actions = dream_transitions(ol.context, ol.dream, ol.actions)
    on_real = idm_accuracy(idm, real_pairs, real_actions, model.device, n_actions)
    on_dream = idm_accuracy(idm, dream_pairs, dream_actions, model.device, n_actions)
    metrics["action_following"] = {
        "idm_accuracy_real": on_real["accuracy"],
        "idm_accuracy_dream": on_dream["accuracy"],
        "idm_balanced_real": on_real["balanced_accuracy"],
        "idm_balanced_dream": on_dream["balanced_accuracy"],
        "ratio": on_dream["accuracy"] / max(on_real["accuracy"], 1e-9),
        "chance": 1.0 / n_actions,
    }
    keep()

    if model.arch == "raster" or (config.state and model.game.size):
        say("encoding the split for teacher-forced scores")
        codes = encode_split(
            model.tokenizer,
            data,
            model.env,
            config.split,
            model.device,
            progress,
            config.teacher_episodes or None,
        )
        if model.arch == "raster":
            starts, mask = eval_windows(codes, model.prior.config.steps, limit=10_000)
            metrics["reward_termination"] = teacher_forced_metrics(
                model.prior, codes, starts, mask, model.device
            )
        else:
            metrics["state"] = state_suite(model, codes, store)
        keep()

    if checks is not None:
        say("checks against the real game")
        metrics["real_game"] = checks(model, out)
        keep()
    metrics["seconds"] = time.perf_counter() - t0

    plot_horizon(out / "psnr_horizon.png", metrics["open_loop"], s)
    curves = run_dir is not None and plot_training(out / "training_curves.png", run_dir)
    n = min(6, len(ol.real))
    write_gif(
        out / "real_vs_dream.gif",
        clip_grid(
            [
                np.concatenate([ol.context[:n], ol.real[:n]], 1),
                np.concatenate([ol.context[:n], ol.dream[:n]], 1),
            ]
        ),
    )
    write_gif(out / "reconstruction.gif", clip_grid([ol.real[:n], recon[:n]]))
    write_eval_report(out, metrics, curves)
    (out / PARTIAL).unlink(missing_ok=True)
    return metrics
