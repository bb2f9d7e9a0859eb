"""Studies repeated with the models drawn from other seeds (`--set seed=N`) on the same scans,
read together. One seeded run does not rank the methods: with 8 test scans a site, a speck
more or less moves a mean by 0.125. So each model's mean Dice per site is given across the
seeds (mean, SD, range), and the paired tests use each scan's Dice averaged over the seeds.
"""

import json
from pathlib import Path

import numpy as np

from ichfed.errors import IchfedError
from ichfed.metrics.compare import paired_wilcoxon
from ichfed.report.tables import read_csv, write_csv

FIRST_MULTI = ("cwt", "fedavg", "pooled")  # the model the others are tested against


def _read(folder: Path) -> tuple[dict, list[dict]]:
    for name in ("study.json", "results.csv"):
        if not (folder / name).is_file():
            raise IchfedError(f"{folder}: not a finished study ({name} is missing)")
    return json.loads((folder / "study.json").read_text()), read_csv(folder / "results.csv")


def _model_seed(settings: dict) -> int:
    return int(settings.get("overrides", {}).get("seed", settings["seed"]))


def _without_model_seed(settings: dict) -> dict:
    overrides = {k: v for k, v in settings.get("overrides", {}).items() if k != "seed"}
    return {**settings, "overrides": overrides}


def read_repeats(folders: list[Path]) -> dict[int, list[dict]]:
    """Each study's per-scan results by its models' seed, after checking that the studies
    differ in nothing but that seed (same sites, scans, split, preset and settings)."""
    if len(folders) < 2:
        raise IchfedError("give at least two study folders to combine")
    first, by_seed = None, {}
    for folder in folders:
        settings, rows = _read(Path(folder))
        keys = {(r["model"], r["site"], r["case"]) for r in rows}
        if first is None:
            first = (folder, _without_model_seed(settings), keys)
        elif _without_model_seed(settings) != first[1]:
            raise IchfedError(f"{folder}: its settings differ from {first[0]}'s in more than "
                              "the models' seed (--set seed)")
        elif keys != first[2]:
            raise IchfedError(f"{folder}: holds other models or scans than {first[0]}")
        seed = _model_seed(settings)
        if seed in by_seed:
            raise IchfedError(f"{folder}: its models have seed {seed}, as another folder's do")
        by_seed[seed] = rows
    return by_seed


def across_seeds(by_seed: dict[int, list[dict]]) -> list[dict]:
    """Per (model, site): the mean Dice of each seed's models, then their mean, SD and range."""
    pairs = list(dict.fromkeys((r["model"], r["site"]) for r in next(iter(by_seed.values()))))
    table = []
    for model, site in pairs:
        means = {seed: float(np.mean([r["dice"] for r in rows
                                      if r["model"] == model and r["site"] == site]))
                 for seed, rows in sorted(by_seed.items())}
        values = np.array(list(means.values()))
        table.append({"model": model, "site": site, "seeds": len(values),
                      "mean_dice": round(float(values.mean()), 4),
                      "sd_dice": round(float(values.std(ddof=1)), 4),
                      "min_dice": round(float(values.min()), 4),
                      "max_dice": round(float(values.max()), 4),
                      "dice_by_seed": " ".join(f"{s}:{v:.3f}" for s, v in means.items())})
    return table


def seed_averaged(by_seed: dict[int, list[dict]]) -> list[dict]:
    """One row per (model, site, scan) with the scan's Dice averaged over the seeds."""
    dice: dict[tuple, list[float]] = {}
    for rows in by_seed.values():
        for r in rows:
            dice.setdefault((r["model"], r["site"], r["case"]), []).append(r["dice"])
    return [{"model": m, "site": s, "case": c, "dice": float(np.mean(v))}
            for (m, s, c), v in dice.items()]


def combine_studies(folders: list[Path], out: Path) -> tuple[list[dict], list[dict]]:
    """Writes OUT/summary.csv (across seeds) and OUT/wilcoxon.csv (the first multi-site model
    against every other, on seed-averaged Dice); returns both tables."""
    by_seed = read_repeats(folders)
    summary = across_seeds(by_seed)
    names = list(dict.fromkeys(r["model"] for r in summary))
    multi = next((m for m in FIRST_MULTI if m in names), names[0])
    tests = paired_wilcoxon(seed_averaged(by_seed), multi, [n for n in names if n != multi])
    write_csv(summary, Path(out) / "summary.csv")
    if tests:
        write_csv(tests, Path(out) / "wilcoxon.csv")
    return summary, tests
