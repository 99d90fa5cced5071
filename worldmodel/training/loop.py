"""The training loop both stages share: resume, schedule, progress, TensorBoard, DDP, bf16.

A *stage* (tokenizer or prior) supplies the model, the batches, the loss and the evaluation;
this module owns everything else. Checkpoints are written every ``save_every`` steps, at the
end, and on Ctrl-C, atomically, so a kill at any moment loses at most ``save_every`` steps and
``--resume`` continues the same run: data order and random state are restored exactly.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from worldmodel import precision
from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.cli.args import UserError
from worldmodel.cli.progress import progress_bar


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class TrainConfig:
    steps: int = field(default=2000, metadata=_help("optimizer steps in total"))
    batch_size: int = field(default=8, metadata=_help("clips per step (per GPU under DDP)"))
    lr: float = field(default=3e-4, metadata=_help("peak learning rate (AdamW)"))
    warmup: int = field(default=100, metadata=_help("linear warm-up steps"))
    min_lr_ratio: float = field(default=0.1, metadata=_help("cosine decay ends at lr * this"))
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay"))
    grad_clip: float = field(default=1.0, metadata=_help("gradient norm clip (0: off)"))
    eval_every: int = field(default=500, metadata=_help("steps between evaluations"))
    save_every: int = field(default=100, metadata=_help("steps between checkpoints"))
    log_every: int = field(default=10, metadata=_help("steps between TensorBoard points"))
    minutes: float | None = field(default=None, metadata=_help("stop after this wall time"))
    seed: int = field(default=0, metadata=_help("seed of init, data order and sampling"))
    num_workers: int = field(default=0, metadata=_help("data loader worker processes"))
    precision: str = field(
        default="fp32",
        metadata=_help(
            "fp32, or bf16: autocast on a CPU with bf16 units (AMX/AVX512-BF16), ~1.4x faster "
            "there (docs/BENCHMARKS.md); GPUs always train in bf16 autocast"
        ),
    )


class Stage(Protocol):
    """What a model stage gives the loop."""

    name: str
    model: nn.Module

    def batches(
        self, start: int, batch_size: int, seed: int, rank: int, world: int
    ) -> Iterator[Any]:
        """Batches for steps ``start, start + 1, ...`` (the same for the same step and seed)."""
        ...

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]: ...

    def evaluate(self, step: int) -> dict[str, float]:
        """Validation metrics (rank 0 only); may also write media next to the checkpoint."""
        ...

    def payload(self) -> dict[str, Any]:
        """Checkpoint fields besides weights and training state: kind, env, config, ..."""
        ...

    def check_resume(self, blob: dict[str, Any]) -> None:
        """Raise CheckpointError if ``blob`` is not a run of this stage and config."""
        ...


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_runtime(device: str = "auto") -> Runtime:
    """Pick the device; under ``torchrun`` join the process group (NCCL on GPU, else gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "--device cuda was asked for, but this machine has no CUDA GPU; use --device cpu"
        )
    if world > 1:
        rank = int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device == "cuda":
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device == "cuda" else "gloo")
        dev = torch.device(device, local) if device == "cuda" else torch.device(device)
        return Runtime(dev, rank, world)
    return Runtime(torch.device(device))


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``lr * min_lr_ratio`` at ``steps``."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = min(1.0, (step - config.warmup) / max(1, config.steps - config.warmup))
    ratio = config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (
        1 + math.cos(math.pi * progress)
    )
    return config.lr * ratio


def _rng_state(runtime: Runtime) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if runtime.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(runtime.device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], runtime: Runtime) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and runtime.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], runtime.device)


class _Writer:
    """TensorBoard on rank 0 only; a no-op elsewhere."""

    def __init__(self, log_dir: Path | None, enabled: bool) -> None:
        self.tb = None
        if enabled and log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(log_dir))

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(f"{prefix}/{key}", value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def train(
    stage: Stage,
    config: TrainConfig,
    checkpoint: Path,
    runtime: Runtime,
    resume: bool = False,
    log_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Train ``stage.model`` to ``config.steps`` steps; return the last evaluation's metrics."""
    model = stage.model.to(runtime.device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=(0.9, 0.95), weight_decay=config.weight_decay
    )
    start, metrics = 0, {}
    # minutes spent before this process (a resumed run's earlier sessions), so that the cost a
    # checkpoint reports is the whole run's
    spent = {"train_minutes": 0.0, "cpu_minutes": 0.0}
    if checkpoint.exists() and not resume:
        raise CheckpointError(
            f"{checkpoint} already exists; pass --resume to continue it, or choose another --out"
        )
    if resume:
        if not checkpoint.exists():
            raise CheckpointError(f"--resume: no checkpoint at {checkpoint} to continue")
        blob = load_checkpoint(checkpoint, stage.name)
        stage.check_resume(blob)
        model.load_state_dict(blob["model"])
        optimizer.load_state_dict(blob["optimizer"])
        _set_rng_state(blob["rng"], runtime)
        start, metrics = int(blob["step"]), dict(blob.get("metrics", {}))
        # checkpoints older than the clock record only their last evaluation's minutes
        spent = {k: float(blob.get("clock", metrics).get(k, 0.0)) for k in spent}
    else:
        torch.manual_seed(config.seed)
    wrapped: nn.Module = model
    if runtime.world > 1:
        ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        wrapped = DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)
    autocast = precision.autocast(runtime.device, config.precision)
    writer = _Writer(log_dir, runtime.main)

    def save(step: int) -> None:
        if runtime.main:
            save_checkpoint(
                checkpoint,
                {
                    **stage.payload(),
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": step,
                    "rng": _rng_state(runtime),
                    "train_config": dataclasses.asdict(config),
                    "metrics": metrics,
                    "clock": clock(),
                },
            )

    def clock() -> dict[str, float]:
        """The whole run's wall and CPU minutes so far (CPU: every thread of this process and
        of the sessions before it; comparable on a shared machine)."""
        return {
            "train_minutes": spent["train_minutes"] + (time.perf_counter() - t0) / 60,
            "cpu_minutes": spent["cpu_minutes"] + (time.process_time() - cpu0) / 60,
        }

    t0, cpu0 = time.perf_counter(), time.process_time()
    deadline = t0 + config.minutes * 60 if config.minutes else None
    bar = progress_bar(
        config.steps, f"train {stage.name}", "step", progress and runtime.main, start
    )
    step = start
    batches = stage.batches(start, config.batch_size, config.seed, runtime.rank, runtime.world)
    model.train()
    try:
        while step < config.steps:
            lr = lr_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = next(batches)
            with autocast:
                loss, logs = stage.loss(wrapped, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                logs["grad_norm"] = float(
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                )
            optimizer.step()
            step += 1
            bar.update(1)
            if step % config.log_every == 0 or step == config.steps:
                bar.set_postfix(
                    {
                        k: f"{v:.3g}"
                        for k, v in logs.items()
                        if k in ("loss", "recon", "bits_per_dim")
                    }
                )
                writer.scalars("train", {**logs, "lr": lr}, step)
            out_of_time = deadline is not None and time.perf_counter() > deadline
            if runtime.main and (
                step % config.eval_every == 0 or step == config.steps or out_of_time
            ):
                model.eval()
                metrics = {
                    **stage.evaluate(step),
                    "step": step,
                    **clock(),
                }
                model.train()
                writer.scalars("val", metrics, step)
            if step % config.save_every == 0 or step == config.steps or out_of_time:
                save(step)
            if out_of_time:
                break
    except KeyboardInterrupt:
        save(step)
        raise
    finally:
        bar.close()
        writer.close()
    return metrics
