"""Agreement per bleed type, and evaluate's columns for a typed model on a typed site."""

import math

import numpy as np
import pytest

from ichfed.metrics.types import summarize_types, type_metrics


def _maps() -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros((10, 10, 4), np.uint8)
    truth[0:4, 0:4, 0] = 1  # 16 voxels of epidural
    truth[5:9, 5:9, 1] = 2  # 16 of subdural
    pred = truth.copy()
    pred[0:2, 0:4, 0] = 2  # 8 epidural voxels called subdural
    pred[0:2, 0:2, 3] = 4  # 4 voxels of intraparenchymal blood where there is none
    return pred, truth


def test_type_metrics_per_scan():
    pred, truth = _maps()
    row = type_metrics(pred, truth, voxel_ml=0.5)
    assert row["epidural_dice"] == pytest.approx(2 * 8 / (8 + 16), abs=1e-4)
    assert row["subdural_dice"] == pytest.approx(2 * 16 / (24 + 16), abs=1e-4)
    assert math.isnan(row["intraparenchymal_dice"])  # not in the truth: not scored
    assert row["intraparenchymal_pred_ml"] == 2.0 and row["intraparenchymal_true_ml"] == 0
    assert row["epidural_subdural_swapped_ml"] == 4.0


def test_summary_scores_each_type_on_the_scans_that_hold_it():
    pred, truth = _maps()
    rows = [type_metrics(pred, truth, 0.5), type_metrics(np.zeros_like(truth), truth, 0.5),
            type_metrics(pred * (pred == 4), np.zeros_like(truth), 0.5)]
    summary = summarize_types(rows)
    assert summary["epidural_scans"] == 2 and summary["intraparenchymal_scans"] == 0
    assert summary["epidural_mean_dice"] == pytest.approx((2 / 3 + 0) / 2, abs=1e-4)
    assert math.isnan(summary["intraparenchymal_mean_dice"])
    assert summary["intraparenchymal_ml_on_scans_without"] == pytest.approx(4 / 3, abs=1e-3)
    assert summary["epidural_ml_on_scans_without"] == 0.0
    # 4 mL of 2 x (8 + 8) mL of true epidural and subdural blood called the other
    assert summary["epidural_subdural_swapped"] == pytest.approx(4 / 32)
