"""The torch steps (predict's GPU path) give scipy's results; run here on the CPU, on scans of
CPU size and on random shapes that stress the component labelling."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from ichfed.phantom import BUILTIN, synth_case
from ichfed.preprocess import morphology_torch as mt
from ichfed.preprocess.brainmask import brain_mask, brain_mask_torch
from ichfed.preprocess.morphology import disk
from ichfed.preprocess.orient import to_canonical


def _blobs(seed: int, shape=(40, 36, 7), fill=0.25) -> np.ndarray:
    """Random shapes (this share of the voxels) with many components, holes and thin runs."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(size=shape), 1.0)
    return smooth > np.quantile(smooth, 1 - fill)


@pytest.mark.parametrize("seed", range(4))
def test_components_are_scipys_labels(seed):
    mask = _blobs(seed)
    for offsets, structure in ((mt.FACE_3D, ndimage.generate_binary_structure(3, 1)),
                               (mt.FULL_3D, ndimage.generate_binary_structure(3, 3))):
        ours = mt.components(torch.from_numpy(mask), offsets).numpy()
        theirs, count = ndimage.label(mask, structure)
        assert count > 3
        # the same partition: one of our labels per scipy label, and back
        pairs = set(zip(ours[mask].tolist(), theirs[mask].tolist(), strict=True))
        assert len(pairs) == count == len(np.unique(ours[mask]))
        assert (ours[~mask] == mask.size).all()
    biggest = mt.largest_component(torch.from_numpy(mask)).numpy()
    labels, _ = ndimage.label(mask)
    assert (biggest == (labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1)).all()


def test_a_long_winding_component_settles():
    mask = np.zeros((41, 41, 1), bool)  # a spiral-free serpentine: 20 rows joined end to end
    mask[::2, :, 0] = True
    for row in range(1, 41, 2):
        mask[row, 40 if row % 4 == 1 else 0, 0] = True
    labels = mt.components(torch.from_numpy(mask), mt.FACE_3D).numpy()
    assert set(labels[mask].tolist()) == {0}


@pytest.mark.parametrize("seed", range(3))
def test_slice_morphology_is_scipys(seed):
    mask = _blobs(seed, (50, 44, 4), 0.6)
    kernel = disk(2.0, (0.5, 0.7, 5.0))[:, :, 0]
    t = torch.from_numpy(mask)
    def closing(s, k):
        return ndimage.binary_closing(s, k, border_value=0)

    for ours, step in ((mt.erode_slices, ndimage.binary_erosion),
                       (mt.dilate_slices, ndimage.binary_dilation), (mt.close_slices, closing)):
        theirs = np.stack([step(mask[:, :, z], kernel) for z in range(mask.shape[2])], axis=2)
        assert (ours(t, kernel).numpy() == theirs).all(), ours.__name__
    filled = np.stack([ndimage.binary_fill_holes(mask[:, :, z]) for z in range(4)], axis=2)
    assert (mt.fill_holes_slices(t).numpy() == filled).all()
    assert (filled != mask).any()  # there were holes to fill


def test_gaussian_is_scipys_per_slice():
    rng = np.random.default_rng(0)
    data = (rng.normal(40, 30, (60, 50, 3)) * (rng.random((60, 50, 3)) > 0.2)).astype(np.float32)
    sigma = (1.4, 1.1)
    ours = mt.gaussian_slices(torch.from_numpy(data), sigma).numpy()
    theirs = np.stack([ndimage.gaussian_filter(data[:, :, z], sigma) for z in range(3)], axis=2)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)


@pytest.mark.parametrize(("site", "index", "first"), [("nih", 2, 3), ("thin", 4, 30)])
def test_brain_mask_from_torch_is_the_scipy_mask(site, index, first):
    """Ten slices of a scan (the skull base, or the ventricles), as both paths mask them (the
    labelling that is fast on a GPU takes seconds a slice on a CPU)."""
    case = synth_case(BUILTIN[site], 0, index)
    can = to_canonical(case.image, case.affine)
    data = np.ascontiguousarray(can.data[:, :, first:first + 10])
    theirs = brain_mask(data, can.spacing)
    ours = brain_mask_torch(torch.from_numpy(data), can.spacing).numpy()
    assert theirs.sum() > 10_000
    assert (ours == theirs).all(), f"{(ours != theirs).sum()} voxels differ"
