"""Previews and the report show the slice with the most mask, whatever the voxel order."""

import numpy as np
import pytest

from ichfed.report.overlay import fullest_slice


@pytest.mark.parametrize("flip_z", [False, True])
def test_fullest_slice_is_the_one_with_most_mask_in_ras_order(flip_z):
    mask = np.zeros((10, 10, 6), np.uint8)
    mask[2:8, 2:8, 1] = 1  # stored slice 1: the most
    mask[4:6, 4:6, 4] = 1
    affine = np.diag([-0.9, -0.9, -5.0 if flip_z else 5.0, 1.0])  # LPS, or LPI
    assert fullest_slice(mask, affine) == (4 if flip_z else 1)  # RAS order reverses LPI's z


def test_empty_mask_previews_the_middle_slice():
    assert fullest_slice(np.zeros((4, 4, 7), np.uint8), np.eye(4)) == 3
