"""`ichfed experiment`: the paper's multi-site comparison end to end, with a report."""

import json
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rich.console import Console

from ichfed.device import cpu_description, resolve_device
from ichfed.experiment.bleed_types import types_section
from ichfed.experiment.privacy import privacy_section
from ichfed.experiment.repeats import combine_studies, findings_lines, mean_sd_cells
from ichfed.experiment.sites import SiteEntry, parse_site, read_study_file
from ichfed.experiment.study import (
    StudySpec,
    check_study_folder,
    dp_name,
    evaluate_all,
    findings,
    first_multi_site,
    gather_sites,
    models,
    scaled,
    train_model,
)
from ichfed.io import open_site, read_ct, read_mask
from ichfed.io.align import read_case_mask
from ichfed.metrics.compare import paired_wilcoxon, summary_table
from ichfed.report import html as report
from ichfed.report.console import print_grid, print_rows
from ichfed.report.progress import epoch_info, progress_bar
from ichfed.report.tables import write_csv

__all__ = ["SiteEntry", "StudySpec", "combine", "parse_site", "read_study_file",
           "run_study", "scaled"]


def _stage_estimates(spec: StudySpec) -> dict[str, float]:
    """Rough seconds per stage on a 2-core CPU, for the time-left estimate."""
    def train_s(kind: str) -> float:
        _, tspec = spec.specs(kind)
        if tspec.max_minutes:
            return 60 * tspec.max_minutes + 25
        if spec.preset != "demo":
            return 600.0
        passes = tspec.max_epochs * spec.sites_per_epoch(kind)
        return 6.5 * passes + (20 if kind in ("cwt", "fedavg") else 5)

    builtin = [e for e in spec.sites if e.builtin]
    tests = sum(spec.test_cases if e.role == "train" else spec.holdout_cases for e in builtin)
    scans = sum(spec.train_cases for e in builtin if e.role == "train") + tests
    estimate = {"sites": (1.0 if spec.size == "reduced" else 8.0) * scans}
    estimate.update({name: (50.0 if kind == "threshold" else train_s(kind))
                     for name, kind in models(spec)})
    users = sum(e.builtin is None for e in spec.sites)
    estimate.update(evaluate=5.0 * (tests + spec.test_cases * users), report=20.0)
    return estimate


