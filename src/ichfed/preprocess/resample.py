"""In-plane resampling of canonical volumes to the pixel size a model works at, and back.

Hospitals do not share one pixel size (about 0.4 to 1.0 mm); a 2D network learns structures
in pixels, so a model records the in-plane spacing it was trained at and every scan is
resampled to it before the network, slice by slice (the slice axis is never touched), then the
output is mapped back to the scan's own grid, where volumes are measured. scipy's spline zoom
does the interpolation; only the bookkeeping of exact shapes is written here.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

TOLERANCE = 0.01  # spacings within 1% of the target are left alone


@dataclass(frozen=True)
class Grid:
    """How a canonical (X, Y, Z) volume maps to the working grid."""

    native_shape: tuple[int, int, int]
    work_shape: tuple[int, int, int]

    @property
    def identity(self) -> bool:
        return self.native_shape == self.work_shape


def plan_grid(shape: tuple[int, ...], spacing: tuple[float, ...], target_mm: float | None) -> Grid:
    """The working grid for `target_mm` in-plane pixels (None: keep the scan's own grid)."""
    shape = tuple(int(s) for s in shape)
    if target_mm is None or all(abs(s / target_mm - 1) <= TOLERANCE for s in spacing[:2]):
        return Grid(shape, shape)
    work = tuple(max(1, int(round(n * s / target_mm))) for n, s in zip(shape[:2], spacing[:2],
                                                                      strict=True))
    return Grid(shape, (*work, shape[2]))


def _zoom_to(volume: np.ndarray, shape: tuple[int, ...], order: int) -> np.ndarray:
    """Resize the first two axes of `volume` to exactly `shape` (grid-mode: pixel areas)."""
    if tuple(volume.shape) == tuple(shape):
        return volume
    factors = (shape[0] / volume.shape[0], shape[1] / volume.shape[1], 1.0)
    out = ndimage.zoom(volume, factors, order=order, mode="nearest", grid_mode=True)
    return out[:shape[0], :shape[1]]  # zoom rounds its output shape; the factors make it exact


def to_work(volume: np.ndarray, grid: Grid, order: int = 1) -> np.ndarray:
    return _zoom_to(volume, grid.work_shape, order)


def to_native(volume: np.ndarray, grid: Grid, order: int = 1) -> np.ndarray:
    return _zoom_to(volume, grid.native_shape, order)


def mask_to_work(mask: np.ndarray, grid: Grid) -> np.ndarray:
    """A binary mask on the working grid: linear interpolation of the 0/1 field, then 0.5,
    which keeps the volume (the 2% round-trip test)."""
    if grid.identity:
        return mask
    return to_work(mask.astype(np.float32), grid) >= 0.5


def mask_to_native(mask: np.ndarray, grid: Grid) -> np.ndarray:
    if grid.identity:
        return mask
    return to_native(mask.astype(np.float32), grid) >= 0.5
