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
BONE_HU = 800.0  # partial-volume bone edges (up to ~800 HU) may hold blood
CORTEX_HU = 1000.0  # cortical bone (the skull) is above this


def disk(radius_mm: float, spacing: tuple[float, ...]) -> np.ndarray:
    """An in-plane (elliptical in voxels) disk of `radius_mm`, one slice thick, at least one
    voxel in radius: morphology in mm on slices that may be far thicker than their pixels."""
    rx, ry = (max(1, int(round(radius_mm / s))) for s in spacing[:2])
    x, y = np.ogrid[-rx:rx + 1, -ry:ry + 1]
    return ((x / rx) ** 2 + (y / ry) ** 2 <= 1)[:, :, None]


def brain_mask(data: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Boolean mask of the intracranial soft tissue of a canonical (X, Y, Z) volume in HU."""
    sx, sy, _ = spacing
    smooth = ndimage.gaussian_filter(data.astype(np.float32), (SMOOTH_MM / sx, SMOOTH_MM / sy, 0))
    soft = (smooth > SOFT_TISSUE_HU[0]) & (smooth < SOFT_TISSUE_HU[1])
    bridge = disk(BRIDGE_MM, spacing)
    core = ndimage.binary_erosion(soft, bridge)
    labels, count = ndimage.label(core)
    if count == 0:
        return np.zeros(data.shape, bool)
    sizes = np.bincount(labels.ravel())[1:]
    core = labels == (np.argmax(sizes) + 1)
    mask = ndimage.binary_dilation(core, bridge) & soft
    for k in range(mask.shape[2]):
        mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    mask = ndimage.binary_closing(mask, disk(2.0, spacing), border_value=0)
    for k in range(mask.shape[2]):
        mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    grown = ndimage.binary_dilation(mask, disk(GROW_MM, spacing)) & (data < BONE_HU)
    return mask | grown
