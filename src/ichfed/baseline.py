"""The floor every network must beat: a tuned HU window inside the brain mask.

Fitted by grid search on one site's labelled scans (mean Dice), then applied unchanged anywhere.
"""

import itertools
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from ichfed.io.volume import CTVolume
from ichfed.metrics import dice
from ichfed.preprocess import brain_mask, to_canonical

LOW_HU = (40.0, 45.0, 50.0, 55.0, 60.0, 65.0)
HIGH_HU = (90.0, 120.0, 200.0)
SMOOTH_MM = (0.0, 1.0)
MIN_ML = (0.0, 0.1, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class ThresholdBaseline:
    low_hu: float = 50.0
    high_hu: float = 120.0
    smooth_mm: float = 1.0
    min_ml: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)

    def predict(self, ct: CTVolume) -> np.ndarray:
        """Binary mask (uint8) in the scan's stored voxel order."""
        prepared = _Prepared.of(ct.data, ct.affine)
        pred = prepared.segment(self.low_hu, self.high_hu, self.smooth_mm, self.min_ml)
        return prepared.canonical.to_stored(pred).astype(np.uint8)

    @classmethod
    def fit(cls, scans: list[tuple[CTVolume, np.ndarray]]) -> tuple["ThresholdBaseline", float]:
        """Grid search of the window, smoothing and minimum component size; returns the best
        setting and its mean Dice on `scans` (image, mask in stored order)."""
        prepared = [(_Prepared.of(ct.data, ct.affine), to_canonical(mask, ct.affine).data > 0)
                    for ct, mask in scans]
        best, best_score = cls(), -1.0
        for low, high, smooth in itertools.product(LOW_HU, HIGH_HU, SMOOTH_MM):
            per_min = {m: [] for m in MIN_ML}
            for prep, truth in prepared:
                raw = prep.segment(low, high, smooth, 0.0)
                comps, _ = ndimage.label(raw)
                sizes = np.bincount(comps.ravel()) * prep.voxel_ml
                for m in MIN_ML:
                    keep = sizes >= m
                    keep[0] = False
                    per_min[m].append(dice(keep[comps], truth))
            for m, scores in per_min.items():
                if np.mean(scores) > best_score:
                    best, best_score = cls(low, high, smooth, m), float(np.mean(scores))
        return best, best_score


@dataclass
class _Prepared:
    """A scan in canonical order with its brain mask, and smoothed copies made on demand."""

    canonical: object
    brain: np.ndarray
    voxel_ml: float
    smoothed: dict

    @classmethod
    def of(cls, data: np.ndarray, affine: np.ndarray) -> "_Prepared":
        can = to_canonical(data, affine)
        voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000
        return cls(can, brain_mask(can.data, can.spacing), voxel_ml, {})

    def segment(self, low: float, high: float, smooth_mm: float, min_ml: float) -> np.ndarray:
        if smooth_mm not in self.smoothed:
            sx, sy, _ = self.canonical.spacing
            data = self.canonical.data
            self.smoothed[smooth_mm] = (ndimage.gaussian_filter(
                data, (smooth_mm / sx, smooth_mm / sy, 0)) if smooth_mm else data)
        img = self.smoothed[smooth_mm]
        pred = self.brain & (img >= low) & (img <= high)
        if min_ml > 0 and pred.any():
            comps, _ = ndimage.label(pred)
            sizes = np.bincount(comps.ravel()) * self.voxel_ml
            keep = sizes >= min_ml
            keep[0] = False
            pred = keep[comps]
        return pred
