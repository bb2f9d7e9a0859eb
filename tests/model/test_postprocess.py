from dataclasses import replace

import numpy as np
import torch
from scipy import ndimage

from ichfed.model.config import preset
from ichfed.model.postprocess import (
    CONNECTIVITY,
    LesionRule,
    binarise,
    keep_components,
    keep_components_torch,
    scan_rule,
)
from ichfed.preprocess.morphology import disk


def test_a_coarse_scan_keeps_only_components_as_thick_as_its_own_pixel():
    spec, _ = preset("demo")
    spec = replace(spec, inplane_mm=0.5, min_lesion_ml=0.0, min_core_mm=0.0)
    assert scan_rule(spec, (0.55, 0.55, 5.0)) == LesionRule(0.0, 0.0)  # near the model's grid
    assert scan_rule(replace(spec, inplane_mm=None), (1.0, 1.0, 5.0)) == LesionRule(0.0, 0.0)
    assert scan_rule(spec, (1.0, 1.0, 5.0)) == LesionRule(0.0, 1.0)  # twice the model's pixel
    assert scan_rule(replace(spec, min_core_mm=2.5), (1.0, 1.0, 5.0)) == LesionRule(0.0, 2.5)

    prob = np.zeros((40, 40, 3), np.float32)
    prob[2, 5:35, :] = 1.0  # a one-pixel crescent along the edge: the partial-volume look-alike
    prob[20:26, 20:26, :] = 1.0  # a bleed
    brain = np.ones(prob.shape, bool)
    mask = binarise(prob, brain, spec, 0.005, (1.0, 1.0, 5.0), scan_rule(spec, (1.0, 1.0, 5.0)))
    assert not mask[2].any() and mask[20:26, 20:26].all()
    kept = binarise(prob, brain, spec, 0.005, (0.5, 0.5, 5.0), scan_rule(spec, (0.5, 0.5, 5.0)))
    assert kept[2, 5:35].all()  # at the model's own pixel size the crescent is kept


def test_components_kept_on_the_bounding_box_are_the_whole_volumes():
    """keep_components labels and erodes only the mask's bounding box; the rule it applies on
    the whole volume (labels, sizes, the eroded core) must give the same voxels."""
    rng = np.random.default_rng(0)
    mask = np.zeros((60, 50, 8), bool)
    mask[8:40, 5:45, 1:7] = ndimage.binary_opening(rng.random((32, 40, 6)) > 0.45)
    core = disk(1.0, (0.5, 0.5, 5.0))
    for min_voxels, erode in ((1, core), (20, None), (20, core)):
        comps, count = ndimage.label(mask, CONNECTIVITY)
        keep = np.bincount(comps.ravel(), minlength=count + 1) >= min_voxels
        if erode is not None:
            keep &= np.bincount(comps[ndimage.binary_erosion(mask, erode)],
                                minlength=count + 1) > 0
        keep[0] = False
        np.testing.assert_array_equal(keep_components(mask, min_voxels, erode), keep[comps])


def test_the_gpu_path_keeps_the_same_components():
    """On tensors (predict's path on a GPU, run here on the CPU) binarise gives the mask it
    gives on arrays, for every rule."""
    rng = np.random.default_rng(1)
    prob = ndimage.gaussian_filter(rng.random((60, 50, 8)), (2, 2, 0.5)).astype(np.float32)
    prob = (prob - prob.min()) / (prob.max() - prob.min())
    brain = np.ones(prob.shape, bool)
    brain[:4] = False
    spec, _ = preset("demo")
    for rule in (LesionRule(0.0, 0.0, 0.6), LesionRule(0.05, 0.0, 0.55), LesionRule(0.0, 1.0, 0.6)):
        theirs = binarise(prob, brain, spec, 0.002, (0.5, 0.5, 5.0), rule)
        ours = binarise(torch.from_numpy(prob), torch.from_numpy(brain), spec, 0.002,
                        (0.5, 0.5, 5.0), rule)
        assert isinstance(ours, torch.Tensor) and theirs.any() and not theirs.all()
        np.testing.assert_array_equal(ours.numpy(), theirs)
    assert not keep_components_torch(torch.zeros(5, 5, 2, dtype=torch.bool), 3).any()
