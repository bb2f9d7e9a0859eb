"""Per-scan agreement with the truth and a per-site summary (field.md conventions).

Empty masks: both empty -> Dice 1, HD95 0, surface Dice 1; only one empty -> Dice 0 and the
boundary metrics undefined (NaN, left out of means), the volume error still counted.
"""

import math
import warnings
from pathlib import Path

import numpy as np
import torch
from monai.metrics import compute_hausdorff_distance, compute_surface_dice
from scipy import stats

from ichfed.errors import IchfedError, InputError
from ichfed.io import open_site, read_mask
from ichfed.io.align import align_mask, describe
from ichfed.io.labels import label_set
from ichfed.metrics.overlap import dice
from ichfed.metrics.types import TYPE_COLUMNS, summarize_types, type_metrics

SURFACE_TOLERANCE_MM = 1.0


def _boundary(pred: np.ndarray, truth: np.ndarray, spacing: tuple[float, ...]) -> tuple:
    """(HD95 mm, surface Dice at 1 mm) with MONAI, on the bounding box of both masks."""
    idx = np.argwhere(pred | truth)
    lo, hi = np.maximum(idx.min(0) - 3, 0), np.minimum(idx.max(0) + 4, pred.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))

    def onehot(m):
        return torch.from_numpy(m[box].astype(np.float32))[None, None]

    p, t = onehot(pred), onehot(truth)
    with warnings.catch_warnings():  # MONAI 1.6 warns about its own internal argument
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*",
                                category=FutureWarning)
        return _monai_boundary(p, t, spacing)


def _monai_boundary(p: torch.Tensor, t: torch.Tensor, spacing: tuple[float, ...]) -> tuple:
    hd = compute_hausdorff_distance(p, t, include_background=True, percentile=95,
                                    spacing=list(spacing))
    sd = compute_surface_dice(p, t, class_thresholds=[SURFACE_TOLERANCE_MM],
                              include_background=True, spacing=list(spacing))
    return float(hd.item()), float(sd.item())


def case_metrics(pred: np.ndarray, truth: np.ndarray, affine: np.ndarray) -> dict:
    """Dice, volumes (mL on the scan's own grid), absolute volume error, HD95, surface Dice."""
    p, t = pred > 0, truth > 0
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000
    spacing = tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
    pred_ml, true_ml = float(p.sum() * voxel_ml), float(t.sum() * voxel_ml)
    if not p.any() and not t.any():
        hd95, surface = 0.0, 1.0
    elif p.any() and t.any():
        hd95, surface = _boundary(p, t, spacing)
    else:
        hd95, surface = math.nan, 0.0
    return {"dice": round(dice(p, t), 4), "pred_ml": round(pred_ml, 3),
            "true_ml": round(true_ml, 3), "abs_volume_error_ml": round(abs(pred_ml - true_ml), 3),
            "hd95_mm": round(hd95, 2) if not math.isnan(hd95) else math.nan,
            "surface_dice_1mm": round(surface, 4)}


def bland_altman(pred: np.ndarray, true: np.ndarray) -> tuple[float, float, float]:
    """Bias (mean of predicted - true) and the 95% limits of agreement (bias -+ 1.96 sample
    SDs of the differences): how far one scan's volume can be off, which r does not say."""
    diff = np.asarray(pred, float) - np.asarray(true, float)
    bias = float(diff.mean()) if len(diff) else math.nan
    spread = 1.96 * float(diff.std(ddof=1)) if len(diff) > 1 else math.nan
    return bias, bias - spread, bias + spread


def summarize(rows: list[dict]) -> dict:
    """Mean and median Dice, Pearson r of volumes, absolute error, bias and limits of agreement
    of volumes, mean HD95 and surface Dice."""
    dices = np.array([r["dice"] for r in rows], float)
    pred = np.array([r["pred_ml"] for r in rows], float)
    true = np.array([r["true_ml"] for r in rows], float)
    hd = np.array([r["hd95_mm"] for r in rows], float)
    r = math.nan
    if len(rows) > 2 and np.ptp(pred) > 0 and np.ptp(true) > 0:  # std can be 1e-16
        r = float(stats.pearsonr(pred, true).statistic)
    bias, low, high = bland_altman(pred, true)

    def rounded(value: float, digits: int) -> float:
        return round(value, digits) if math.isfinite(value) else math.nan

    return {"scans": len(rows), "mean_dice": round(float(dices.mean()), 4),
            "median_dice": round(float(np.median(dices)), 4),
            "pearson_r": rounded(r, 4),
            "mean_abs_volume_error_ml": round(float(np.abs(pred - true).mean()), 3),
            "volume_bias_ml": rounded(bias, 3), "volume_limits_low_ml": rounded(low, 3),
            "volume_limits_high_ml": rounded(high, 3),
            "mean_hd95_mm": round(float(np.nanmean(hd)), 2) if np.isfinite(hd).any()
            else math.nan,
            "mean_surface_dice_1mm": round(float(np.mean([r["surface_dice_1mm"]
                                                          for r in rows])), 4)}


def evaluate_folder(pred_dir: str | Path, truth_root: str | Path) -> tuple[list[dict], dict]:
    """Compare PRED/<case>_mask.nii.gz with SITE/masks/<case>.nii.gz for the labelled cases that
    have a prediction: a user often predicts only a site's test cases. The summary names the
    labelled cases left out, so a forgotten prediction is seen, not averaged away. Where a
    typed model's PRED/<case>_types.nii.gz meet a site whose masks give types, the rows and the
    summary also hold each type's agreement (metrics/types.py)."""
    pred_dir = Path(pred_dir)
    site = open_site(truth_root)
    rows, left_out, values = [], [], set()
    for case in site.labelled:
        pred_path = pred_dir / f"{case.name}_mask.nii.gz"
        if not pred_path.exists():
            left_out.append(case.name)
            continue
        pred, pred_affine = read_mask(pred_path)
        truth, affine = read_mask(case.mask)
        try:  # a truth mask in another voxel order of the same grid is reoriented
            truth, _ = align_mask(truth, affine, pred.shape, pred_affine, case.mask)
        except InputError:
            raise InputError(pred_path, f"prediction grid ({describe(pred.shape, pred_affine)})"
                                        f" is not the truth mask's "
                                        f"({describe(truth.shape, affine)})") from None
        rows.append({"case": case.name, **case_metrics(pred, truth, pred_affine)})
        values.update(int(v) for v in np.unique(truth))
        types_path = pred_dir / f"{case.name}_types.nii.gz"
        if types_path.exists():
            pred_types, _ = read_mask(types_path)
            if pred_types.shape != pred.shape:
                raise InputError(types_path, f"shape {pred_types.shape} is not its mask's "
                                             f"{pred.shape}")
            voxel_ml = abs(float(np.linalg.det(pred_affine[:3, :3]))) / 1000
            rows[-1].update(type_metrics(pred_types, truth, voxel_ml))
    if not site.labelled:
        raise IchfedError(f"{truth_root}: no labelled cases to evaluate")
    if not rows:
        raise InputError(pred_dir, f"no <case>_mask.nii.gz for any of the {len(left_out)} "
                                   f"labelled cases of {truth_root}")
    typed = label_set(site.labels, values) == "types" and all("epidural_dice" in r for r in rows)
    if not typed:  # a binary site's 1 is blood, not epidural
        rows = [{k: v for k, v in r.items() if k not in TYPE_COLUMNS} for r in rows]
    return rows, {**summarize(rows), **(summarize_types(rows) if typed else {}),
                  "without_prediction": left_out}
