"""`make demo` until the full study exists: the longest real end-to-end path the project has.

Synthesizes the four built-in hospitals, trains the `demo` preset on one training site,
predicts every site's test scans and evaluates them. Stages already done in the output folder
are skipped, so an interrupted demo continues where it stopped.
Usage: python -m ichfed.demo [OUT] (default: runs/demo)
"""

import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ichfed.device import resolve_device
from ichfed.infer import predict_inputs
from ichfed.io import open_site
from ichfed.metrics.evaluate import evaluate_folder
from ichfed.model.config import preset
from ichfed.phantom import BUILTIN, synth_site
from ichfed.report.progress import training_progress
from ichfed.report.tables import write_csv
from ichfed.train import train_sites

TRAIN_SITE, TRAIN_CASES, TEST_CASES, SEED = "nih", 30, 10, 0


def _synth(root: Path, name: str, cases: int, first: int, console: Console) -> Path:
    if not (root / "site.json").exists():
        console.print(f"synthesizing {cases} scans of {name} -> {root}")
        synth_site(root, BUILTIN[name], cases, seed=SEED, first=first)
    return root


def main(out: Path) -> None:
    console = Console()
    t0 = time.time()
    train_root = _synth(out / "data" / f"{TRAIN_SITE}-train", TRAIN_SITE, TRAIN_CASES, 0, console)
    tests = {name: _synth(out / "data" / f"{name}-test", name, TEST_CASES, 1000, console)
             for name in BUILTIN}
    model = out / "models" / f"single-{TRAIN_SITE}"
    device = resolve_device("auto")
    if not (model / "config.json").exists():
        spec, tspec = preset("demo")
        resume = (model / "checkpoint.pt").exists()
        console.print(f"training the demo preset on {TRAIN_SITE} ({device})")
        with training_progress(tspec.max_epochs) as callbacks:
            train_sites([train_root], model, spec, tspec, device, resume=resume, **callbacks)
    table = Table(title=f"demo model trained on {TRAIN_SITE}: test scans per site")
    for col in ("site", "role", "scans", "mean Dice", "median Dice", "volume r", "MAE mL"):
        table.add_column(col)
    summaries = {}
    for name, root in tests.items():
        pred = out / "predictions" / f"single-{TRAIN_SITE}" / name
        if not (pred / "volumes.csv").exists():
            images = [c.image for c in open_site(root).cases]
            predict_inputs(images, model, pred, device)
        rows, summary = evaluate_folder(pred, root)
        write_csv(rows, pred / "evaluation.csv")
        summaries[name] = summary
        table.add_row(name, BUILTIN[name].role, str(summary["scans"]),
                      f"{summary['mean_dice']:.3f}", f"{summary['median_dice']:.3f}",
                      f"{summary['pearson_r']:.3f}", f"{summary['mean_abs_volume_error_ml']:.1f}")
    (out / "summary.json").write_text(json.dumps(summaries, indent=2) + "\n")
    console.print(table)
    console.print(f"done in {time.time() - t0:.0f} s; outputs in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/demo"))
