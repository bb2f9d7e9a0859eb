"""`ichfed coordinator ...` and `ichfed site`: a real multi-hospital deployment on Flower."""

import os
from pathlib import Path
from typing import Annotated

import typer

from ichfed.cli import ACROSS_SITES, app, command

coordinator = typer.Typer(help="The coordinator: certificates, the Flower SuperLink, and the "
                               "registry of sites.", no_args_is_help=True)
app.add_typer(coordinator, name="coordinator", rich_help_panel=ACROSS_SITES)


def _exec(cmd: list[str], env: dict) -> None:
    """Become Flower's process (same PID), so that stopping ichfed stops it."""
    os.execve(cmd[0], cmd, env)


@command(coordinator)
def init(
    folder: Annotated[Path, typer.Argument(help="New folder for the CA and server certificate.")],
    host: Annotated[list[str], typer.Option(
        help="Address the sites dial (repeat for several); 127.0.0.1 and localhost are "
             "always added for this machine's own tools.")] = ["127.0.0.1"],  # noqa: B006
) -> None:
    """Create the CA and the coordinator's TLS certificate (give ca.crt to every site)."""
    from ichfed.federated.keys import make_certificates

    make_certificates(folder, host)
    typer.echo(f"certificates in {folder}; give {folder / 'ca.crt'} to every site")


@command(coordinator)
def start(
    folder: Annotated[Path, typer.Argument(help="The folder made by 'coordinator init'.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The one HTTPS port sites and `flwr` dial.")] = 9092,
) -> None:
    """Run the Flower SuperLink with TLS and site authentication (in the foreground)."""
    from ichfed.federated.deploy import coordinator_command, flwr_env

    _exec(coordinator_command(folder, host, port), flwr_env(folder))


@command(coordinator)
def register(
    folder: Annotated[Path, typer.Argument(help="The folder made by 'coordinator init'.")],
    public_key: Annotated[Path, typer.Argument(help="The site's .pub file.")],
    name: Annotated[str, typer.Option(help="The site's name.")],
    address: Annotated[str, typer.Option(help="HOST:PORT of the running coordinator.")
                       ] = "127.0.0.1:9092",
) -> None:
    """Register a site's public key under its name; unregistered sites are refused."""
    from ichfed.federated.deploy import register_site

    register_site(folder, address, name, public_key)
    typer.echo(f"site {name} registered")


@command(panel=ACROSS_SITES)
def site(
    key: Annotated[Path, typer.Option(help="This site's private key (its .pub is registered "
                                           "at the coordinator).")],
    new_key: Annotated[bool, typer.Option(help="Create the key pair KEY and KEY.pub, then "
                                               "exit.")] = False,
    coordinator: Annotated[str | None, typer.Option(help="HOST:PORT of the coordinator.")] = None,
    data: Annotated[Path | None, typer.Option(help="This hospital's site folder.")] = None,
    ca: Annotated[Path | None, typer.Option(help="The coordinator's ca.crt.")] = None,
    port: Annotated[int, typer.Option(help="Local port of this site's process.")] = 9094,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    cache: Annotated[Path | None, typer.Option(help="Folder on this machine for prepared "
                                               "scans (default ~/.cache/ichfed).")] = None,
) -> None:
    """Join a federation as one hospital: the data stays here, only weights travel."""
    from ichfed.errors import IchfedError

    if new_key:
        from ichfed.federated.keys import make_site_key

        _, public = make_site_key(key)
        typer.echo(f"key pair created; give {public} to the coordinator")
        return
    if coordinator is None or data is None or ca is None:
        raise IchfedError("--coordinator, --data and --ca are needed to join a federation")
    from ichfed.check import check_site
    from ichfed.federated.deploy import site_command, tool_env

    findings = check_site(data)
    if not findings.usable:
        raise IchfedError(f"{data}: not usable ({findings.problems[0]}); run 'ichfed check'")
    _exec(site_command(coordinator, data, key, ca, port, device, cache), tool_env())
