"""Resampling of canonical volumes to the grid a model works at, and back.

Hospitals do not share one pixel size (about 0.4 to 1.0 mm); a 2D network learns structures
in pixels, so a model records the in-plane spacing it was trained at and every scan is
resampled to it before the network, slice by slice, then the output is mapped back to the
scan's own grid, where volumes are measured. torch's bilinear interpolation does it (pixel-area
convention, what scipy's linear zoom with grid_mode=True gives, but on every core: a
512x512x31 scan to 0.5 mm pixels and back takes 0.06 s on 2 CPU cores, 0.37 s with scipy);
only the bookkeeping of exact shapes is written here.

Nor do they share one slice thickness: a model trained on 5 mm slices sees a 2 mm slice as a
sharper image (less partial volume) than any it learned from (trained on nih, the thin site's
bleed-free scans got 2-7 mL of false positives each). A scan with slices at least 1.5 times
thinner than the model's is averaged in slabs of whole slices, as a scanner reconstructs thick
slices from thin ones, and the output is interpolated back to every thin slice. Thicker slices
are never made up.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

TOLERANCE = 0.01  # spacings within 1% of the target are left alone


@dataclass(frozen=True)
class Grid:
    """How a canonical (X, Y, Z) volume maps to the working grid: in-plane to `work_shape`'s
    first two sizes, and every `slab` slices averaged into one (the last slab may be shorter)."""

    native_shape: tuple[int, int, int]
    work_shape: tuple[int, int, int]
    slab: int = 1

    @property
    def identity(self) -> bool:
        return self.native_shape == self.work_shape


def plan_grid(shape: tuple[int, ...], spacing: tuple[float, ...], target_mm: float | None,
              slice_mm: float | None = None) -> Grid:
    """The working grid for `target_mm` in-plane pixels and `slice_mm` slices (None: the
    scan's own)."""
    shape = tuple(int(s) for s in shape)
    work = shape[:2]
    if target_mm is not None and any(abs(s / target_mm - 1) > TOLERANCE for s in spacing[:2]):
        work = tuple(max(1, int(round(n * s / target_mm)))
                     for n, s in zip(shape[:2], spacing[:2], strict=True))
    slab = 1 if slice_mm is None else min(shape[2], max(1, int(round(slice_mm / spacing[2]))))
    return Grid(shape, (*work, -(-shape[2] // slab)), slab)


def _slab_starts(grid: Grid) -> np.ndarray:
    return np.arange(0, grid.native_shape[2], grid.slab)


def _zoomed_slices(volume: np.ndarray, size: tuple[int, ...]) -> torch.Tensor:
    """The (Z, X, Y) slices of an (X, Y, Z) volume as float32, each resized to `size` by linear
    interpolation between pixel centres (edge pixels extended)."""
    slices = torch.from_numpy(np.asarray(volume, np.float32)).permute(2, 0, 1)[:, None]
    if tuple(slices.shape[-2:]) != tuple(size):
        slices = F.interpolate(slices, size=tuple(size), mode="bilinear", align_corners=False)
    return slices[:, 0]


@torch.inference_mode()
def _zoom_to(volume: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Resize the first two axes of an (X, Y, Z) volume to exactly `shape` (`_zoomed_slices`),
    as float32; a volume that already has `shape` comes back as it is."""
    if tuple(volume.shape) == tuple(shape):
        return volume
    return _zoomed_slices(volume, shape[:2]).permute(1, 2, 0).contiguous().numpy()


def to_work(volume: np.ndarray, grid: Grid) -> np.ndarray:
    """Each slab's mean, then in-plane to the working pixel: both steps are linear, along
    different axes, so taking the means first leaves a slab-th of the slices to resize."""
    if grid.slab > 1:
        starts = _slab_starts(grid)
        counts = np.diff(np.append(starts, volume.shape[2]))
        volume = (np.add.reduceat(np.asarray(volume, np.float32), starts, axis=2) / counts
                  ).astype(np.float32)
    return _zoom_to(volume, (*grid.work_shape[:2], volume.shape[2]))


@torch.inference_mode()
def to_native(volume: np.ndarray, grid: Grid) -> np.ndarray:
    """In-plane to the scan's pixel, then each native slice linearly between the centres of the
    slabs around it (the end slabs' values beyond the first and last centre). Both steps are
    linear, along different axes, so the few slabs are resized first, and the slices are
    interpolated slice-major in torch: 512x512x247 from 31 slabs 1.0 -> 0.3 s."""
    if grid.slab == 1:
        return _zoom_to(volume, grid.native_shape)
    starts = _slab_starts(grid)
    centres = (starts + np.append(starts[1:], grid.native_shape[2]) - 1) / 2.0
    at = np.arange(grid.native_shape[2], dtype=np.float64)
    upper = np.clip(np.searchsorted(centres, at), 0, len(centres) - 1)
    lower = np.maximum(upper - 1, 0)
    span = np.maximum(centres[upper] - centres[lower], 1e-9)
    weight = torch.from_numpy(np.clip((at - centres[lower]) / span, 0.0, 1.0).astype(np.float32))
    slabs = _zoomed_slices(volume, grid.native_shape[:2])
    out = slabs.index_select(0, torch.from_numpy(lower))
    out.lerp_(slabs.index_select(0, torch.from_numpy(upper)), weight[:, None, None])
    return out.permute(1, 2, 0).contiguous().numpy()


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


def codes_to_work(codes: np.ndarray, grid: Grid, inside: np.ndarray) -> np.ndarray:
    """A label map (uint8 codes) on the working grid: each working voxel of `inside` (a mask
    there) gets the code covering the largest share of it, as `mask_to_work` maps each one."""
    present = [int(c) for c in np.unique(codes) if c > 0]
    if not present:
        return np.zeros(inside.shape, np.uint8)
    if grid.identity:
        return np.where(inside, codes, 0).astype(np.uint8)
    shares = np.stack([to_work((codes == c).astype(np.float32), grid) for c in present])
    return np.where(inside, np.asarray(present, np.uint8)[shares.argmax(0)], 0).astype(np.uint8)


def codes_to_native(codes: np.ndarray, grid: Grid) -> np.ndarray:
    """A working-grid label map on the scan's own grid, by the nearest working voxel (a
    pixel's centre in the pixel-area convention; a slice's own slab)."""
    if grid.identity:
        return codes
    work_x, work_y, _ = grid.work_shape
    native_x, native_y, native_z = grid.native_shape
    ix = np.minimum(((np.arange(native_x) + 0.5) * work_x / native_x).astype(int), work_x - 1)
    iy = np.minimum(((np.arange(native_y) + 0.5) * work_y / native_y).astype(int), work_y - 1)
    iz = np.arange(native_z) // grid.slab
    return codes[np.ix_(ix, iy, iz)]
