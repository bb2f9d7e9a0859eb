"""Segmentation quality of the `demo` preset (issue: segmentation core): trained on one built-in
site within its time budget on this machine, then `predict` and `evaluate` on that site's
held-out test scans and on the other built-in sites' test scans. Prints one JSON line with the
mean and median Dice, Pearson r of volumes and mean absolute volume error per site.

The training site is scored on `--own-test` scans (60), and on the first `--test` (20) of
them, the scans every run before 2026-12-01 used: 20 scans are one draw of lesions (the same
network scored 0.588 on nih's first 20 and 0.495 on the next 40), so the 60 give the steadier
figure.
`--size full` scores the sites at their scanners' own matrix (nih: 512, 0.45-0.5 mm) instead of
the reduced 256 matrix every other run used; `--sites` limits the test sites.
Usage: python benchmarks/quality.py [--site nih] [--train 40] [--test 20] [--own-test 60]
                                    [--size reduced|full] [--sites nih vumc ...]
                                    [--minutes M] [--keep DIR] [--set key=value ...]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from ichfed.infer import predict_inputs
from ichfed.io import open_site
from ichfed.metrics.evaluate import evaluate_folder, summarize
from ichfed.model.config import preset
from ichfed.phantom import BUILTIN, synth_site
from ichfed.train import train_sites


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--site", default="nih")
    parser.add_argument("--train", type=int, default=40)
    parser.add_argument("--test", type=int, default=20, help="test scans per other site")
    parser.add_argument("--own-test", type=int, default=60, help="the training site's")
    parser.add_argument("--size", choices=("reduced", "full"), default="reduced")
    parser.add_argument("--sites", nargs="+", choices=list(BUILTIN), default=list(BUILTIN),
                        help="test sites (default: all built-in)")
    parser.add_argument("--minutes", type=float, help="training budget (default: the preset's)")
    parser.add_argument("--keep", type=Path, help="keep data and model here")
    parser.add_argument("--set", action="append", default=[], help="preset override key=value")
    args = parser.parse_args()
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    if args.minutes is not None:
        overrides["max_minutes"] = args.minutes
    spec, tspec = preset("demo", **overrides)
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        size = "" if args.size == "reduced" else f"-{args.size}"  # earlier runs' folder names
        train = root / f"{args.site}{size}-train"
        if not train.exists():
            synth_site(train, BUILTIN[args.site], args.train, seed=0, size=args.size)
        tests = {}
        for site in args.sites:
            n = args.own_test if site == args.site else args.test
            tests[site] = root / f"{site}{size}-test-{n}"
            if not tests[site].exists():
                synth_site(tests[site], BUILTIN[site], n, seed=0, first=1000, size=args.size)
        model = root / "model"
        start = time.time()
        summary = train_sites([train], model, spec, tspec, cpu)
        train_s = time.time() - start
        sites = {}
        for site, folder in tests.items():
            images = [case.image for case in open_site(folder).labelled]
            predict_inputs(images, model, root / "pred" / site, cpu)
            rows, stats = evaluate_folder(root / "pred" / site, folder)
            sites[site] = {**stats, "dice": [r["dice"] for r in rows]}
            if site == args.site and len(rows) > args.test:  # the scans every earlier run used
                first = sorted(rows, key=lambda r: r["case"])[:args.test]
                sites[site][f"first_{args.test}"] = {**summarize(first),
                                                    "dice": [r["dice"] for r in first]}
        config = json.loads((model / "config.json").read_text())["model"]
    print(json.dumps({
        "benchmark": "quality", "preset": "demo", "overrides": overrides, "train_site": args.site,
        "size": args.size,
        "train_scans": summary["train_scans"], "val_scans": summary["val_scans"],
        "epochs": summary["epochs"], "best_epoch": summary["best_epoch"],
        "kept_epoch": summary["kept_epoch"],
        "train_seconds": round(train_s, 1), "threads": torch.get_num_threads(),
        "lesion_rule": {"threshold": config["threshold"], "min_lesion_ml": config["min_lesion_ml"],
                        "min_core_mm": config["min_core_mm"]},
        "test_scans_per_site": args.test, "own_test_scans": args.own_test, "sites": sites}))


if __name__ == "__main__":
    main()
