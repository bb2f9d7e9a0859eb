"""Smooth random fields in head coordinates, sampled at arbitrary points.

A field is a small 3D grid of filtered white noise (unit SD) over the head's box; sampling it by
trilinear interpolation costs a few operations per point, so gyri, lesion outlines and tissue
inhomogeneity stay cheap at any output resolution.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

HEAD_BOX_MM = 120.0  # the field covers [-120, 120] mm on each axis


@dataclass(frozen=True)
class SmoothField:
    grid: np.ndarray  # (n, n, n) float32, unit SD
    step_mm: float

    @classmethod
    def make(cls, rng: np.random.Generator, wavelength_mm: float) -> "SmoothField":
        step = wavelength_mm / 5.0
        n = int(2 * HEAD_BOX_MM / step) + 2
        grid = ndimage.gaussian_filter(rng.standard_normal((n, n, n)).astype(np.float32),
                                       sigma=wavelength_mm / (2 * np.pi * step), mode="wrap")
        grid /= grid.std()
        return cls(grid=grid, step_mm=step)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Field values at (N, 3) head-frame points in mm."""
        coords = ((points + HEAD_BOX_MM) / self.step_mm).T
        return ndimage.map_coordinates(self.grid, coords, order=1, mode="nearest",
                                       prefilter=False)


def transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """points @ matrix.T for (N, 3) points and a 3x3 matrix, element by element: a BLAS
    product here starts threads that cost more than the nine multiplications (and stall when
    other processes hold the cores)."""
    m = np.asarray(matrix, np.float32)
    return (points[:, :1] * m[:, 0] + points[:, 1:2] * m[:, 1] + points[:, 2:] * m[:, 2]
            ).astype(np.float32)

