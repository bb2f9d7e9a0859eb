"""`ichfed check SITE`: validate a site's dataset before training."""

import json
from pathlib import Path
from typing import Annotated

import typer

from ichfed.cli import DATA, command


@command(panel=DATA)
def check(
    site: Annotated[Path, typer.Argument(help="Site folder with images/ and masks/.",
                                         readable=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Validate a site: readable 3D CT in HU, masks aligned and binary. Changes nothing."""
    from ichfed.check import check_site
    from ichfed.report.console import print_site_findings

    findings = check_site(site)
    if as_json:
        typer.echo(json.dumps(findings.to_dict(), indent=2))
    else:
        print_site_findings(findings)
    if not findings.usable:
        raise typer.Exit(code=1)
