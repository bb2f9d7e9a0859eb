"""Evaluation conventions for empty masks and the per-site summary."""

import math

import numpy as np
import pytest

from ichfed.metrics.evaluate import case_metrics, summarize

AFFINE = np.diag([0.5, 0.5, 5.0, 1.0])


def test_both_empty_is_perfect():
    empty = np.zeros((8, 8, 4), np.uint8)
    m = case_metrics(empty, empty, AFFINE)
    assert m["dice"] == 1.0 and m["hd95_mm"] == 0.0 and m["surface_dice_1mm"] == 1.0


def test_miss_and_false_positive():
    empty = np.zeros((8, 8, 4), np.uint8)
    blob = empty.copy()
    blob[2:5, 2:5, 1:3] = 1
    miss = case_metrics(empty, blob, AFFINE)
    assert miss["dice"] == 0.0 and math.isnan(miss["hd95_mm"])
    assert miss["abs_volume_error_ml"] == pytest.approx(18 * 1.25 / 1000, abs=1e-3)
    fp = case_metrics(blob, empty, AFFINE)
    assert fp["pred_ml"] > 0 and fp["dice"] == 0.0


def test_shifted_blob_boundary_metrics():
    a = np.zeros((20, 20, 4), np.uint8)
    a[5:10, 5:10, 1:3] = 1
    b = np.roll(a, 2, axis=0)
    m = case_metrics(a, b, AFFINE)
    assert m["hd95_mm"] == pytest.approx(1.0, abs=1e-6)  # 2 voxels of 0.5 mm
    assert 0 < m["surface_dice_1mm"] <= 1 and 0 < m["dice"] < 1


def test_summary():
    rows = [{"dice": d, "pred_ml": p, "true_ml": t, "hd95_mm": h, "surface_dice_1mm": sd}
            for d, p, t, h, sd in [(1.0, 0, 0, 0.0, 1.0), (0.5, 10, 12, 3.0, 0.4),
                                   (0.7, 20, 18, math.nan, 0.1)]]
    s = summarize(rows)
    assert s["volume_bias_ml"] == 0.0  # differences 0, -2, +2 mL
    assert s["volume_limits_high_ml"] == pytest.approx(1.96 * 2.0, abs=1e-3)  # sample SD 2
    assert s["volume_limits_low_ml"] == pytest.approx(-1.96 * 2.0, abs=1e-3)
    assert s["mean_surface_dice_1mm"] == 0.5
    assert s["mean_dice"] == pytest.approx(0.7333, abs=1e-4) and s["median_dice"] == 0.7
    assert s["mean_abs_volume_error_ml"] == pytest.approx(4 / 3, abs=1e-3)
    assert s["pearson_r"] == pytest.approx(np.corrcoef([0, 10, 20], [0, 12, 18])[0, 1], abs=1e-4)
    assert s["mean_hd95_mm"] == 1.5
