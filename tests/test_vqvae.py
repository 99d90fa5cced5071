from __future__ import annotations

import dataclasses

import pytest
import torch

from worldmodel.config import VQVAE_PRESETS, VQVAEConfig
from worldmodel.tokenizer.quantizer import EMAQuantizer, ema_update
from worldmodel.tokenizer.stream import DecodeStream
from worldmodel.tokenizer.vqvae import VQVAE

TINY = VQVAE_PRESETS["tiny"]


def tiny(**changes) -> VQVAE:
    torch.manual_seed(0)
    return VQVAE(dataclasses.replace(TINY, **changes)).eval()


def clip(t: int, b: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, t, 64, 64, generator=g) - 0.5


@pytest.mark.parametrize("time_down", [1, 2, 4])
@pytest.mark.parametrize("space_down", [4, 8])
@pytest.mark.parametrize("causal", [True, False])
def test_shapes_for_every_downsampling(time_down: int, space_down: int, causal: bool) -> None:
    model = tiny(
        time_down=time_down, space_down=space_down, clip_len=8, causal=causal, time_kernel=3
    )
    x = clip(8, b=2)
    codes = model.encode(x)
    assert codes.shape == (2, 8 // time_down, 64 // space_down, 64 // space_down)
    assert codes.dtype == torch.int64 and int(codes.max()) < TINY.n_codes
    assert model.decode(codes).shape == x.shape
    model.train()
    out = model(x)
    assert out.recon.shape == x.shape and set(out.losses) == {"recon", "commit"}


@pytest.mark.parametrize("time_down", [1, 2])
def test_causal_tokenizer_never_looks_ahead(time_down: int) -> None:
    model = tiny(time_down=time_down, clip_len=8, time_kernel=3, time_window=3)
    x = clip(8)
    k = 5  # perturb frame 5: latent step 5 // time_down and later may change, earlier may not
    y = x.clone()
    y[:, :, k] += 0.3
    step = k // time_down
    zx, zy = model._encode(x), model._encode(y)
    assert torch.equal(zx[:, :, :step], zy[:, :, :step])
    assert not torch.allclose(zx[:, :, step], zy[:, :, step])
    codes = model.encode(x)
    changed = codes.clone()
    changed[:, step] = (changed[:, step] + 1) % TINY.n_codes
    fx, fy = model.decode(codes), model.decode(changed)
    first = step * time_down
    assert torch.equal(fx[:, :, :first], fy[:, :, :first])
    assert not torch.allclose(fx[:, :, first:], fy[:, :, first:])


def test_non_causal_tokenizer_does_look_ahead() -> None:
    model = tiny(causal=False, clip_len=8, time_kernel=3)
    x = clip(8)
    y = x.clone()
    y[:, :, 7] += 0.3
    assert not torch.allclose(model._encode(x)[:, :, :7], model._encode(y)[:, :, :7])


@pytest.mark.parametrize("time_down", [1, 2])
def test_streaming_decode_equals_full_decode(time_down: int) -> None:
    model = tiny(time_down=time_down, clip_len=8, time_kernel=3, time_window=2, n_blocks=2)
    codes = model.encode(clip(24))  # longer than the training clip: streaming is shift-invariant
    full = model.decode(codes)
    window = model.stream_window
    for j in range(window, codes.shape[1]):
        last = model.decode_last(codes[:, : j + 1])
        torch.testing.assert_close(
            last, full[:, :, j * time_down : (j + 1) * time_down], atol=1e-5, rtol=1e-5
        )


def test_ema_update_moves_codes_to_assigned_means() -> None:
    size = torch.tensor([1.0, 1.0])
    total = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    counts = torch.tensor([2.0, 0.0])
    sums = torch.tensor([[4.0, 2.0], [0.0, 0.0]])
    codebook = ema_update(size, total, counts, sums, decay=0.5, eps=0.0)
    torch.testing.assert_close(size, torch.tensor([1.5, 0.5]))
    torch.testing.assert_close(total, torch.tensor([[2.0, 1.0], [0.5, 0.5]]))
    torch.testing.assert_close(codebook, torch.tensor([[4 / 3, 2 / 3], [1.0, 1.0]]))


def test_codebook_starts_as_copies_of_encoder_outputs() -> None:
    torch.manual_seed(0)
    q = EMAQuantizer(8, 4, restart_threshold=0.0).train()
    z = torch.randn(100, 4)
    q(z)
    # each code moved by EMA towards assigned inputs; at init they were rows of z: check the
    # EMA sums were seeded from z by re-running init on a fresh quantizer
    q2 = EMAQuantizer(8, 4, restart_threshold=0.0).train()
    torch.manual_seed(1)
    q2._init_codebook(z)
    for row in q2.codebook:
        assert (z == row).all(1).any()
    assert bool(q2.initialized)


def test_dead_codes_restart_from_current_encoder_outputs() -> None:
    torch.manual_seed(0)
    q = EMAQuantizer(4, 2, decay=0.5, restart_threshold=0.5).train()
    q(torch.randn(64, 2))
    far = torch.full((2,), 1e3)
    q.codebook[3] = far  # nothing will be near code 3 again
    q.embed_sum[3] = far * q.cluster_size[3]
    z = torch.randn(64, 2)
    for _ in range(4):
        out = q(z)
    assert out.dead >= 0
    assert not torch.equal(q.codebook[3], far)
    assert torch.cdist(q.codebook[3:4], z).min() < 1.0  # restarted near current data


def test_tiny_model_overfits_one_batch() -> None:
    torch.manual_seed(0)
    model = VQVAE(dataclasses.replace(TINY, n_codes=64, code_dim=16, hidden=32)).train()
    h = torch.linspace(0, 1, 64)
    t = torch.arange(4.0)[:, None, None]
    frames = [
        torch.sin(6 * h[None, :, None] + 0.5 * t + c) * torch.cos(4 * h[None, None, :] - c)
        for c in range(3)
    ]  # smooth moving patterns: (T, H, W) per channel
    x = 0.4 * torch.stack(frames)[None].expand(2, -1, -1, -1, -1).clone()
    x[1] = x[1].flip(-1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(200):
        out = model(x)
        loss = out.losses["recon"] + out.losses["commit"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10


def test_config_rejects_bad_factors() -> None:
    with pytest.raises(ValueError, match="power of two"):
        VQVAEConfig(time_down=3)


@pytest.mark.parametrize("refine", [0, 2])
def test_per_frame_upsampling_equals_the_3d_layers(refine: int) -> None:
    model = tiny(hidden=32, decoder_refine=refine)
    for block in model.decoder.refine.modules():  # non-zero, so the blocks do something
        if isinstance(block, torch.nn.Conv2d):
            torch.nn.init.normal_(block.weight, std=0.1)
    assert model.decoder.per_frame
    h = torch.randn(2, 32, 3, 8, 8)
    expected = model.decoder.up(h) if not refine else model.decoder.upsample_3d(h)
    torch.testing.assert_close(model.decoder.upsample(h), expected)
    if refine:
        assert not torch.allclose(model.decoder.upsample(h), model.decoder.up(h))


STREAM_CONFIGS = {
    "cpu-like": {"time_window": 3, "n_blocks": 2},
    "time-kernel": {"time_window": 2, "n_blocks": 2, "time_kernel": 3},
    "time-down": {"time_window": 2, "time_down": 2, "time_kernel": 3, "clip_len": 8},
    "no-attention": {"attention": False, "time_kernel": 3, "n_blocks": 2},
    "refine": {"time_window": 3, "decoder_refine": 1},
    "refine-time-down": {"time_window": 2, "time_down": 2, "clip_len": 8, "decoder_refine": 1},
}


@pytest.mark.parametrize("name", STREAM_CONFIGS)
def test_stream_decode_equals_full_decode(name: str) -> None:
    model = tiny(**STREAM_CONFIGS[name])
    for p in model.decoder.refine.parameters():  # zero-initialised: make the blocks count
        torch.nn.init.normal_(p, std=0.1)
    td = model.config.time_down
    codes = torch.randint(
        0, TINY.n_codes, (3, 12, 8, 8), generator=torch.Generator().manual_seed(1)
    )
    full = model.decode(codes)
    stream = DecodeStream(model, 3)
    for j in range(codes.shape[1]):  # from an empty state, as at an episode's start
        torch.testing.assert_close(
            stream.step(codes[:, j]), full[:, :, j * td : (j + 1) * td], atol=1e-5, rtol=1e-5
        )
    primed = DecodeStream(model, 3)
    primed.prime(codes[:, :9])
    torch.testing.assert_close(
        primed.step(codes[:, 9]), full[:, :, 9 * td : 10 * td], atol=1e-5, rtol=1e-5
    )


def test_stream_rows_restart_from_their_own_history() -> None:
    model = tiny(time_window=3, n_blocks=2, time_kernel=3)
    g = torch.Generator().manual_seed(2)
    codes = torch.randint(0, TINY.n_codes, (3, 10, 8, 8), generator=g)
    other = torch.randint(0, TINY.n_codes, (1, 4, 8, 8), generator=g)  # a short new history
    stream = DecodeStream(model, 3)
    stream.prime(codes[:, :6])
    stream.step(codes[:, 6])
    stream.prime(other[:, :3], rows=[1])
    frames = stream.step(torch.cat([codes[0:1, 7], other[:, 3], codes[2:3, 7]]))
    torch.testing.assert_close(
        frames[[0, 2]], model.decode_last(codes[[0, 2], :8]), atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(frames[1:2], model.decode_last(other), atol=1e-5, rtol=1e-5)
