"""How hard and how different the built-in sites are (issue: built-in data).

Prints one JSON line: per site the tuned HU-threshold baseline's Dice (tuned on the first
training site, and tuned on the site itself) and the measured site differences.
Usage: python benchmarks/phantom_sites.py [--cases N] [--seed S]
"""

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy import ndimage

from ichfed.baseline import ThresholdBaseline
from ichfed.io.volume import CTVolume
from ichfed.metrics import dice
from ichfed.phantom import BUILTIN, synth_case
from ichfed.preprocess import brain_mask, to_canonical


def _case(args: tuple[str, int, int]) -> tuple[CTVolume, np.ndarray, dict]:
    site, seed, index = args
    c = synth_case(BUILTIN[site], seed, index, "reduced")
    ct = CTVolume(np.maximum(c.image.astype(np.float32), -1024), c.affine, Path(c.name))
    return ct, c.mask, c.params


def measured(ct: CTVolume, label: np.ndarray) -> tuple[float, float, int, int]:
    """(brain HU mode, median local noise SD in 5x5 in-plane windows of the inner brain,
    label voxels inside the brain mask, label voxels)."""
    can = to_canonical(ct.data, ct.affine)
    brain = brain_mask(can.data, can.spacing)
    lab = to_canonical(label, ct.affine).data > 0
    inner = ndimage.binary_erosion(brain, np.ones((9, 9, 1), bool)) & (can.data > 10) & (
        can.data < 45)
    hist = np.bincount(np.clip(can.data[brain & (can.data > 0) & (can.data < 100)], 0, 99)
                       .astype(int), minlength=100)
    mean = ndimage.uniform_filter(can.data, (5, 5, 1))
    sq = ndimage.uniform_filter(can.data**2, (5, 5, 1))
    local_sd = np.sqrt(np.clip(sq - mean**2, 0, None))
    return (float(np.argmax(hist)), float(np.median(local_sd[inner])), int((lab & brain).sum()),
            int(lab.sum()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    t0 = time.time()
    with ProcessPoolExecutor(2) as pool:
        data = {s: list(pool.map(_case, [(s, args.seed, i) for i in range(args.cases)]))
                for s in BUILTIN}
    reference = next(s for s, p in BUILTIN.items() if p.role == "train")
    tuned, train_score = ThresholdBaseline.fit([(ct, m) for ct, m, _ in data[reference]])
    sites = {}
    for site, cases in data.items():
        profile = BUILTIN[site]
        scores = [dice(tuned.predict(ct), m) for ct, m, _ in cases]
        own, own_score = ThresholdBaseline.fit([(ct, m) for ct, m, _ in cases])
        modes, sds, inside, total = zip(*(measured(ct, m) for ct, m, _ in cases), strict=True)
        acq = [p["acquisition"] for _, _, p in cases]
        volumes = [p["label_ml"] for _, _, p in cases if p["label_ml"] > 0]
        sites[site] = {
            "role": profile.role,
            "baseline_dice_tuned_on_" + reference: round(float(np.mean(scores)), 3),
            "baseline_dice_tuned_on_site": round(own_score, 3),
            "baseline_dice_lesion_scans": round(float(np.mean(
                [s for s, (_, m, _) in zip(scores, cases, strict=True) if m.any()])), 3),
            "label_voxels_in_brain_mask": round(sum(inside) / max(sum(total), 1), 4),
            "brain_hu_mode": float(np.median(modes)),
            "noise_sd_measured": round(float(np.median(sds)), 2),
            "noise_sd_target": round(float(np.median([a["noise_sd"] for a in acq])), 2),
            "pixel_mm": [round(min(a["inplane_mm"] for a in acq), 2),
                         round(max(a["inplane_mm"] for a in acq), 2)],
            "slice_mm": [round(min(a["slice_mm"] for a in acq), 2),
                         round(max(a["slice_mm"] for a in acq), 2)],
            "tilt_deg_max": round(max(a["tilt_deg"] for a in acq), 1),
            "orientation": profile.orientation,
            "lesion_free_share": round(sum(not m.any() for _, m, _ in cases) / len(cases), 2),
            "label_ml_median": round(float(np.median(volumes)), 1) if volumes else 0.0,
            "label_ml_range": [round(min(volumes), 2), round(max(volumes), 1)] if volumes else [],
            "annotation": profile.to_dict()["annotation"],
        }
    print(json.dumps({"benchmark": "phantom_sites", "cases_per_site": args.cases,
                      "size": "reduced", "baseline": tuned.to_dict(),
                      "baseline_train_dice": round(train_score, 3), "sites": sites,
                      "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
