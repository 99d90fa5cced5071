"""Game variables as changes: targets, the new value, and the chance of reaching 0."""

from __future__ import annotations

import torch

from worldmodel.prior.state_delta import IGNORE, apply_change, change_targets, zero_probability


def test_changes_round_trip_and_ignore_steps_with_no_value_before() -> None:
    vocab = (201, 101)  # HEALTH, KILLCOUNT
    before = torch.tensor([[[100, 3], [-1, -1], [12, 0]]])
    after = torch.tensor([[[84, 4], [90, 0], [0, 0]]])
    classes = change_targets(after, before, vocab)
    assert classes[0, 0].tolist() == [100 - 16, 50 + 1]
    assert classes[0, 1].tolist() == [IGNORE, IGNORE]
    assert classes[0, 2].tolist() == [100 - 12, 50]
    for v, n in enumerate(vocab):
        kept = classes[0, [0, 2], v]
        assert apply_change(before[0, [0, 2], v], kept, n).tolist() == after[0, [0, 2], v].tolist()
    # a change past the ends is clamped: no health above 200 or below 0
    assert apply_change(torch.tensor([195, 5]), torch.tensor([120, 60]), 201).tolist() == [200, 0]


def test_zero_probability_sums_every_change_that_reaches_zero() -> None:
    probs = torch.zeros(2, 201)
    probs[:, 100] = 0.7  # no change
    probs[:, 100 - 16] = 0.2  # a bite of 16
    probs[:, 100 - 40] = 0.1  # a bite of 40
    p = zero_probability(probs, torch.tensor([12, 30]), 201)
    assert torch.allclose(p, torch.tensor([0.3, 0.1]))
