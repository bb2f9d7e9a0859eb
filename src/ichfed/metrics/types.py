"""Agreement per bleed type (a typed model against a site whose masks give types): Dice and
volumes of each type on the scans whose truth holds it, the volume a model calls a type on
scans without it, and how much epidural and subdural blood is called the other (their
management differs: an epidural is often operated on, a thin subdural watched)."""

import math

import numpy as np
from scipy import stats

from ichfed.io.labels import TYPES
from ichfed.metrics.overlap import dice

EPIDURAL, SUBDURAL = 1, 2
TYPE_COLUMNS = (*(f"{name}_{what}" for name in TYPES.values()
                  for what in ("dice", "pred_ml", "true_ml")), "epidural_subdural_swapped_ml")


def type_metrics(pred: np.ndarray, truth: np.ndarray, voxel_ml: float) -> dict:
    """Per type: Dice (NaN where the truth has none of it), predicted and true mL; and the mL of
    epidural and subdural blood called the other."""
    row = {}
    for code, name in TYPES.items():
        p, t = pred == code, truth == code
        row[f"{name}_dice"] = round(dice(p, t), 4) if t.any() else math.nan
        row[f"{name}_pred_ml"] = round(float(p.sum() * voxel_ml), 3)
        row[f"{name}_true_ml"] = round(float(t.sum() * voxel_ml), 3)
    swapped = (((truth == EPIDURAL) & (pred == SUBDURAL)).sum()
               + ((truth == SUBDURAL) & (pred == EPIDURAL)).sum())
    row["epidural_subdural_swapped_ml"] = round(float(swapped * voxel_ml), 3)
    return row


def summarize_types(rows: list[dict]) -> dict:
    """Per type over the scans whose truth holds it: how many, mean Dice, Pearson r of the
    volumes; the mean volume called that type on the other scans; and the share of all true
    epidural and subdural blood called the other type."""
    summary = {}
    for name in TYPES.values():
        held = [r for r in rows if r[f"{name}_true_ml"] > 0]
        other = [r for r in rows if r[f"{name}_true_ml"] == 0]
        pred = np.array([r[f"{name}_pred_ml"] for r in held], float)
        true = np.array([r[f"{name}_true_ml"] for r in held], float)
        r = math.nan
        if len(held) > 2 and np.ptp(pred) > 0 and np.ptp(true) > 0:
            r = round(float(stats.pearsonr(pred, true).statistic), 4)
        summary[f"{name}_scans"] = len(held)
        summary[f"{name}_mean_dice"] = (round(float(np.mean([x[f"{name}_dice"] for x in held])),
                                            4) if held else math.nan)
        summary[f"{name}_pearson_r"] = r
        summary[f"{name}_ml_on_scans_without"] = (
            round(float(np.mean([x[f"{name}_pred_ml"] for x in other])), 3) if other
            else math.nan)
    extra_axial = sum(r["epidural_true_ml"] + r["subdural_true_ml"] for r in rows)
    swapped = sum(r["epidural_subdural_swapped_ml"] for r in rows)
    summary["epidural_subdural_swapped"] = (round(swapped / extra_axial, 4) if extra_axial
                                            else math.nan)
    return summary
