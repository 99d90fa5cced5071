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
import numpy as np


def plot_horizon(path: Path, psnr: np.ndarray, ssim: np.ndarray, frames_per_step: int) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    steps = np.arange(1, len(psnr) + 1)
    axes[0].plot(steps, psnr, marker="o")
    axes[0].set(xlabel="frames after the real context", ylabel="PSNR (dB)", title="PSNR vs horizon")
    axes[1].plot(steps, ssim, marker="o", color="tab:orange")
    axes[1].set(xlabel="frames after the real context", ylabel="SSIM", title="SSIM vs horizon")
    for ax in axes:
        ax.grid(alpha=0.3)
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


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def table(rows: dict[str, Any]) -> str:
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in rows.items()]
    return "\n".join(lines)


def write_report(
    out: Path, title: str, sections: list[tuple[str, str]], metrics: dict[str, Any]
) -> None:
    """``report.md`` (sections of Markdown) and ``metrics.json``, each written atomically."""
    text = f"# {title}\n\n" + "\n\n".join(f"## {h}\n\n{body}" for h, body in sections) + "\n"
    for name, content in (("report.md", text), ("metrics.json", json.dumps(metrics, indent=1))):
        tmp = out / (name + ".tmp")
        tmp.write_text(content)
        os.replace(tmp, out / name)
