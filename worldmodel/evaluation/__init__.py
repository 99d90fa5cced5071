"""Measuring the world model: fidelity, FVD, action-following, reward and termination."""
