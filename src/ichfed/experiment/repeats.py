"""Studies repeated with the models drawn from other seeds (`--set seed=N`) on the same scans,
read together. One seeded run does not rank the methods: with 8 test scans a site, a speck
more or less moves a mean by 0.125. So each model's mean Dice per site is given across the
seeds (mean, SD, range), the study's two questions are asked of every seed, and the paired
tests use each scan's Dice averaged over the seeds.
"""

import html
import json
from pathlib import Path

import numpy as np

from ichfed.errors import IchfedError
from ichfed.experiment.privacy import privacy_section
from ichfed.experiment.study import PRIVATE, findings, first_multi_site, saved_settings
from ichfed.metrics.compare import paired_wilcoxon, summary_table
from ichfed.report import html as report
from ichfed.report.tables import read_csv, write_csv


def _read(folder: Path) -> tuple[dict, list[dict]]:
    for name in ("study.json", "results.csv"):
        if not (folder / name).is_file():
            raise IchfedError(f"{folder}: not a finished study ({name} is missing)")
    return (saved_settings(json.loads((folder / "study.json").read_text())),
            read_csv(folder / "results.csv"))


def _model_seed(settings: dict) -> int:
    return int(settings.get("overrides", {}).get("seed", settings["seed"]))


def _without_model_seed(settings: dict) -> dict:
    overrides = {k: v for k, v in settings.get("overrides", {}).items() if k != "seed"}
    return {**settings, "overrides": overrides}


def read_repeats(folders: list[Path], out: Path) -> tuple[dict, dict[int, list[dict]]]:
    """The first study's settings, and each study's per-scan results by its models' seed,
    after checking that the studies differ in nothing but that seed (same sites, scans,
    split, preset and settings) and that `out` is not a study's own folder."""
    if len(folders) < 2:
        raise IchfedError("give at least two study folders to combine")
    if (Path(out) / "study.json").exists():  # its summary.csv and wilcoxon.csv would be replaced
        raise IchfedError(f"{out}: holds a study; give --out a folder of its own")
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
    return first[1], by_seed


def seed_means(by_seed: dict[int, list[dict]]) -> dict[int, list[dict]]:
    """Each seed's summary per (model, site), as its study computed it (summary.csv)."""
    return {seed: summary_table(rows) for seed, rows in sorted(by_seed.items())}


def across_seeds(means: dict[int, list[dict]]) -> list[dict]:
    """Per (model, site): the seeds' mean Dice, then their mean, SD and range."""
    by_pair: dict[tuple[str, str], dict[int, float]] = {}
    for seed, rows in means.items():
        for r in rows:
            by_pair.setdefault((r["model"], r["site"]), {})[seed] = r["mean_dice"]
    table = []
    for (model, site), per_seed in by_pair.items():
        values = np.array(list(per_seed.values()))
        table.append({"model": model, "site": site, "seeds": len(values),
                      "mean_dice": round(float(values.mean()), 4),
                      "sd_dice": round(float(values.std(ddof=1)), 4),
                      "min_dice": round(float(values.min()), 4),
                      "max_dice": round(float(values.max()), 4),
                      "dice_by_seed": " ".join(f"{s}:{v:.3f}" for s, v in per_seed.items())})
    return table


def questions_across_seeds(means: dict[int, list[dict]], summary: list[dict],
                           train_sites: list[str], holdout_sites: list[str]) -> dict:
    """The study's two questions (study.findings) asked of each seed's models: how often
    cwt beats the single-site models' mean on a holdout site, and how often a multi-site
    model reaches 0.98 of the pooled model on every site, with its ratio of the seeds' means
    (from `summary`, across_seeds' table: a mean of ratios would be ruled by one seed's weak
    pooled model)."""
    per_seed = {seed: findings(rows, train_sites, holdout_sites) for seed, rows in means.items()}
    holdout: dict[str, dict] = {}
    for answers in per_seed.values():
        for site, a in answers["multi_site_vs_single_site_on_holdout"].items():
            h = holdout.setdefault(site, {"cwt_better_in": 0, "cwt": [], "single_site": []})
            h["cwt_better_in"] += int(a["cwt_better"])
            h["cwt"].append(a["cwt"])
            h["single_site"].append(a["mean_of_single_site"])
    of_means = findings(summary, train_sites, holdout_sites)["ratio_to_pooled"]
    pooled = {model: {"reaches_0.98_everywhere_in": sum(
        a["ratio_to_pooled"][model]["all_at_least_0.98"] for a in per_seed.values()),
        "ratio_of_means": ratios["per_site"]} for model, ratios in of_means.items()}
    return {"seeds": list(per_seed),
            "multi_site_vs_single_site_on_holdout": {
                site: {"cwt_better_in": h["cwt_better_in"], "of_seeds": len(h["cwt"]),
                       "cwt_mean": round(float(np.mean(h["cwt"])), 4),
                       "mean_of_single_site_mean": round(float(np.mean(h["single_site"])), 4)}
                for site, h in holdout.items()},
            "against_pooled": pooled, "per_seed": per_seed}


