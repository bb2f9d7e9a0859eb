from dataclasses import replace

import numpy as np

from ichfed.model.config import preset
from ichfed.model.postprocess import LesionRule, binarise, scan_rule


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
