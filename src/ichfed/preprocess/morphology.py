"""Shapes and boxes in voxels for morphology in mm: used by the brain mask, patch sampling,
post-processing and prediction alike, so they live apart from any one of them."""

import numpy as np


def disk(radius_mm: float, spacing: tuple[float, ...]) -> np.ndarray:
    """An in-plane (elliptical in voxels) disk of `radius_mm`, one slice thick, at least one
    voxel in radius: morphology in mm on slices that may be far thicker than their pixels."""
    rx, ry = (max(1, int(round(radius_mm / s))) for s in spacing[:2])
    x, y = np.ogrid[-rx:rx + 1, -ry:ry + 1]
    return ((x / rx) ** 2 + (y / ry) ** 2 <= 1)[:, :, None]


def bounding_box(mask: np.ndarray, margin: int | tuple[int, ...] = 0) -> tuple[slice, ...]:
    """The mask's bounding box grown by `margin` voxels (per axis when a tuple), clipped to the
    volume; the whole volume when the mask is empty."""
    if not mask.any():
        return tuple(slice(0, n) for n in mask.shape)
    # each axis' projection: 6x faster than np.argwhere on a head's mask
    hits = [np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
            for axis in range(mask.ndim)]
    lo = np.maximum(np.array([h[0] for h in hits]) - np.asarray(margin), 0)
    hi = np.minimum(np.array([h[-1] for h in hits]) + np.asarray(margin) + 1, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