def seed_averaged(by_seed: dict[int, list[dict]]) -> list[dict]:
    """One row per (model, site, scan) with the scan's Dice averaged over the seeds."""
    dice: dict[tuple, list[float]] = {}
    for rows in by_seed.values():
        for r in rows:
            dice.setdefault((r["model"], r["site"], r["case"]), []).append(r["dice"])
    return [{"model": m, "site": s, "case": c, "dice": float(np.mean(v))}
            for (m, s, c), v in dice.items()]


def mean_sd_cells(summary: list[dict]) -> dict[tuple[str, str], str]:
    """`across_seeds`' table as "mean (SD)" per (model, site), for the grids."""
    return {(r["model"], r["site"]): f"{r['mean_dice']:.3f} ({r['sd_dice']:.3f})"
            for r in summary}


def findings_lines(answers: dict) -> list[str]:
    """`questions_across_seeds`' answers, a sentence each (printed, and in the report)."""
    lines = [f"holdout {site}: cwt beats the single-site models' mean in {a['cwt_better_in']} "
             f"of {a['of_seeds']} seeds ({a['cwt_mean']:.3f} against "
             f"{a['mean_of_single_site_mean']:.3f} on average)"
             for site, a in answers["multi_site_vs_single_site_on_holdout"].items()]
    seeds = len(answers["seeds"])
    lines += [f"{model} reaches 0.98 of pooled on every site in "
              f"{a['reaches_0.98_everywhere_in']} of {seeds} seeds; ratio of the seeds' means: "
              + ", ".join(f"{s} {v:.2f}" for s, v in a["ratio_of_means"].items())
              for model, a in answers["against_pooled"].items()]
    return lines


def combine_studies(folders: list[Path], out: Path) -> tuple[list[dict], list[dict], dict]:
    """Writes OUT/summary.csv (across seeds), OUT/wilcoxon.csv (the first multi-site model
    against every other, on seed-averaged Dice), OUT/findings.json (the study's questions
    across seeds) and OUT/report.html; returns the first three."""
    settings, by_seed = read_repeats(folders, out)
    means = seed_means(by_seed)
    summary = across_seeds(means)
    roles = {role: [s["name"] for s in settings["sites"] if s["role"] == role]
             for role in ("train", "holdout")}
    answers = questions_across_seeds(means, summary, roles["train"], roles["holdout"])
    names = list(dict.fromkeys(r["model"] for r in summary))
    multi = first_multi_site(names)
    tests = paired_wilcoxon(seed_averaged(by_seed), multi, [n for n in names if n != multi])
    out = Path(out)
    write_csv(summary, out / "summary.csv")
    if tests:
        write_csv(tests, out / "wilcoxon.csv")
    (out / "findings.json").write_text(json.dumps(answers, indent=2) + "\n")
    write_combined_report(out / "report.html", dict(zip(by_seed, folders, strict=True)), means,
                          summary, tests, answers)
    return summary, tests, answers


def write_combined_report(path: Path, folders: dict[int, Path], means: dict[int, list[dict]],
                          summary: list[dict], tests: list[dict], answers: dict) -> Path:
    """The combined studies for a reader in a browser; each study's own report.html keeps its
    per-scan figures."""
    names = list(dict.fromkeys(r["model"] for r in summary))
    sites = list(dict.fromkeys(r["site"] for r in summary))
    lines = [html.escape(line) for line in findings_lines(answers)]
    note = "<div class='note'><p>" + "</p><p>".join(lines) + "</p></div>"
    studies = [{"model seed": seed, "study folder": str(Path(folders[seed]).resolve())}
               for seed in means]
    sections = [
        (f"Mean Dice over {len(means)} model seeds (SD of the seeds' means), models by test "
         "site", report.grid_html(mean_sd_cells(summary), names, sites) + note),
        ("Each seed's mean Dice", report.seed_means_plot(means, names, sites)),
        *privacy_section({n: Path(folders[next(iter(means))]) / "models" / n for n in names
                          if n.startswith(PRIVATE)}, summary, sites),
        ("Paired Wilcoxon signed-rank tests on each scan's Dice averaged over the seeds",
         report.table_html(tests) if tests else "<p>Only one model in these studies.</p>"),
        ("Summary per model and site", report.table_html(summary)),
        ("The studies combined", report.table_html(studies)),
    ]
    return report.write_report(path, sections, "ichfed: one study repeated over model seeds")
