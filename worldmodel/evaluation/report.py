"""The evaluation report: plots (PNG), GIFs and a Markdown page with the metric tables."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt

from worldmodel.evaluation.report_sections import sections


def plot_horizon(path: Path, open_loop: dict[str, Any], frames_per_step: int) -> None:
    """PSNR and SSIM per dreamed frame, each beside freezing the last context frame."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, key, label in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ssim", "SSIM")):
        dream = open_loop[f"{key}_per_frame"]
        steps = range(1, len(dream) + 1)
        ax.plot(steps, dream, marker="o", label="dream")
        ax.plot(steps, open_loop[f"frozen_{key}_per_frame"], ls="--", label="frozen last frame")
        ax.set(xlabel="frames after the real context", ylabel=label, title=f"{label} vs horizon")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """All scalars of a TensorBoard log folder: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def plot_training(path: Path, run_dir: Path) -> bool:
    """Training curves of the run next to the checkpoint, if its TensorBoard logs are there."""
    panels = [
        ("vqvae", "val/psnr", "tokenizer: val PSNR (dB)"),
        ("vqvae", "train/recon", "tokenizer: train normalised MSE"),
        ("prior", "val/bits_per_dim", "prior: val bits/dim"),
        ("prior", "train/ce", "prior: train cross-entropy (nats)"),
    ]
    found = []
    for stage, tag, title in panels:
        log = run_dir / "tb" / stage
        if log.exists():
            series = read_scalars(log).get(tag)
            if series:
                found.append((title, series))
    if not found:
        return False
    cols = min(2, len(found))
    rows = math.ceil(len(found) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.0 * rows), squeeze=False)
    for ax, (title, series) in zip(axes.flat, found, strict=False):
        steps, values = zip(*series, strict=True)
        ax.plot(steps, values)
        ax.set(title=title, xlabel="step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(found) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _write_atomic(path: Path, content: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content)
    os.replace(tmp, path)


def write_json(path: Path, metrics: dict[str, Any]) -> None:
    """``metrics`` as indented JSON, written atomically (a reader never sees half a file)."""
    _write_atomic(path, json.dumps(metrics, indent=1))


def write_report(
    out: Path, title: str, parts: list[tuple[str, str]], metrics: dict[str, Any]
) -> None:
    """``report.md`` (sections of Markdown) and ``metrics.json``, each written atomically."""
    text = f"# {title}\n\n" + "\n\n".join(f"## {h}\n\n{body}" for h, body in parts) + "\n"
    _write_atomic(out / "report.md", text)
    write_json(out / "metrics.json", metrics)


def write_eval_report(out: Path, metrics: dict[str, Any], curves: bool) -> None:
    """The report of :func:`worldmodel.evaluation.pipeline.evaluate`'s metrics."""
    parts = sections(metrics)
    if curves:
        parts.append(("Training curves", "![training curves](training_curves.png)"))
    title = f"World model evaluation: {metrics['env']} ({metrics['arch']} prior)"
    write_report(out, title, parts, metrics)