def run_study(out: Path, spec: StudySpec, device_name: str = "auto",
              engine: str = "simulation") -> list[dict]:
    """Run (or continue) the study in `out`, the multi-site models on Flower's `engine`;
    returns summary rows (model, site, figures)."""
    out = Path(out)
    check_study_folder(out, spec)
    device = resolve_device(device_name)
    console = Console()
    estimates = _stage_estimates(spec)
    timings: dict[str, float] = json.loads((out / "timings.json").read_text()) if (
        out / "timings.json").exists() else {}
    with progress_bar(console) as bar:
        task = bar.add_task("study", total=sum(estimates.values()), info="", unit_seconds=1.0,
                            step=0.0)

        def stage(name: str, fn):
            bar.update(task, description=name, info="", step=estimates[name])
            t0 = time.time()
            result = fn()
            if name not in timings:
                timings[name] = round(time.time() - t0, 1)
                (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
            bar.advance(task, estimates[name])
            return result

        def on_epoch(row: dict) -> None:
            done = row.get("epoch", row.get("round"))
            bar.update(task, info=f"{'round' if 'round' in row else 'epoch'} {done}: "
                                  f"{epoch_info(row)}")

        layout = stage("sites", lambda: gather_sites(out, spec))
        folders = {name: stage(name, lambda n=name, k=kind: train_model(
            out, n, k, spec, layout["train"], device, on_epoch, engine))
            for name, kind in models(spec)}
        rows = stage("evaluate", lambda: evaluate_all(out, spec, layout["test"], folders,
                                                      device))
        summary = stage("report", lambda: write_outputs(out, spec, rows, folders,
                                                        layout["test"], timings, device))
    print_summary(summary, [n for n, _ in models(spec)], list(layout["test"]))
    console.print(f"report: {out / 'report.html'}")
    return summary


def _versions() -> dict:
    names = ("ichfed", "torch", "monai", "flwr", "numpy", "scipy", "nibabel", "pydicom")
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    # recorded so that two runs can be told apart by their host (see cpu_description)
    return {**found, "python": platform.python_version(), "platform": platform.platform(),
            "cpu": cpu_description()}


def write_outputs(out: Path, spec: StudySpec, rows: list[dict], folders: dict[str, Path],
                  layout_tests: dict[str, Path], timings: dict, device) -> list[dict]:
    """summary.csv, wilcoxon.csv, findings.json and report.html from the per-scan results."""
    names = [n for n, _ in models(spec)]
    sites = list(dict.fromkeys(r["site"] for r in rows))
    summary = summary_table(rows)
    write_csv(summary, out / "summary.csv")
    multi = first_multi_site(names)
    tests = paired_wilcoxon(rows, multi, [n for n in names if n.startswith("single-")])
    if tests:
        write_csv(tests, out / "wilcoxon.csv")
    answers = findings(summary, spec.train_sites, spec.holdout_sites)
    (out / "findings.json").write_text(json.dumps(answers, indent=2) + "\n")
    histories = {}
    for name, folder in folders.items():
        if (folder / "config.json").exists():
            histories[name] = json.loads((folder / "config.json").read_text())["summary"][
                "history"]
    model_spec, tspec = spec.specs()
    sections = [
        ("Results: mean Dice and Pearson r of volumes, models by test site",
         report.paper_table(summary, names, sites) + _findings_html(answers)),
        ("Dice per scan", report.dice_boxplots(rows, names, sites)),
        ("Volumes: predicted against true, and Bland-Altman",
         report.volume_plots(rows, names, sites)),
        *types_section(out),
        ("Training curves", report.training_curves(histories)),
        *privacy_section({dp_name(n): folders[dp_name(n)] for n in spec.dp_noise}, summary,
                         sites),
        (f"The {multi} model: best, median and worst scan of each site",
         report.overlays(_overlay_cases(out, rows, multi, layout_tests))),
        (f"Paired Wilcoxon signed-rank tests (Dice, {multi} against each single-site model)",
         report.table_html(tests) if tests else "<p>No single-site models in this study.</p>"),
        ("Summary per model and site", report.table_html(summary)),
        ("Settings and software", report.table_html(
            [{"setting": k, "value": json.dumps(v, default=list)} for k, v in
             {**spec.to_dict(), "model": model_spec.to_dict(), "train": tspec.to_dict(),
              "device": str(device), "stage_seconds": timings, **_versions()}.items()])),
    ]
    report.write_report(out / "report.html", sections,
                        "ichfed study: multi-site hematoma segmentation on built-in hospitals")
    return summary


def _findings_html(answers: dict) -> str:
    items = []
    for site, a in answers["multi_site_vs_single_site_on_holdout"].items():
        verdict = "beats" if a["cwt_better"] else "does not beat"
        items.append(f"On holdout site <b>{site}</b>, the multi-site cwt model (Dice "
                     f"{a['cwt']:.3f}) {verdict} the mean of the single-site models "
                     f"({a['mean_of_single_site']:.3f}).")
    for model, r in answers["ratio_to_pooled"].items():
        ratios = ", ".join(f"{s} {v:.2f}" for s, v in r["per_site"].items())
        verdict = "reaches" if r["all_at_least_0.98"] else "does not reach"
        items.append(f"<b>{model}</b> {verdict} 0.98 of the pooled model's Dice on every site "
                     f"(ratios: {ratios}).")
    return "<div class='note'><p>" + "</p><p>".join(items) + "</p></div>"


def _overlay_cases(out: Path, rows: list[dict], model: str,
                   tests: dict[str, Path]) -> list[dict]:
    panels = []
    for site, root in tests.items():
        mine = sorted((r for r in rows if r["model"] == model and r["site"] == site),
                      key=lambda r: r["dice"])
        if not mine:
            continue
        cases = {c.name: c for c in open_site(root).labelled}
        picks = {"best": mine[-1], "median": mine[len(mine) // 2], "worst": mine[0]}
        for label, row in picks.items():
            case = cases[row["case"]]
            ct = read_ct(case.image)
            truth, _ = read_case_mask(case.mask, ct)
            pred, _ = read_mask(out / "predictions" / model / site / f"{row['case']}_mask.nii.gz")
            panels.append({"title": f"{site} {label}: Dice {row['dice']:.2f}", "image": ct.data,
                           "affine": ct.affine, "truth": truth, "pred": pred})
    return panels


def print_summary(summary: list[dict], names: list[str], sites: list[str]) -> None:
    cell = {(r["model"], r["site"]): f"{r['mean_dice']:.3f} ({r['pearson_r']:.2f})"
            for r in summary}
    print_grid(cell, names, sites, "mean Dice (Pearson r of volumes) on each site's test scans")


def combine(folders: list[Path], out: Path) -> list[dict]:
    """Studies repeated with other model seeds, read together (experiment/repeats.py): writes
    OUT/summary.csv, OUT/wilcoxon.csv, OUT/findings.json and OUT/report.html and prints the
    first three."""
    summary, tests, answers = combine_studies(folders, out)
    names = list(dict.fromkeys(r["model"] for r in summary))
    sites = list(dict.fromkeys(r["site"] for r in summary))
    print_grid(mean_sd_cells(summary), names, sites, f"mean Dice over {summary[0]['seeds']} "
               "model seeds (SD of the seeds' means) on each site's test scans")
    if tests:
        print_rows(tests, "paired Wilcoxon signed-rank tests on seed-averaged Dice per scan")
    console = Console()
    for line in findings_lines(answers):
        console.print(line)
    console.print(f"written: {Path(out)}/summary.csv, wilcoxon.csv, findings.json, "
                  "report.html")
    return summary
