"""Brain mask for head CT without FSL, after the published CT recipe (CT_BET): threshold
0-100 HU, keep the largest connected component, fill holes, smooth, morphology.

scipy.ndimage does each step; MONAI has no CT brain extraction. At the end the mask grows
into the non-bone voxels next to it, so that blood lying against the inner table (partial volume
with bone raises those voxels above 100 HU) stays inside.
"""

import numpy as np
from scipy import ndimage

SOFT_TISSUE_HU = (0.0, 100.0)
SMOOTH_MM = 0.7
BRIDGE_MM = 3.0  # erosion that cuts thin bridges (foramina, scalp through sutures) before CC
GROW_MM = 3.0  # final growth into voxels below BONE_HU
BONE_HU = 800.0  # partial-volume bone edges (up to ~800 HU) may hold blood; cortex is >1000


def _disk(radius_px: tuple[float, float]) -> np.ndarray:
    rx, ry = (max(1, int(round(r))) for r in radius_px)
    x, y = np.ogrid[-rx:rx + 1, -ry:ry + 1]
    return ((x / rx) ** 2 + (y / ry) ** 2 <= 1)[:, :, None]


def brain_mask(data: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Boolean mask of the intracranial soft tissue of a canonical (X, Y, Z) volume in HU."""
    sx, sy, sz = spacing
    smooth = ndimage.gaussian_filter(data.astype(np.float32), (SMOOTH_MM / sx, SMOOTH_MM / sy, 0))
    soft = (smooth > SOFT_TISSUE_HU[0]) & (smooth < SOFT_TISSUE_HU[1])
    disk = _disk((BRIDGE_MM / sx, BRIDGE_MM / sy))
    core = ndimage.binary_erosion(soft, disk)
    labels, count = ndimage.label(core)
    if count == 0:
        return np.zeros(data.shape, bool)
    sizes = np.bincount(labels.ravel())[1:]
    core = labels == (np.argmax(sizes) + 1)
    mask = ndimage.binary_dilation(core, disk) & soft
    for k in range(mask.shape[2]):
        mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    mask = ndimage.binary_closing(mask, _disk((2 / sx, 2 / sy)), border_value=0)
    for k in range(mask.shape[2]):
        mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    grown = ndimage.binary_dilation(mask, _disk((GROW_MM / sx, GROW_MM / sy))) & (data < BONE_HU)
    return mask | grown
