"""Drawing a game variable's next value from the frame prior's state logits."""

from __future__ import annotations

import math

import torch

from worldmodel.prior.state_delta import apply_change, offset
from worldmodel.sampling.draw import sample_logits
from worldmodel.sampling.settings import SamplingConfig


def draw_state(
    logits: torch.Tensor,
    previous: torch.Tensor,
    sampling: SamplingConfig,
    generator: torch.Generator | None,
    delta: bool,
    odds: float = 1.0,
) -> torch.Tensor:
    """The next bin (B,) of a variable from its logits (B, classes) and its previous bin (B,).

    ``delta``: the classes are changes centred on "no change" (``worldmodel.prior.state_delta``),
    so the bin is the previous one changed. ``odds``: every outcome but "no change" gains that
    factor of odds. ``sampling.state_temperature``, where set, replaces the code temperature.
    """
    if sampling.state_temperature is not None:
        sampling = SamplingConfig(temperature=sampling.state_temperature)
    classes = logits.shape[-1]
    if odds == 1.0:
        drawn = sample_logits(logits, sampling, generator)
    else:
        greedy = sampling.temperature <= 0
        logits = logits.float() / (1.0 if greedy else sampling.temperature)
        unchanged = torch.full_like(previous, offset(classes)) if delta else previous
        changed = torch.ones_like(logits, dtype=torch.bool).scatter_(1, unchanged[:, None], False)
        logits = logits + changed * math.log(odds)
        drawn = sample_logits(logits, SamplingConfig(temperature=0.0 if greedy else 1.0), generator)
    return apply_change(previous, drawn, classes) if delta else drawn
