"""`ichfed synth`: built-in synthetic hospitals, so everything runs without data of one's own."""

from pathlib import Path
from typing import Annotated

import typer

from ichfed.cli import DATA, command


@command(panel=DATA)
def synth(
    out: Annotated[Path | None, typer.Argument(help="New site folder to write.",
                                               readable=False)] = None,
    site: Annotated[str, typer.Option(help="Built-in profile name or a .toml/.json profile.")
                    ] = "nih",
    cases: Annotated[int, typer.Option(min=1, help="Number of scans.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives identical files.")] = 0,
    size: Annotated[str, typer.Option(help="reduced (256 matrix, ~1 mm, for CPU) or full "
                                           "(512 matrix).")] = "reduced",
    first: Annotated[int, typer.Option(help="Index of the first case (to extend a series).")
                     ] = 0,
    labels: Annotated[str, typer.Option(help="binary (hematoma masks, the default) or types "
                                             "(maps of bleed types: 1 epidural, 2 subdural, "
                                             "3 subarachnoid, 4 intraparenchymal, "
                                             "5 intraventricular).")] = "binary",
    list_sites: Annotated[bool, typer.Option("--list-sites", help="Describe the built-in "
                                             "hospital profiles and exit.")] = False,
) -> None:
    """Write synthetic head CTs with traumatic hematomas for one simulated hospital."""
    from ichfed.phantom.profiles import BUILTIN, load_profile

    if list_sites:
        from ichfed.report.console import print_profiles

        print_profiles(BUILTIN.values())
        return
    if out is None:
        raise typer.BadParameter("give an output folder (or --list-sites)", param_hint="OUT")
    if size not in ("reduced", "full"):
        raise typer.BadParameter("must be 'reduced' or 'full'", param_hint="--size")
    if labels not in ("binary", "types"):
        raise typer.BadParameter("must be 'binary' or 'types'", param_hint="--labels")
    profile = load_profile(site)

    from ichfed.phantom import synth_site
    from ichfed.report.progress import progress_bar

    with progress_bar() as bar:
        task = bar.add_task(f"synth {profile.name}", total=cases, info="")
        synth_site(out, profile, cases, seed=seed, size=size, first=first,
                   progress=lambda _: bar.advance(task), labels=labels)
    typer.echo(f"wrote {cases} {size} scans of site '{profile.name}' to {out}")
