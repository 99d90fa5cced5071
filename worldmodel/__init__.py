"""The VideoGen world model: a video VQ-VAE, an action-conditioned GPT prior, and the dream."""
