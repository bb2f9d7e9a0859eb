"""`ichfed train`: one model from one site, or several sites pooled."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ichfed.cli import ONE_SITE, command

if TYPE_CHECKING:
    from ichfed.model.config import TrainSpec


def parse_overrides(items: list[str]) -> dict:
    """--set key=value pairs; values are read as JSON when they parse (numbers, lists)."""
    import json

    from ichfed.errors import IchfedError

    out = {}
    for item in items:
        if "=" not in item:
            raise IchfedError(f"--set {item}: expected key=value")
        key, value = item.split("=", 1)
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        out[key.strip().replace("-", "_")] = tuple(parsed) if isinstance(parsed, list) else parsed
    return out


@command(panel=ONE_SITE)
def train(
    sites: Annotated[list[Path], typer.Argument(help="One or more site folders (pooled).",
                                                readable=False)],
    out: Annotated[Path, typer.Option(help="Model folder to create.")],
    preset: Annotated[str, typer.Option(help="demo (CPU minutes) or paper (GPU).")] = "demo",
    set_: Annotated[list[str], typer.Option("--set", help="Override a preset setting, e.g. "
                                            "--set max_epochs=5 --set lr=3e-4.")] = [],  # noqa: B006
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in OUT.")] = False,
) -> None:
    """Train a hematoma segmentation model; the folder works with `ichfed predict`."""
    from ichfed.device import resolve_device
    from ichfed.model.config import preset as get_preset
    from ichfed.report.progress import training_progress
    from ichfed.train import train_sites

    spec, tspec = get_preset(preset, **parse_overrides(set_))
    dev = resolve_device(device)
    with training_progress(tspec.max_epochs, tspec.max_minutes) as callbacks:
        summary = train_sites(sites, out, spec, tspec, dev, resume=resume, **callbacks)
    typer.echo(f"epoch {summary['best_epoch']} of {summary['epochs']} kept, {which_kept(tspec)} "
               f"(val loss {summary['best_val_loss']:.4f}, {summary['stopped']}, "
               f"{summary['seconds']:.0f} s); model in {out}")
    if summary["kept_epoch"] != summary["best_epoch"]:
        typer.echo(f"kept epoch {summary['kept_epoch']} instead: it scores higher on all the "
                   "labelled scans")
    echo_rule(summary)


def which_kept(tspec: "TrainSpec") -> str:
    """How the kept epoch or round was chosen, in words."""
    return "the last" if tspec.select_by == "last" else f"the best by {tspec.select_by}"


def echo_rule(summary: dict) -> None:
    """The lesion rule a training chose, when it chose one."""
    if rule := summary.get("lesion_rule"):
        typer.echo(f"lesion rule chosen on {rule['scans']} labelled scans: threshold "
                   f"{rule['threshold']}, at least {rule['min_lesion_ml']} mL, core "
                   f"{rule['min_core_mm']} mm "
                   f"(mean Dice {rule['dice']:.3f})")
