"""Fine-tune only the tokenizer's decoder, codes frozen, with an optional adversarial loss.

MSE-trained decoders average away texture (the shipped tokenizer scores 29 dB PSNR yet a
reconstruction FVD far above real-vs-real). This stage starts from a trained tokenizer, keeps
its encoder, pre_quant and codebook bit-identical (so a prior trained on its codes still fits)
and trains the decoder on the cached codes of the dataset to reconstruct the real frames:
normalised MSE (+ optional L1), and, when ``adversarial`` is on, a hinge loss against a small
patch discriminator trained here from scratch, with feature matching on its activations.

The adversarial terms are ``worldmodel.training.adversarial``'s. Both networks share the
training loop's single AdamW: the adversarial term is computed with the discriminator's
weights frozen, so each network gets only its own loss's gradient in one backward pass.

With ``context`` it trains the context decoder (``worldmodel.tokenizer.context``) instead, on
rollouts over its own painted frames (:meth:`DecoderStage._rollout`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.checkpoint import CheckpointError, load_checkpoint
from worldmodel.config import DECODER_FIELDS, VQVAEConfig, from_dict, to_dict
from worldmodel.data import EpisodeStore
from worldmodel.data.codes import CodeSet, cached_codes
from worldmodel.evaluation.media import clip_grid, write_gif
from worldmodel.evaluation.metrics import detail, psnr, ssim
from worldmodel.frames import to_model, to_uint8
from worldmodel.tokenizer.discriminator import PatchDiscriminator
from worldmodel.tokenizer.swap import TOKENIZER_KINDS, frozen_fingerprint, is_frozen, read_tokenizer
from worldmodel.tokenizer.vqvae import VQVAE
from worldmodel.training.adversarial import discriminator_terms, gan_factor, generator_terms
from worldmodel.training.batches import evenly_spaced, step_batches


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class DecoderTuneConfig:
    adversarial: bool = field(
        default=True, metadata=_help("adversarial + feature-matching loss (False: MSE only)")
    )
    window: int = field(default=8, metadata=_help("latent steps of code context per window"))
    loss_steps: int = field(default=4, metadata=_help("last steps of a window decoded and scored"))
    l1_weight: float = field(default=0.0, metadata=_help("weight of an L1 pixel loss"))
    adv_weight: float = field(default=0.5, metadata=_help("adversarial / recon gradient ratio"))
    fm_weight: float = field(default=1.0, metadata=_help("weight of feature matching"))
    gan_start: int = field(default=200, metadata=_help("steps before the decoder's GAN terms"))
    gan_ramp: int = field(default=200, metadata=_help("steps over which they ramp up to full"))
    disc_channels: int = field(default=32, metadata=_help("discriminator's first-layer width"))
    disc_layers: int = field(default=3, metadata=_help("discriminator's stride-2 layers"))
    disc_temporal: bool = field(
        default=False, metadata=_help("discriminator also sees frame differences (flicker)")
    )
    context: bool = field(
        default=False,
        metadata=_help(
            "train the context decoder (vqvae.context_width > 0) instead: each window's first "
            "frame is real, the rest are painted over the decoder's own last frame"
        ),
    )
    teacher: float = field(
        default=0.3,
        metadata=_help(
            "context: share of steps painted over the real frame before them instead of the "
            "decoder's own, after teacher_steps (it falls there from 1)"
        ),
    )
    teacher_steps: int = field(
        default=1000, metadata=_help("context: steps over which that share falls to teacher")
    )
    align_weight: float = field(
        default=1.0,
        metadata=_help("context: weight of the aligned previous frame's own L1 loss (the flow)"),
    )

    def __post_init__(self) -> None:
        if not 1 <= self.loss_steps <= self.window:
            raise ValueError(f"loss_steps must be in [1, window={self.window}]")
        if self.context and self.window < 2:
            raise ValueError("a context window needs at least 2 steps")
        if not 0.0 <= self.teacher <= 1.0:
            raise ValueError(f"teacher must be in [0, 1], got {self.teacher}")


class DecoderGAN(nn.Module):
    """The tokenizer being fine-tuned and, if adversarial, its discriminator. ``context``:
    only the context decoder trains (the 3D decoder stays as it is)."""

    def __init__(
        self, tokenizer: VQVAE, disc: PatchDiscriminator | None, context: bool = False
    ) -> None:
        super().__init__()
        self.tokenizer, self.disc = tokenizer, disc
        for name, p in tokenizer.named_parameters():
            trains = name.startswith("context.") if context else not is_frozen(name)
            p.requires_grad_(trains)


def load_base(path: Path, env: str) -> tuple[dict[str, Any], VQVAEConfig, dict[str, torch.Tensor]]:
    """The checkpoint ``path`` (any kind holding a tokenizer), its tokenizer config and weights."""
    blob = load_checkpoint(path, TOKENIZER_KINDS, env)
    config, state, _ = read_tokenizer(blob)
    return blob, from_dict(VQVAEConfig, config), state


class CodeFrameWindows:
    """Windows of ``steps`` consecutive latent steps of a split: cached codes + real frames.

    Item: ``codes`` (steps, H', W') int64 and ``frames`` (steps * s, H, W, 3) uint8.
    """

    def __init__(self, store: EpisodeStore, codes: CodeSet, steps: int, s: int) -> None:
        self.store, self.codes, self.steps, self.s = store, codes, steps, s
        self.starts = codes.window_starts(steps)
        self.position = {entry.index: pos for pos, entry in enumerate(store.entries)}

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        g = int(self.starts[i])
        e = int(np.searchsorted(self.codes.starts, g, side="right")) - 1
        j = g - int(self.codes.starts[e])  # first step within its episode
        pos = self.position[int(self.codes.episodes[e])]
        frames = self.store.read(pos, j * self.s, (j + self.steps) * self.s)["frames"]
        return {"codes": self.codes.codes[g : g + self.steps].astype(np.int64), "frames": frames}


class DecoderStage:
    name = "decoder"

    def __init__(
        self,
        env: str,
        data: Path,
        base: Path,
        config: VQVAEConfig,
        tune: DecoderTuneConfig,
        preset: str,
        out_dir: Path,
        device: torch.device,
        eval_clips: int = 64,
        workers: int = 0,
        progress: bool = True,
    ) -> None:
        """``config`` is the base tokenizer's config with any decoder fields changed."""
        self.env, self.preset, self.out_dir, self.device = env, preset, out_dir, device
        self.base, self.tune, self.workers = base, tune, workers
        blob, base_config, state = load_base(base, env)
        changed = [
            f.name
            for f in dataclasses.fields(VQVAEConfig)
            if f.name not in DECODER_FIELDS
            and getattr(config, f.name) != getattr(base_config, f.name)
        ]
        if changed:
            raise CheckpointError(
                f"only decoder fields ({', '.join(DECODER_FIELDS)}) may differ from the base "
                f"tokenizer; {', '.join(changed)} would change the codes"
            )
        if not config.causal:
            raise CheckpointError("the decoder stage needs a causal tokenizer")
        if tune.context and not config.context_width:
            raise CheckpointError(
                "decoder.context trains the context decoder: give it a width, e.g. "
                "--set vqvae.context_width=16"
            )
        self.config = config
        tokenizer = VQVAE(config)
        missing, unexpected = tokenizer.load_state_dict(state, strict=False)
        if unexpected or any(is_frozen(k) for k in missing):
            raise CheckpointError(f"{base} does not fit this tokenizer ({missing + unexpected})")
        disc = None
        if tune.adversarial:
            disc = PatchDiscriminator(tune.disc_channels, tune.disc_layers, tune.disc_temporal)
        self.model = DecoderGAN(tokenizer, disc, tune.context)
        self.fingerprint = frozen_fingerprint(state)
        self.base_info = {"path": str(base), "kind": blob["kind"], "step": read_tokenizer(blob)[2]}
        self.action_names = list(blob["action_names"])
        tokenizer_id = {"fingerprint": self.fingerprint}
        s = config.time_down
        sets = {}
        for split in ("train", "val"):
            store = EpisodeStore(data, split, env=env)
            codes = cached_codes(
                tokenizer.eval(), tokenizer_id, data, env, split, out_dir, device, progress
            )
            sets[split] = CodeFrameWindows(store, codes, tune.window, s)
        self.train_set, self.val_set = sets["train"], sets["val"]
        self.eval_index = evenly_spaced(len(self.val_set), eval_clips)

    def batches(
        self, start: int, batch_size: int, seed: int, rank: int, world: int
    ) -> Iterator[Any]:
        loader = step_batches(self.train_set, start, batch_size, seed, rank, self.workers)
        for step, batch in enumerate(loader, start):
            yield step, batch["codes"].to(self.device), to_model(batch["frames"], self.device)

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        step, codes, frames = batch
        tok, disc, t = model.tokenizer, model.disc, self.tune
        align = None
        if t.context:
            recon, real, align = self._rollout(tok, codes, frames, step)
        else:
            recon = tok.decode_latents(tok.embed_codes(codes), keep=t.loss_steps)
            real = frames[:, :, -recon.shape[2] :]  # (B, 3, keep*s, H, W)
        rec = F.mse_loss(recon, real) / tok.data_variance
        logs = {"recon": float(rec.detach())}
        if t.l1_weight > 0:
            l1 = (recon - real).abs().mean()
            rec = rec + t.l1_weight * l1
            logs["l1"] = float(l1.detach())
        loss = rec
        if align is not None and t.align_weight > 0:
            loss = loss + t.align_weight * align
            logs["align"] = float(align.detach())
        if disc is not None:
            d_loss, real_features, d_logs = discriminator_terms(disc, real, recon)
            logs.update(d_logs)
            factor = gan_factor(step, t.gan_start, t.gan_ramp)
            if factor > 0:
                last = tok.context.out.weight if t.context else tok.decoder.up[-1].conv.weight
                g_loss, g_logs = generator_terms(
                    disc, recon, rec, real_features, last, t.adv_weight, t.fm_weight
                )
                loss = loss + factor * g_loss
                logs.update(g_logs)
            loss = loss + d_loss
        logs["loss"] = float(loss.detach())
        return loss, logs

    def _rollout(
        self, tok: VQVAE, codes: torch.Tensor, frames: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Painted frames and their real ones (B, 3, T, H, W) of a context-decoder window, and
        the alignment loss (the aligned previous frames against the real ones, L1).

        Step 0 is painted from its codes alone (the plain decoder's frame, which the context
        decoder refines: computed here over the whole window); each later step over the frame
        before it:
        the real one or the decoder's own last output (detached, as a dream shows it). A
        decoder that reads its own output must learn on it, or errors compound; but at first
        its output is worthless and it would learn to ignore the frame altogether, so the
        share painted over real frames starts at 1 and falls to ``teacher``. The gate that
        mixes in the aligned frame would also shut before the flow has learned anything (a
        misaligned frame only hurts), and a shut gate passes the flow no gradient: the aligned
        frame is therefore scored on its own too (``align_weight``)."""
        t = self.tune
        share = t.teacher + (1.0 - t.teacher) * max(0.0, 1.0 - step / max(1, t.teacher_steps))
        b = codes.shape[0]
        with torch.no_grad():  # the plain decoder's frames: frozen here
            base = tok.decode_latents(tok.embed_codes(codes))
        have = torch.ones(b, dtype=torch.bool, device=codes.device)
        none = torch.zeros_like(frames[:, :, 0])
        out = [tok.paint(codes[:, 0], codes[:, 0], none, ~have, base[:, :, 0])]
        align = []
        for i in range(1, codes.shape[1]):
            real = torch.rand(b, device=codes.device) < share
            previous = torch.where(real[:, None, None, None], frames[:, :, i - 1], out[-1].detach())
            frame, aligned = tok.paint(
                codes[:, i], codes[:, i - 1], previous, have, base[:, :, i], aligned=True
            )
            out.append(frame)
            align.append((aligned - frames[:, :, i]).abs().mean())
        align_loss = torch.stack(align).mean() / tok.data_variance.sqrt()
        return torch.stack(out, 2), frames, align_loss

    @torch.no_grad()
    def evaluate(self, step: int) -> dict[str, float]:
        """Reconstructions of the validation windows from their codes alone; a context
        decoder is also scored over a real first frame (``*_ctx``: how a dream starts)."""
        tok = self.model.tokenizer
        real, recon, ctx = [], [], []
        for i in range(0, len(self.eval_index), 16):
            items = [self.val_set[j] for j in self.eval_index[i : i + 16]]
            codes = torch.as_tensor(np.stack([it["codes"] for it in items]), device=self.device)
            frames = np.stack([it["frames"] for it in items])
            real.append(frames)
            recon.append(to_uint8(tok.decode(codes)))
            if self.tune.context:
                first = to_model(frames[:, :1], self.device)[:, :, 0]
                base = tok.decode_latents(tok.embed_codes(codes))[:, :, 1:]
                ctx.append(to_uint8(tok.paint_clip(codes[:, 1:], first, codes[:, 0], base)))
        real_a, recon_a = np.concatenate(real), np.concatenate(recon)
        write_gif(
            self.out_dir / "samples" / f"decoder_{step:07d}.gif",
            clip_grid([real_a[:6], recon_a[:6]]),
        )
        metrics = {
            "psnr": float(psnr(real_a, recon_a).mean()),
            "ssim": float(ssim(real_a, recon_a).mean()),
            "detail_ratio": detail(recon_a) / detail(real_a),
        }
        if ctx:
            ctx_a, later = np.concatenate(ctx), real_a[:, 1:]
            metrics.update(
                psnr_ctx=float(psnr(later, ctx_a).mean()),
                detail_ratio_ctx=detail(ctx_a) / detail(later),
            )
        return metrics

    def payload(self) -> dict[str, Any]:
        return {
            "kind": "decoder",
            "env": self.env,
            "preset": self.preset,
            "action_names": self.action_names,
            "config": to_dict(self.config),
            "tune_config": to_dict(self.tune),
            "base": {**self.base_info, "fingerprint": self.fingerprint},
        }

    def check_resume(self, blob: dict[str, Any]) -> None:
        mine = self.payload()
        for key in ("env", "config", "tune_config"):
            if blob.get(key) != mine[key]:
                raise CheckpointError(
                    f"cannot resume: the checkpoint's {key} differs from this run's; use the "
                    "same flags, or a new --out"
                )
        if blob["base"]["fingerprint"] != self.fingerprint:
            raise CheckpointError("cannot resume: the checkpoint was tuned from another tokenizer")
