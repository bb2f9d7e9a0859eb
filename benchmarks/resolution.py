"""Resolution robustness (issue: real hospitals' data): a model trained on a built-in site at
its own pixel size, applied to the same test scans resampled in-plane to 2x and to 0.7x the
pixel size, with in-plane resampling on (`inplane_mm` auto) and off (`native`, the paper).
Reports mean Dice at each size (against the truth resampled the same way) and the median
relative difference of predicted volumes from the native-size prediction, with each scan's
Dice and predicted volume, so that `resolution_pool.py` can pool runs and bound the medians.
Prints one JSON line.
Usage: python benchmarks/resolution.py [--train 40] [--test 30] [--minutes M]
                                       [--modes auto,native] [--set key=value ...]
                                       [--keep DIR]
By default the model is what `ichfed train --preset demo` gives: 40 scans (the quality
benchmark's), the preset's own time budget (--minutes to shorten it; the rows before
2026-12-06 in docs/experiments.md used 4 minutes and 24 scans).
With --keep, the data and the models stay in DIR; a model already there (DIR/auto, DIR/native)
is scored again instead of trained, e.g. on more test scans.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ichfed.infer import segment
from ichfed.io import open_site, read_ct, read_mask
from ichfed.io.writer import write_nifti
from ichfed.metrics import dice
from ichfed.model.bundle import load_model
from ichfed.model.config import preset
from ichfed.phantom import BUILTIN, synth_site
from ichfed.preprocess.resample import mask_to_work, plan_grid, to_work
from ichfed.train import train_sites


def rescaled(image: np.ndarray, mask: np.ndarray, affine: np.ndarray, factor: float):
    """The scan as a scanner with `factor` times the pixel size would store it (in-plane axes
    are the first two stored axes of the built-in sites)."""
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    grid = plan_grid(image.shape, tuple(spacing), spacing[0] * factor)
    new_affine = affine.copy()
    new_affine[:3, 0] *= image.shape[0] / grid.work_shape[0]
    new_affine[:3, 1] *= image.shape[1] / grid.work_shape[1]
    return (to_work(image, grid).astype(np.float32),
            mask_to_work(mask > 0, grid).astype(np.uint8), new_affine)


def volume_differences(own: list[float], other: list[float]) -> list[float]:
    """|other / own - 1| for each scan whose own-size prediction holds a bleed (over 0.1 mL):
    the volume target's terms."""
    return [abs(b / a - 1) for a, b in zip(own, other, strict=True) if a > 0.1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=40)
    parser.add_argument("--test", type=int, default=30)
    parser.add_argument("--minutes", type=float, help="training budget (the preset's own)")
    parser.add_argument("--modes", default="auto,native", help="inplane_mm settings to train")
    parser.add_argument("--set", action="append", default=[], help="preset override key=value")
    parser.add_argument("--keep", type=Path, help="keep data and models here (both reused)")
    args = parser.parse_args()
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    if args.keep and overrides and any((args.keep / m / "config.json").exists()
                                       for m in args.modes.split(",")):
        parser.error(f"{args.keep} holds a kept model; --set would not apply to it")
    minutes = args.minutes if args.minutes is not None else preset("demo")[1].max_minutes
    cpu = torch.device("cpu")
    result = {"benchmark": "resolution", "site": "nih", "train_scans": args.train,
              "test_scans": args.test, "minutes_per_model": minutes,
              "overrides": overrides}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        train, test = root / f"train-{args.train}", root / f"test-{args.test}"
        if not train.exists():
            synth_site(train, BUILTIN["nih"], args.train, seed=0)
        if not test.exists():
            synth_site(test, BUILTIN["nih"], args.test, seed=0, first=1000)
        scans = {}
        for case in open_site(test).labelled:
            ct, (mask, _) = read_ct(case.image), read_mask(case.mask)
            for factor in (1.0, 2.0, 0.7):
                image, truth, affine = ((ct.data, mask, ct.affine) if factor == 1.0
                                        else rescaled(ct.data, mask, ct.affine, factor))
                path = root / f"{test.name}-x{factor}" / f"{case.name}.nii.gz"
                if not path.exists():
                    write_nifti(image, affine, path)
                scans[(case.name, factor)] = (path, truth)
        for mode in args.modes.split(","):
            spec, tspec = preset("demo", **{**overrides, "max_minutes": minutes,
                                            "inplane_mm": mode})
            kept = (root / mode / "config.json").exists()
            if not kept:
                train_sites([train], root / mode, spec, tspec, cpu)
            model = load_model(root / mode)
            rows = {}
            for (name, factor), (path, truth) in scans.items():
                ct = read_ct(path)
                pred = segment(ct, model, cpu)
                voxel_ml = abs(np.linalg.det(ct.affine[:3, :3])) / 1000
                rows[(name, factor)] = (dice(pred, truth), pred.sum() * voxel_ml)
            cases = [n for n, f in rows if f == 1.0]
            out = {"model_inplane_mm": model.spec.inplane_mm, "kept_model": kept,
                   "model_seed": model.config["train"]["seed"], "cases": cases}
            for factor in (1.0, 2.0, 0.7):
                dices = [rows[(n, factor)][0] for n in cases]
                out[f"mean_dice_x{factor}"] = round(float(np.mean(dices)), 4)
                out[f"dice_x{factor}"] = [round(float(d), 3) for d in dices]
                out[f"volume_ml_x{factor}"] = [round(float(rows[(n, factor)][1]), 5)
                                               for n in cases]
                if factor != 1.0:
                    rel = volume_differences([rows[(n, 1.0)][1] for n in cases],
                                             [rows[(n, factor)][1] for n in cases])
                    out[f"median_volume_diff_x{factor}"] = (round(float(np.median(rel)), 4)
                                                           if rel else None)
            result[mode] = out
    result["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
