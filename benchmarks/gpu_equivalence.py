"""Does the mixed-precision training path (bf16 autocast and channels_last; TF32 too on a GPU)
give the same Dice as plain fp32? On a GPU, or on a CPU with bf16 hardware (AVX512-BF16, AMX),
where `ichfed train` uses it too. Trains the study's demo network for a fixed number of epochs
on one built-in site twice, with and without mixed precision, and evaluates both on the same
test scans. One JSON line.
Usage: python benchmarks/gpu_equivalence.py [--epochs 12] [--train 16] [--test 8]
"""

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ichfed.device import resolve_device
from ichfed.infer import segment
from ichfed.io import open_site, read_ct, read_mask
from ichfed.metrics import dice
from ichfed.model.bundle import load_model
from ichfed.model.config import preset
from ichfed.phantom import BUILTIN, synth_site
from ichfed.train import train_sites

STUDY_NET = {"features": (8, 16, 32, 64, 128, 8), "lesion_patches": 32}


def _synth(root: str, cases: int, first: int) -> str:
    synth_site(root, BUILTIN["nih"], cases, seed=0, first=first)
    return root


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--train", type=int, default=16)
    parser.add_argument("--test", type=int, default=8)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    result = {"benchmark": "gpu_equivalence", "device": str(device), "epochs": args.epochs}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with ProcessPoolExecutor(2) as pool:
            train, test = pool.map(_synth, [str(root / "train"), str(root / "test")],
                                   [args.train, args.test], [0, 1000])
        cases = [(read_ct(c.image), read_mask(c.mask)[0]) for c in open_site(test).labelled]
        for mixed in (True, False):
            spec, tspec = preset("demo", **STUDY_NET, max_epochs=args.epochs, max_minutes=0,
                                 patience=args.epochs, mixed_precision=mixed)
            t0 = time.time()
            summary = train_sites([Path(train)], root / f"m{mixed}", spec, tspec, device)
            model = load_model(root / f"m{mixed}", device)
            dices = [dice(segment(ct, model, device), truth) for ct, truth in cases]
            result["bf16" if mixed else "fp32"] = {
                "mean_dice": round(float(np.mean(dices)), 4),
                "best_val_loss": summary["best_val_loss"],
                "train_seconds": round(summary["seconds"], 1),
                "total_seconds": round(time.time() - t0, 1)}
    result["torch"] = torch.__version__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
