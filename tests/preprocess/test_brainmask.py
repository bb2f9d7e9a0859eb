"""The brain mask computed on the soft tissue's bounding box equals the whole volume's."""

import numpy as np
from scipy import ndimage

from ichfed.phantom import BUILTIN, synth_case
from ichfed.preprocess import brain_mask, to_canonical
from ichfed.preprocess.brainmask import SMOOTH_MM, SOFT_TISSUE_HU, _intracranial


def test_cropping_to_the_head_changes_no_voxel():
    case = synth_case(BUILTIN["vumc"], 0, 1)
    can = to_canonical(np.maximum(case.image, -1024).astype(np.float32), case.affine)
    for data in (can.data, can.data[can.data.shape[0] // 3:]):  # the head cut by the edge too
        sx, sy, _ = can.spacing
        smooth = ndimage.gaussian_filter(data, (SMOOTH_MM / sx, SMOOTH_MM / sy, 0))
        soft = (smooth > SOFT_TISSUE_HU[0]) & (smooth < SOFT_TISSUE_HU[1])
        whole = _intracranial(soft, data, can.spacing)
        assert whole.sum() > 1000
        assert np.array_equal(brain_mask(data, can.spacing), whole)
