"""The whole evaluation of a trained world model on a dataset split, written as a report."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from worldmodel.data import EpisodeStore
from worldmodel.evaluation.idm import dream_transitions, idm_accuracy, sample_transitions, train_idm
from worldmodel.evaluation.openloop import open_loop, reconstruct
from worldmodel.evaluation.report import plot_horizon, plot_training, table, write_report
from worldmodel.evaluation.teacher import eval_windows, teacher_forced_metrics
from worldmodel.metrics import psnr, ssim
from worldmodel.training.codes import encode_split
from worldmodel.training.media import clip_grid, write_gif
from worldmodel.world_model import WorldModel


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class EvalConfig:
    split: str = field(default="test", metadata=_help("dataset split to evaluate on"))
    clips: int = field(default=256, metadata=_help("clips for PSNR/SSIM/FVD (paper: 256)"))
    context: int | None = field(
        default=None, metadata=_help("real frames before the dream (default: half the window)")
    )
    horizon: int = field(default=16, metadata=_help("dreamed frames per clip (FVD needs >= 9)"))
    idm_steps: int = field(default=1500, metadata=_help("inverse-dynamics training steps"))
    idm_transitions: int = field(default=2000, metadata=_help("real held-out transitions"))
    temperature: float = field(default=1.0, metadata=_help("sampling temperature of the dream"))
    batch: int = field(default=16, metadata=_help("dreams run together"))
    seed: int = field(default=0, metadata=_help("seed of clip choice and sampling"))

    @classmethod
    def quick(cls) -> EvalConfig:
        return cls(clips=16, idm_steps=200, idm_transitions=300)


def _bar(desc: str, progress: bool):
    bar = tqdm(desc=desc, disable=not progress, unit="clip")

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
) -> dict[str, Any]:
    """Measure ``model`` on ``config.split`` of ``data``; write report.md, metrics.json, PNGs
    and GIFs into ``out`` and return the metrics."""
    from worldmodel.sampling import SamplingConfig

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    device = model.device
    s = model.frames_per_step
    store = EpisodeStore(data, config.split, env=model.env)
    context = config.context or max(s, model.prior.config.steps // 2 * s)
    metrics: dict[str, Any] = {
        "env": model.env,
        "split": config.split,
        "config": asdict(config),
        "context_frames": context,
    }

    real_r, recon = reconstruct(model, store, config.clips, config.seed, length=config.horizon)
    metrics["reconstruction"] = {
        "psnr": float(psnr(real_r, recon).mean()),
        "ssim": float(ssim(real_r, recon).mean()),
    }

    bar, update = _bar("dream open-loop", progress)
    ol = open_loop(
        model,
        store,
        config.clips,
        context,
        config.horizon,
        config.batch,
        config.seed,
        SamplingConfig(temperature=config.temperature),
        update,
    )
    bar.close()
    metrics["open_loop"] = {
        "psnr_per_frame": ol.psnr.tolist(),
        "ssim_per_frame": ol.ssim.tolist(),
        "psnr_mean": float(ol.psnr.mean()),
        "ssim_mean": float(ol.ssim.mean()),
    }

    if i3d is not None:
        from worldmodel.fvd import I3DFeatures, fvd

        extractor = I3DFeatures(i3d, device)
        metrics["fvd"] = {
            "dream_vs_real": fvd(ol.real, ol.dream, extractor),
            "reconstruction_vs_real": fvd(real_r, recon, extractor),
            "clips": len(ol.real),
            "frames": config.horizon,
        }

    n_actions = len(model.action_names)
    bar, update = _bar("inverse dynamics", progress)
    idm = train_idm(
        EpisodeStore(data, "train", env=model.env),
        n_actions,
        config.idm_steps,
        device,
        config.seed,
        progress=update,
    )
    bar.close()
    real_pairs, real_actions = sample_transitions(store, config.idm_transitions, config.seed + 1)
    dream_pairs, dream_actions = dream_transitions(ol.context, ol.dream, ol.actions)
    on_real = idm_accuracy(idm, real_pairs, real_actions, device, n_actions)
    on_dream = idm_accuracy(idm, dream_pairs, dream_actions, device, n_actions)
    metrics["action_following"] = {
        "idm_accuracy_real": on_real["accuracy"],
        "idm_accuracy_dream": on_dream["accuracy"],
        "idm_balanced_real": on_real["balanced_accuracy"],
        "idm_balanced_dream": on_dream["balanced_accuracy"],
        "ratio": on_dream["accuracy"] / max(on_real["accuracy"], 1e-9),
        "chance": 1.0 / n_actions,
    }

    codes = encode_split(model.tokenizer, data, model.env, config.split, device, progress)
    if model.arch == "raster":
        starts, mask = eval_windows(codes, model.prior.config.steps, limit=10_000)
        rt = teacher_forced_metrics(model.prior, codes, starts, mask, device)
    else:
        from worldmodel.evaluation.state import teacher_forced_state

        ev = teacher_forced_state(model.prior, codes, model.game, device)
        term = ev.termination()
        rt = {
            "bits_per_dim": float("nan"),
            "state_mae": float(ev.mae().mean()),
            "done_precision": term["precision"],
            "done_recall": term["recall"],
            "done_events": term["deaths"],
            "reward_mae": float("nan"),
        }
    metrics["reward_termination"] = rt
    metrics["seconds"] = time.perf_counter() - t0

    plot_horizon(out / "psnr_horizon.png", ol.psnr, ol.ssim, s)
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
    write_gif(out / "reconstruction.gif", clip_grid([real_r[:n], recon[:n]]))
    _write(out, model, metrics, curves)
    return metrics


def _write(out: Path, model: WorldModel, m: dict[str, Any], curves: bool) -> None:
    af, rt, ol = m["action_following"], m["reward_termination"], m["open_loop"]
    horizon_rows = "\n".join(
        f"| {i + 1} | {p:.2f} | {s:.3f} |"
        for i, (p, s) in enumerate(zip(ol["psnr_per_frame"], ol["ssim_per_frame"], strict=True))
    )
    fvd = m.get("fvd")
    idm = f"{af['idm_accuracy_real']:.3f} / {af['idm_accuracy_dream']:.3f} ({af['chance']:.3f})"
    ends = f"{rt['done_precision']:.3f} / {rt['done_recall']:.3f} ({rt['done_events']} endings)"
    sections = [
        (
            "Summary",
            table(
                {
                    "tokenizer reconstruction PSNR (dB)": m["reconstruction"]["psnr"],
                    "tokenizer reconstruction SSIM": m["reconstruction"]["ssim"],
                    "open-loop PSNR, mean over the dreamed frames (dB)": ol["psnr_mean"],
                    "open-loop SSIM, mean": ol["ssim_mean"],
                    "FVD dream vs real": fvd["dream_vs_real"] if fvd else "not computed (no --i3d)",
                    "FVD reconstruction vs real": fvd["reconstruction_vs_real"] if fvd else "n/a",
                    "IDM accuracy real / dream (chance)": idm,
                    "bits/dim (teacher-forced)": rt["bits_per_dim"],
                    "reward MAE per step": rt["reward_mae"],
                    "termination precision / recall": ends,
                }
            ),
        ),
        (
            "Setup",
            f"env `{m['env']}`, split `{m['split']}`, {m['config']['clips']} clips, "
            f"{m['context_frames']} real context frames, {m['config']['horizon']} dreamed "
            f"frames under the real actions, temperature {m['config']['temperature']}; "
            f"FVD with the TF-Hub I3D on {m['config']['horizon']}-frame clips "
            f"({fvd['clips'] if fvd else 0} per set: FVD is biased upward for small sets, "
            f"compare only equal sizes). Took {m['seconds']:.0f} s.",
        ),
        (
            "Open-loop prediction per frame",
            "![PSNR vs horizon](psnr_horizon.png)\n\n"
            "| frame | PSNR (dB) | SSIM |\n|---|---|---|\n" + horizon_rows,
        ),
        (
            "Real vs dream",
            "Top: real (context, then what really happened). Bottom: the same "
            "context, then the dream under the same actions.\n\n![real vs dream](real_vs_dream.gif)"
            "\n\nTokenizer reconstructions (top real, bottom reconstructed):\n\n"
            "![reconstruction](reconstruction.gif)",
        ),
        (
            "Action-following",
            table(af) + "\n\nAn inverse-dynamics model trained on real "
            "transitions guesses the action between two frames; its accuracy on dreamed "
            "transitions, next to real held-out ones, says how well the dream obeys the keys.",
        ),
        ("Reward and termination", table(rt)),
    ]
    if curves:
        sections.append(("Training curves", "![training curves](training_curves.png)"))
    write_report(out, f"World model evaluation: {model.env}", sections, m)
