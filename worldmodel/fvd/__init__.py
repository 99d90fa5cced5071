"""Fréchet Video Distance with the TF-Hub I3D, matching the reference implementation."""

from worldmodel.fvd.fvd import (
    I3DFeatures,
    feature_stats,
    frechet_distance,
    fvd,
    preprocess,
    tf1_resize_bilinear,
)
from worldmodel.fvd.i3d import InceptionI3d

__all__ = [
    "I3DFeatures",
    "InceptionI3d",
    "feature_stats",
    "frechet_distance",
    "fvd",
    "preprocess",
    "tf1_resize_bilinear",
]
