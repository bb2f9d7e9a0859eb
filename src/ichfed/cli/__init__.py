"""The `ichfed` command. Each command only parses arguments and calls one function.

Heavy libraries (torch, MONAI, Flower) are imported inside commands so that `--help` is instant.
"""

import functools
import sys
from collections.abc import Callable

import typer

from ichfed.errors import IchfedError

app = typer.Typer(
    help="Multi-site hematoma segmentation on head CT: the model travels, the data stays.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


# Help panels, in the order a user meets them (typer lists the panels as they first appear)
DATA, ONE_SITE, ACROSS_SITES, STUDY = ("Data", "One hospital", "Across hospitals", "The study")


def command(target: Callable | typer.Typer | None = None, *, panel: str | None = None
            ) -> Callable:
    """Register a command (on the app under help `panel`, or on a command group given as
    `@command(group)`) whose user-facing errors print as one line with a non-zero exit."""
    group = target if isinstance(target, typer.Typer) else app

    def register(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except IchfedError as exc:
                print("error: " + " ".join(str(exc).split()), file=sys.stderr)  # one line
                raise typer.Exit(code=1) from None
            except OSError as exc:  # a path the user gave: exists, not a folder, no permission
                if exc.filename is None:
                    raise
                print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
                raise typer.Exit(code=1) from None

        return group.command(rich_help_panel=panel)(wrapper)

    return register if target is None or isinstance(target, typer.Typer) else register(target)


def _version(value: bool) -> None:
    if value:
        from ichfed import __version__

        typer.echo(f"ichfed {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Multi-site hematoma segmentation on head CT: the model travels, the data stays."""


def main() -> None:
    app()


# Registering the commands, in the order of the help's panels; each module is light (its heavy
# imports live inside the command).
# isort: off
from ichfed.cli import synth, check, train, predict, federate, deploy, experiment  # noqa: E402,F401
# isort: on
