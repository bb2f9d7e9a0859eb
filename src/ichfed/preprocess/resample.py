"""In-plane resampling of canonical volumes to the pixel size a model works at, and back.

Hospitals do not share one pixel size (about 0.4 to 1.0 mm); a 2D network learns structures
in pixels, so a model records the in-plane spacing it was trained at and every scan is
resampled to it before the network, slice by slice (the slice axis is never touched), then the
output is mapped back to the scan's own grid, where volumes are measured. torch's bilinear
interpolation does it (pixel-area convention, what scipy's linear zoom with grid_mode=True
gives, but on every core: a 512x512x31 scan to 0.5 mm pixels and back takes 0.06 s on 2 CPU
cores, 0.37 s with scipy); only the bookkeeping of exact shapes is written here.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

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


@torch.inference_mode()
def _zoom_to(volume: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Resize the first two axes of an (X, Y, Z) volume to exactly `shape` by linear
    interpolation between pixel centres (edge pixels extended), as float32; a volume that
    already has `shape` comes back as it is."""
    if tuple(volume.shape) == tuple(shape):
        return volume
    slices = torch.from_numpy(np.asarray(volume, np.float32)).permute(2, 0, 1)[:, None]
    out = F.interpolate(slices, size=tuple(shape[:2]), mode="bilinear", align_corners=False)
    return out[:, 0].permute(1, 2, 0).contiguous().numpy()


def to_work(volume: np.ndarray, grid: Grid) -> np.ndarray:
    return _zoom_to(volume, grid.work_shape)


def to_native(volume: np.ndarray, grid: Grid) -> np.ndarray:
    return _zoom_to(volume, grid.native_shape)


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
