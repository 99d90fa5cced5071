"""Training settings per stage and preset (the model sizes are in ``worldmodel.config``)."""

from __future__ import annotations

from worldmodel.training.loop import TrainConfig

TRAIN_PRESETS: dict[str, dict[str, TrainConfig]] = {
    "vqvae": {
        "tiny": TrainConfig(
            steps=30, batch_size=4, lr=1e-3, warmup=5, eval_every=30, save_every=10
        ),
        "cpu": TrainConfig(steps=3000, batch_size=8, lr=6e-4, warmup=100, eval_every=250),
        "paper": TrainConfig(
            steps=100_000,
            batch_size=32,
            lr=3e-4,
            warmup=1000,
            eval_every=2500,
            save_every=1000,
            num_workers=4,
        ),
    },
    "prior": {
        "tiny": TrainConfig(
            steps=30, batch_size=4, lr=1e-3, warmup=5, eval_every=30, save_every=10
        ),
        "cpu": TrainConfig(
            steps=4000, batch_size=16, lr=6e-4, warmup=100, eval_every=500, weight_decay=0.01
        ),
        "paper": TrainConfig(
            steps=200_000,
            batch_size=32,
            lr=3e-4,
            warmup=2000,
            eval_every=5000,
            save_every=1000,
            weight_decay=0.01,
            num_workers=4,
        ),
    },
    # The frame-parallel prior: each of batch_size windows holds 2 x steps blocks.
    "frame": {
        "tiny": TrainConfig(
            steps=30, batch_size=4, lr=1e-3, warmup=5, eval_every=30, save_every=10
        ),
        "cpu": TrainConfig(
            steps=12000, batch_size=8, lr=1e-3, warmup=300, eval_every=1000, weight_decay=0.01
        ),
        "paper": TrainConfig(
            steps=200_000,
            batch_size=32,
            lr=3e-4,
            warmup=2000,
            eval_every=5000,
            save_every=1000,
            weight_decay=0.01,
            num_workers=4,
        ),
    },
    # Fine-tuning a trained decoder: a lower learning rate, and no gradient clipping, because
    # the decoder and discriminator share one optimizer and one global norm would couple them.
    "decoder": {
        "tiny": TrainConfig(
            steps=8, batch_size=2, lr=1e-3, warmup=2, eval_every=8, save_every=4, grad_clip=0.0
        ),
        "cpu": TrainConfig(
            steps=3000, batch_size=8, lr=1e-4, warmup=100, eval_every=250, grad_clip=0.0
        ),
        "paper": TrainConfig(
            steps=20_000,
            batch_size=16,
            lr=1e-4,
            warmup=500,
            eval_every=2000,
            save_every=500,
            grad_clip=0.0,
            num_workers=4,
        ),
    },
}
