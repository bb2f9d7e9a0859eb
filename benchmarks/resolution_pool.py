"""Pool runs of `resolution.py` (its JSON lines: one per model seed, or one scan set each) into
one figure per target, each with a 95% bootstrap interval over the test scans.

Why: the volume target is a median over the scans whose own-size prediction holds a bleed, 30
to 35 of 60. A scan whose thin subdural is found in part at its own size and not at all at
twice the pixel size counts 100%; a large bleed counts a few percent; the median falls where
these meet, and which side of 10% one run lands on moves with the seed and the scans. The
pooled figure, with an interval, says where the target stands; one run says little.

The bootstrap resamples scans (by case name), each drawn scan bringing all runs' values for
it, so the interval counts the scans as the unit that varies, not the seeds.
Usage: python benchmarks/resolution_pool.py RUNS.jsonl [...] [--mode auto] [--draws 5000]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from resolution import volume_differences  # the benchmark beside this file

FACTORS = (2.0, 0.7)


def read_runs(paths: list[Path], mode: str) -> list[dict]:
    """The `mode` part of every line; a line from before per-scan volumes were written is
    refused by name (its medians cannot be pooled)."""
    runs = []
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            run = json.loads(line).get(mode)
            if run is None or "volume_ml_x1.0" not in run:
                sys.exit(f"{path}:{number}: no per-scan volumes for mode '{mode}' "
                         "(rerun resolution.py on the kept model)")
            runs.append(run)
    return runs


def figures(runs: list[dict], cases: list[str]) -> dict:
    """Mean Dice drop and median volume difference for each factor over the runs' scans named
    in `cases` (a name drawn twice counts twice)."""
    out = {}
    for factor in FACTORS:
        drops, diffs = [], []
        for run in runs:
            index = {name: i for i, name in enumerate(run["cases"])}
            rows = [index[c] for c in cases if c in index]
            drops += [run["dice_x1.0"][i] - run[f"dice_x{factor}"][i] for i in rows]
            diffs += volume_differences([run["volume_ml_x1.0"][i] for i in rows],
                                        [run[f"volume_ml_x{factor}"][i] for i in rows])
        out[f"dice_drop_x{factor}"] = float(np.mean(drops))
        out[f"median_volume_diff_x{factor}"] = float(np.median(diffs)) if diffs else None
        out[f"volume_scans_x{factor}"] = len(diffs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", type=Path, nargs="+", help="JSON lines written by resolution.py")
    parser.add_argument("--mode", default="auto", help="auto or native")
    parser.add_argument("--draws", type=int, default=5000)
    args = parser.parse_args()
    runs = read_runs(args.runs, args.mode)
    names = sorted({name for run in runs for name in run["cases"]})
    result = {"benchmark": "resolution_pool", "mode": args.mode, "runs": len(runs),
              "seeds": [run.get("model_seed") for run in runs], "scans": len(names),
              **{k: round(v, 4) if isinstance(v, float) else v
                 for k, v in figures(runs, names).items()}}
    rng = np.random.default_rng(0)
    draws = [figures(runs, list(rng.choice(names, len(names)))) for _ in range(args.draws)]
    for key in draws[0]:
        if key.startswith(("dice_drop", "median_volume")):
            values = [d[key] for d in draws if d[key] is not None]
            result[f"{key}_ci95"] = [round(float(v), 4) for v in np.percentile(values, [2.5, 97.5])]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
