"""From probabilities to a hematoma mask: the threshold and the lesion rules a model folder
carries (`ModelSpec.threshold`, `min_component_voxels`, `min_lesion_ml`, `min_core_mm`)."""

from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy import ndimage

from ichfed.model.config import ModelSpec
from ichfed.preprocess import morphology_torch as mt
from ichfed.preprocess.morphology import bounding_box, disk

CONNECTIVITY = ndimage.generate_binary_structure(3, 3)  # 26-connected lesion components
COARSE = 1.5  # a scan this many times coarser in-plane than the model's grid (see scan_rule)


@dataclass(frozen=True)
class LesionRule:
    """Which voxels and predicted components count as lesions: probability at least
    `threshold`; components at least `min_ml` in volume, and somewhere at least a disk of
    radius `core_mm` thick in-plane (the partial-volume rim just inside the skull is one or two
    pixels thick; a hematoma is not, except at its edges)."""

    min_ml: float = 0.0
    core_mm: float = 0.0
    threshold: float = 0.5

    @classmethod
    def of(cls, spec: ModelSpec) -> "LesionRule":
        return cls(spec.min_lesion_ml, spec.min_core_mm, spec.threshold)


def scan_rule(spec: ModelSpec, spacing: tuple[float, ...]) -> LesionRule:
    """The model's rule for one scan of `spacing` (its own, mm). On a scan at least COARSE times
    coarser in-plane than the model's working grid, a component must also hold a disk one of
    the scan's own pixels in radius: resampled to the working grid, such a scanner's partial-
    volume ramp along the inner table becomes a one- or two-pixel crescent that looks like a
    thin subdural to the network (every bleed-free test scan at twice the pixel size got two of
    1.4-3.6 mL, none with such a core), and nothing thinner than its own pixel is resolved by
    the scan anyway. On other scans the rule is the model's own."""
    rule = LesionRule.of(spec)
    own = float(np.mean(spacing[:2]))
    if spec.working_mm is None or own < COARSE * spec.working_mm:
        return rule
    return replace(rule, core_mm=max(rule.core_mm, own))


def keep_components(mask: np.ndarray, min_voxels: int, core: np.ndarray | None = None
                    ) -> np.ndarray:
    """The 26-connected components of at least `min_voxels` voxels that contain a voxel of
    the mask eroded by `core` (when given). Worked on the mask's bounding box: outside it the
    mask is empty, as erosion takes the border to be, so the result is the whole volume's."""
    if not mask.any() or (min_voxels <= 1 and core is None):
        return mask
    box = bounding_box(mask)
    comps, count = ndimage.label(mask[box], CONNECTIVITY)
    keep = np.bincount(comps.ravel(), minlength=count + 1) >= min_voxels
    if core is not None:
        inner = ndimage.binary_erosion(mask[box], core)
        keep &= np.bincount(comps[inner], minlength=count + 1) > 0
    keep[0] = False
    out = np.zeros_like(mask)
    out[box] = keep[comps]
    return out


def keep_components_torch(mask: torch.Tensor, min_voxels: int, core: np.ndarray | None = None
                          ) -> torch.Tensor:
    """`keep_components` on a tensor (a GPU's), with the same result."""
    if not bool(mask.any()) or (min_voxels <= 1 and core is None):
        return mask
    box = mt.bounding_box(mask, (0,) * mask.ndim)
    inside = mask[box]
    comps = mt.components(inside, mt.FULL_3D).long()  # background: inside.numel()
    keep = torch.bincount(comps.reshape(-1), minlength=inside.numel() + 1) >= min_voxels
    if core is not None:  # the disk is one slice thick: the erosion is each slice's
        inner = mt.erode_slices(inside, core[:, :, 0])
        keep &= torch.bincount(comps[inner], minlength=inside.numel() + 1) > 0
    keep[-1] = False
    out = torch.zeros_like(mask)
    out[box] = keep[comps]
    return out


def binarise(prob: np.ndarray | torch.Tensor, brain: np.ndarray | torch.Tensor, spec: ModelSpec,
             voxel_ml: float, spacing: tuple[float, ...], rule: LesionRule | None = None
             ) -> np.ndarray | torch.Tensor:
    """Threshold inside the brain, then keep the components the rule (by default the model's
    own) accepts, measured on the grid the arrays are on (`voxel_ml`, `spacing` in mm); on
    tensors (a GPU's) the same, computed there."""
    rule = rule or LesionRule.of(spec)
    min_voxels = spec.min_component_voxels
    if rule.min_ml > 0:
        min_voxels = max(min_voxels, int(np.ceil(rule.min_ml / voxel_ml)))
    core = disk(rule.core_mm, spacing) if rule.core_mm > 0 else None
    keep = keep_components_torch if isinstance(prob, torch.Tensor) else keep_components
    return keep((prob >= rule.threshold) & brain, min_voxels, core)
