"""`ichfed federate`: several sites train one model on Flower (simulation or a coordinator)."""

from pathlib import Path
from typing import Annotated

import typer

from ichfed.cli import ACROSS_SITES, command
from ichfed.cli.train import echo_rule, parse_overrides, which_kept


@command(panel=ACROSS_SITES)
def federate(
    sites: Annotated[list[Path] | None, typer.Argument(
        help="Site folders (simulation). Leave out with --coordinator.", readable=False)] = None,
    out: Annotated[Path, typer.Option(help="Model folder the coordinator writes.")] = Path(
        "federated-model"),
    strategy: Annotated[str, typer.Option(help="cwt (the paper), fedavg or fedprox.")] = "cwt",
    preset: Annotated[str, typer.Option(help="demo (CPU minutes) or paper (GPU).")] = "demo",
    set_: Annotated[list[str], typer.Option("--set", help="Override a preset setting, e.g. "
                                            "--set max_epochs=5.")] = [],  # noqa: B006
    carry_optimizer: Annotated[bool, typer.Option(
        help="cwt: send the Adam state along with the weights.")] = False,
    proximal_mu: Annotated[float, typer.Option(help="fedprox: proximal term weight.")] = 0.01,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N (the sites').")] = "auto",
    resume: Annotated[bool, typer.Option(help="Continue from OUT's last completed round.")] = False,
    coordinator: Annotated[str | None, typer.Option(
        help="HOST:PORT of an `ichfed coordinator`: submit the run there instead of "
             "simulating.")] = None,
    num_sites: Annotated[int, typer.Option(help="With --coordinator: sites to wait for.")] = 2,
    certs: Annotated[Path | None, typer.Option(
        help="With --coordinator: the coordinator's folder (for its CA certificate).")] = None,
    engine: Annotated[str, typer.Option(
        help="Without --coordinator: simulation (Flower's, one process) or deployment (a TLS "
             "coordinator and one process per site on 127.0.0.1, as hospitals run it).")
    ] = "simulation",
    dp_noise: Annotated[float | None, typer.Option(
        help="Differential privacy for each site (site-level): Gaussian noise of this many "
             "clipping norms on each round's update.")] = None,
    dp_epsilon: Annotated[float | None, typer.Option(
        help="Differential privacy: the epsilon to spend in the most rounds; the noise is "
             "derived from it.")] = None,
    dp_clip: Annotated[float | None, typer.Option(
        help="With --dp-noise or --dp-epsilon: the clipping norm of a round's update "
             "[default: 10].")] = None,
    dp_delta: Annotated[float | None, typer.Option(
        help="With --dp-noise or --dp-epsilon: delta [default: 1e-5].")] = None,
    dp_seed: Annotated[int | None, typer.Option(
        help="Seed the privacy noise, only to reproduce a run (whoever knows the seed can "
             "remove the noise).")] = None,
) -> None:
    """Train one model across sites; the folder works with `ichfed predict`."""
    from ichfed.federated import run_plan
    from ichfed.federated.plan import Plan
    from ichfed.federated.privacy import Privacy
    from ichfed.model.config import preset as get_preset
    from ichfed.report.progress import training_progress

    spec, tspec = get_preset(preset, **parse_overrides(set_))
    plan = Plan(strategy=strategy, model=spec, train=tspec, out=str(out.resolve()),
                sites=tuple(str(s.resolve()) for s in sites or ()),
                num_sites=num_sites if coordinator else len(sites or ()),
                carry_optimizer=carry_optimizer, proximal_mu=proximal_mu, device=device,
                resume=resume,
                privacy=Privacy.given(dp_noise, dp_epsilon, dp_clip, dp_delta, dp_seed))
    with training_progress(tspec.max_epochs, tspec.max_minutes, unit="round") as callbacks:
        summary = run_plan(plan, coordinator=coordinator, certs=certs,
                           on_round=callbacks["on_epoch"], engine=engine)
    typer.echo(f"round {summary['best_round']} of {summary['rounds']} kept, {which_kept(tspec)} "
               f"(val loss {summary['best_val_loss']:.4f}, {summary['stopped']}, "
               f"{summary['seconds']:.0f} s); model in {out}")
    if "privacy" in summary:
        spent = summary["privacy"]
        epsilon = spent["spent_epsilon"]
        typer.echo(f"privacy: epsilon {'inf (no noise)' if epsilon is None else f'{epsilon:.4g}'}"
                   f" at delta {spent['delta']:g} per site (noise {spent['noise_multiplier']:.4g},"
                   f" clipping {spent['clipping_norm']:g})")
    echo_rule(summary)
