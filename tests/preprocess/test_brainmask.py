"""The brain mask: the bounding box; on the soft tissue's bounding box the mask equals the whole
volume's, and slice by slice in parallel it equals the whole-volume recipe."""

import numpy as np
import torch
from scipy import ndimage

from ichfed.phantom import BUILTIN, synth_case
from ichfed.preprocess import brain_mask, to_canonical
from ichfed.preprocess.brainmask import (
    BONE_HU,
    BRIDGE_MM,
    CLOSE_MM,
    GROW_MM,
    SMOOTH_MM,
    SOFT_TISSUE_HU,
    _intracranial,
    bounding_box,
    disk,
)


def _soft_tissue(data: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """The recipe's threshold on the whole volume (smoothed in-plane only)."""
    sx, sy, _ = spacing
    smooth = ndimage.gaussian_filter(data, (SMOOTH_MM / sx, SMOOTH_MM / sy, 0))
    return (smooth > SOFT_TISSUE_HU[0]) & (smooth < SOFT_TISSUE_HU[1])


def test_bounding_box_is_the_extent_of_the_voxels_grown_by_the_margin():
    mask = np.zeros((30, 20, 6), bool)
    assert bounding_box(mask, 2) == (slice(0, 30), slice(0, 20), slice(0, 6))  # empty: all
    mask[4, 7, 2] = mask[12, 3, 5] = True
    assert bounding_box(mask) == (slice(4, 13), slice(3, 8), slice(2, 6))
    assert bounding_box(mask, (5, 1, 0)) == (slice(0, 18), slice(2, 9), slice(2, 6))


def test_cropping_to_the_head_changes_no_voxel():
    case = synth_case(BUILTIN["vumc"], 0, 1)
    can = to_canonical(np.maximum(case.image, -1024).astype(np.float32), case.affine)
    for data in (can.data, can.data[can.data.shape[0] // 3:]):  # the head cut by the edge too
        whole = _intracranial(_soft_tissue(data, can.spacing), data, can.spacing)
        assert whole.sum() > 1000
        assert np.array_equal(brain_mask(data, can.spacing), whole)


def _recipe_3d(soft: np.ndarray, data: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """The recipe as whole-volume scipy calls with one-slice-thick disks (the code before the
    steps ran slice by slice)."""
    bridge = disk(BRIDGE_MM, spacing)
    labels, _ = ndimage.label(ndimage.binary_erosion(soft, bridge))
    core = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    mask = ndimage.binary_dilation(core, bridge) & soft
    for k in range(mask.shape[2]):
        mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    mask = ndimage.binary_closing(mask, disk(CLOSE_MM, spacing), border_value=0)
    for k in range(mask.shape[2]):
        mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    return mask | (ndimage.binary_dilation(mask, disk(GROW_MM, spacing)) & (data < BONE_HU))


def test_slices_in_parallel_give_the_whole_volume_recipe():
    case = synth_case(BUILTIN["nih"], 0, 2)
    can = to_canonical(np.maximum(case.image, -1024).astype(np.float32), case.affine)
    expected = _recipe_3d(_soft_tissue(can.data, can.spacing), can.data, can.spacing)
    assert expected.sum() > 1000
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            assert np.array_equal(brain_mask(can.data, can.spacing), expected)
    finally:
        torch.set_num_threads(threads)
