"""`ichfed experiment`: the paper's study on built-in hospitals or a user's own, with a report."""

from pathlib import Path
from typing import Annotated

import typer

from ichfed.cli import STUDY, command
from ichfed.cli.train import parse_overrides


@command(panel=STUDY)
def experiment(
    out: Annotated[Path, typer.Option(help="Study folder (a rerun skips finished stages).")] = Path(
        "runs/study"),
    preset: Annotated[str, typer.Option(help="demo (2-core CPU) or paper (GPU).")] = "demo",
    seed: Annotated[int, typer.Option(help="Seed of the data, the splits and every model "
                                          "(--set seed=N: the models only).")] = 0,
    train: Annotated[list[str], typer.Option(
        help="A training site, NAME=DIR (a user's site, split into train and test scans) or "
             "NAME=builtin[:PROFILE]. Repeat; without --train/--holdout the four built-in "
             "hospitals are used.")] = [],  # noqa: B006
    holdout: Annotated[list[str], typer.Option(
        help="A holdout site (test only), NAME=DIR or NAME=builtin[:PROFILE].")] = [],  # noqa: B006
    study: Annotated[Path | None, typer.Option(help="A study file (TOML) with the sites and "
                                               "settings; see docs/study.md.")] = None,
    scale: Annotated[str, typer.Option(
        help="How many built-in scans, of which size: demo (20 train and 8 test scans a "
             "training site, 8 a holdout site, reduced size) or paper (32 and 33, 20; full "
             "size, for a GPU).")] = "demo",
    train_cases: Annotated[int | None, typer.Option(
        help="Scans per built-in training site (default: the scale's).")] = None,
    test_cases: Annotated[int | None, typer.Option(
        help="Test scans per built-in site (holdout sites too, unless --holdout-cases; "
             "default: the scale's).")] = None,
    holdout_cases: Annotated[int | None, typer.Option(
        help="Test scans per built-in holdout site (default: the scale's).")] = None,
    test_fraction: Annotated[float, typer.Option(help="Share of a user's training site kept "
                                                 "for testing.")] = 0.3,
    set_: Annotated[list[str], typer.Option("--set", help="Override a preset setting for "
                                            "every model, e.g. --set max_minutes=5.")] = [],  # noqa: B006
    models: Annotated[str, typer.Option(help="Which models to train, comma-separated: single, "
                                        "cwt, fedavg, pooled, threshold.")] = (
        "single,cwt,fedavg,pooled,threshold"),
    dp_noise: Annotated[str, typer.Option(
        help="Also train FedAvg with site-level differential privacy, one model per noise "
             "multiplier, comma-separated (e.g. 0.001,0.01); each model's epsilon is in the "
             "report.")] = "",
    dp_clip: Annotated[float | None, typer.Option(
        help="With --dp-noise: the clipping norm of a round's update [default: 10].")] = None,
    dp_delta: Annotated[float | None, typer.Option(
        help="With --dp-noise: delta [default: 1e-5].")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    engine: Annotated[str, typer.Option(
        help="Flower runtime of the multi-site models: simulation (one process) or deployment "
             "(a TLS coordinator and one process per site on 127.0.0.1).")] = "simulation",
) -> None:
    """Single-site, multi-site (cwt, fedavg) and pooled models on every site: report.html."""
    from ichfed.experiment import StudySpec, parse_site, read_study_file, run_study, scaled
    from ichfed.experiment.sites import DEFAULT_SITES

    counts = {"train_cases": train_cases, "test_cases": test_cases,
              "holdout_cases": holdout_cases}
    settings = {"preset": preset, "seed": seed, "scale": scale,
                **{k: v for k, v in counts.items() if v is not None},
                "test_fraction": test_fraction, "overrides": parse_overrides(set_),
                "kinds": tuple(m.strip() for m in models.split(",") if m.strip()),
                **({"dp_noise": parse_numbers(dp_noise, "--dp-noise")} if dp_noise else {}),
                **({"dp_clip": dp_clip} if dp_clip is not None else {}),
                **({"dp_delta": dp_delta} if dp_delta is not None else {})}
    sites = tuple(parse_site(t, "train") for t in train) + tuple(
        parse_site(h, "holdout") for h in holdout)
    if study is not None:
        file_settings, file_sites = read_study_file(study)
        overrides = parse_overrides([f"{k}={v}" for k, v in file_settings.pop("set", {}).items()])
        if "models" in file_settings:
            file_settings["kinds"] = tuple(file_settings.pop("models"))
        if "dp_noise" in file_settings:
            noise = file_settings["dp_noise"]
            file_settings["dp_noise"] = tuple(noise) if isinstance(noise, list) else (noise,)
        settings.update(file_settings)
        settings["overrides"] = {**overrides, **settings["overrides"]}
        sites = file_sites + sites
    run_study(out, StudySpec(sites=sites or DEFAULT_SITES, **scaled(settings)), device, engine)


def parse_numbers(text: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r}: numbers separated by commas", param_hint=option
                                 ) from None


@command(panel=STUDY)
def combine(
    studies: Annotated[list[Path], typer.Argument(
        help="Study folders of the same scans, each with its models' own --set seed=N.")],
    out: Annotated[Path, typer.Option(
        help="Folder for summary.csv, wilcoxon.csv, findings.json and report.html.")] = Path(
        "runs/combined"),
) -> None:
    """Repeated studies read together: each model's mean Dice across the seeds, and paired tests."""
    from ichfed.experiment import combine as read_together

    read_together(studies, out)
