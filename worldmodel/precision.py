"""Mixed precision for training: bf16 autocast on GPUs, and on CPUs that have bf16 units.

On a CPU with AMX or AVX512-BF16 (``/proc/cpuinfo`` flags ``amx_bf16``, ``avx512_bf16``) a
bf16 matmul runs ~8x faster than fp32; on one without, bf16 is emulated and far slower, so
bf16 on the CPU is asked for (``--precision bf16``), never assumed. Attention is the one
exception inside an autocast region: the CPU's bf16 attention backward is ~5x slower than its
fp32 one (docs/BENCHMARKS.md, "Training in bf16 on the CPU"), so :func:`attention` runs it in
fp32. The EMA codebook quantises in fp32 too (``worldmodel.tokenizer.quantizer``).
"""

from __future__ import annotations

import contextlib
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F

PRECISIONS = ("fp32", "bf16")
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@cache
def cpu_bf16_units(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bf16 natively (False where its flags cannot be read)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return any(flag in line.split() for flag in BF16_FLAGS)
    return False


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The training step's autocast region: bf16 on CUDA always (as ever), on the CPU when
    ``precision`` is ``bf16``; otherwise nothing."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    **kwargs,
) -> torch.Tensor:
    """``scaled_dot_product_attention``, in fp32 inside a CPU autocast region (see above)."""
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            if attn_mask is not None and attn_mask.is_floating_point():
                attn_mask = attn_mask.float()
            return F.scaled_dot_product_attention(
                q.float(), k.float(), v.float(), attn_mask=attn_mask, **kwargs
            )
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, **kwargs)
