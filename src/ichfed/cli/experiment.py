"""`ichfed experiment`: the paper's study on the built-in hospitals, with a report."""

from pathlib import Path
from typing import Annotated

import typer

from ichfed.cli import command
from ichfed.cli.train import parse_overrides


@command
def experiment(
    out: Annotated[Path, typer.Option(help="Study folder (a rerun skips finished stages).")] = Path(
        "runs/study"),
    preset: Annotated[str, typer.Option(help="demo (2-core CPU) or paper (GPU).")] = "demo",
    seed: Annotated[int, typer.Option(help="Seed of the data and of every model.")] = 0,
    train_cases: Annotated[int, typer.Option(help="Training scans per training site.")] = 20,
    test_cases: Annotated[int, typer.Option(help="Test scans per site.")] = 8,
    set_: Annotated[list[str], typer.Option("--set", help="Override a preset setting for "
                                            "every model, e.g. --set max_minutes=5.")] = [],  # noqa: B006
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Single-site, multi-site (cwt, fedavg) and pooled models on every site: report.html."""
    from ichfed.experiment import StudySpec, run_study

    run_study(out, StudySpec(preset=preset, seed=seed, train_cases=train_cases,
                             test_cases=test_cases, overrides=parse_overrides(set_)), device)
