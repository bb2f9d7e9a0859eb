"""Bleed types (the typed model's targets), every model the `demo` preset within its time
budget, then `predict` and `evaluate` on each built-in training site's test scans:

- `binary` and `types`: the binary model and a typed one (`--set labels=types`) trained the
  same way on the training sites pooled (nih and vumc, masks that label types; the binary
  model reads them as blood);
- `types-nih` and `mixed`: a typed model on nih alone, and FedAvg of the typed model over nih
  (typed masks) and vumc with binary masks (the same scans labelled "blood"): what a binary
  site adds to a typed one.

Prints one JSON line: per model and test site the any-blood summary and, for typed models, each
type's scans, mean Dice, volume r and mL called that type on scans without it, and the share
of true epidural and subdural blood called the other.
Usage: python benchmarks/bleed_types.py [--train 30] [--test 30] [--minutes M] [--keep DIR]
                                  [--models binary,types,types-nih,mixed] [--set key=value ...]
With --keep, data and models stay in DIR and a model already there is scored again.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from ichfed.federated import run_plan
from ichfed.federated.plan import Plan
from ichfed.infer import predict_inputs
from ichfed.io import open_site
from ichfed.metrics.evaluate import evaluate_folder
from ichfed.model.config import preset
from ichfed.phantom import BUILTIN, synth_site
from ichfed.train import train_sites

SITES = ("nih", "vumc")
ANY_BLOOD = ("scans", "mean_dice", "median_dice", "pearson_r", "mean_abs_volume_error_ml")


def train_model(name: str, folder: Path, spec, tspec, train: dict[str, Path], root: Path
                ) -> None:
    cpu = torch.device("cpu")
    if name == "types-nih":
        train_sites([train["nih"]], folder, spec, tspec, cpu)
    elif name == "mixed":
        sites = (str(train["nih"]), str(root / "vumc-train-binary"))
        run_plan(Plan(strategy="fedavg", model=spec, train=tspec, out=str(folder), sites=sites,
                      num_sites=2, device="cpu"))
    else:
        train_sites([train[s] for s in SITES], folder, spec, tspec, cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=30, help="training scans per site")
    parser.add_argument("--test", type=int, default=30, help="test scans per site")
    parser.add_argument("--minutes", type=float, help="training budget (default: the preset's)")
    parser.add_argument("--keep", type=Path, help="keep data and models here")
    parser.add_argument("--models", default="binary,types,types-nih,mixed")
    parser.add_argument("--set", action="append", default=[], help="preset override key=value")
    args = parser.parse_args()
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    if args.minutes is not None:
        overrides["max_minutes"] = args.minutes
    cpu = torch.device("cpu")
    result = {"benchmark": "types", "train_sites": list(SITES), "train_scans": args.train,
              "test_scans": args.test, "overrides": overrides}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        train, test = {}, {}
        for site in SITES:
            train[site], test[site] = root / f"{site}-train", root / f"{site}-test"
            if not train[site].exists():
                synth_site(train[site], BUILTIN[site], args.train, seed=0, labels="types")
            if not test[site].exists():
                synth_site(test[site], BUILTIN[site], args.test, seed=0, first=1000,
                           labels="types")
        if "mixed" in args.models and not (root / "vumc-train-binary").exists():
            synth_site(root / "vumc-train-binary", BUILTIN["vumc"], args.train, seed=0)
        for name in args.models.split(","):
            folder = root / f"model-{name}"
            spec, tspec = preset("demo", **{**overrides,
                                            "labels": "binary" if name == "binary" else "types"})
            if not (folder / "config.json").exists():
                train_model(name, folder, spec, tspec, train, root)
            config = json.loads((folder / "config.json").read_text())["summary"]
            out = {"epochs": config.get("epochs", config.get("rounds")),
                   "seconds": config["seconds"]}
            for site in SITES:
                pred = root / f"pred-{name}" / site
                if not (pred / "volumes.csv").exists():
                    images = [c.image for c in open_site(test[site]).cases]
                    predict_inputs(images, folder, pred, cpu)
                _, summary = evaluate_folder(pred, test[site])
                out[site] = {k: v for k, v in summary.items() if k != "without_prediction"
                             and (spec.typed or k in ANY_BLOOD)}
            result[name] = out
    result["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
