"""A real deployment on Flower: one coordinator (SuperLink, TLS, site authentication), one
SuperNode per hospital, and runs submitted with `flwr run` whose real outcome is read back.

Flower's own command-line tools do the work; this module builds their command lines, keeps
their state in the coordinator's folder (FLWR_HOME there, never ~/.flwr), and turns their
outcomes into clear messages. `flwr run` exits 0 even when the run failed, so the status is
read with `flwr ls --format json`.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ichfed import __version__
from ichfed.errors import IchfedError
from ichfed.federated import QUIET
from ichfed.federated.keys import CA, SERVER_CERT, SERVER_KEY
from ichfed.federated.plan import Plan
from ichfed.model.checkpoint import CHECKPOINT

CONNECTION = "coordinator"  # the name of the connection in FLWR_HOME/config.toml


def _tool(name: str) -> str:
    """Flower's executables from this environment (next to this Python), else from PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise IchfedError(f"Flower's '{name}' is not installed (pip install 'flwr==1.42.0')")
    return found


def flwr_env(folder: Path) -> dict[str, str]:
    """The environment for Flower's tools: state under FOLDER/flwr-home, no telemetry, no
    runtime dependency installation (it would pull its own torch)."""
    return {**tool_env(), "FLWR_HOME": str((folder / "flwr-home").resolve())}


def tool_env() -> dict[str, str]:
    """Flower's tools start each other by name (flower-superexec, flwr-serverapp): this
    environment's bin folder goes first on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, **QUIET, "PATH": path}


def coordinator_command(folder: Path, host: str, port: int) -> list[str]:
    for name in (CA, SERVER_CERT, SERVER_KEY):
        if not (folder / name).is_file():
            raise IchfedError(f"{folder / name}: missing; run 'ichfed coordinator init' first")
    # Flower's SuperLink with its Control and Runtime APIs closed to other machines
    return [sys.executable, "-m", "ichfed.federated.superlink",
            "--ssl-ca-certfile", str(folder / CA), "--ssl-certfile", str(folder / SERVER_CERT),
            "--ssl-keyfile", str(folder / SERVER_KEY), "--enable-supernode-auth",
            "--host", host, "--port", str(port), "--database", str(folder / "state.db"),
            "--disable-runtime-dependency-installation"]


def site_command(coordinator: str, data: Path, key: Path, ca: Path, port: int,
                 device: str = "auto", cache: Path | None = None) -> list[str]:
    for path, what in ((key, "site private key"), (ca, "coordinator CA certificate")):
        if not path.is_file():
            raise IchfedError(f"{path}: {what} not found")
    cache = cache or Path.home() / ".cache" / "ichfed"
    node_config = f"data-dir='{data.resolve()}' device='{device}' cache-dir='{cache.resolve()}'"
    # Flower's flower-supernode with its fixed waits shortened (federated/supernode.py)
    return [sys.executable, "-m", "ichfed.federated.supernode", "--superlink", coordinator,
            "--root-certificates",
            str(ca), "--auth-supernode-private-key", str(key), "--port", str(port),
            "--node-config", node_config]


def _connect(folder: Path, address: str) -> dict[str, str]:
    """Write FLWR_HOME/config.toml naming the coordinator (TLS with this folder's CA)."""
    env = flwr_env(folder)
    home = Path(env["FLWR_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
        f'address = "{address}"\nroot-certificates = "{(folder / CA).resolve()}"\n')
    return env


def _flwr(args: list[str], env: dict, what: str, timeout: float = 120) -> str:
    try:  # Flower's CLI retries an unreachable coordinator for minutes
        proc = subprocess.run([_tool("flwr"), *args], env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise IchfedError(f"{what} failed: the coordinator did not answer in {timeout:.0f} s"
                          ) from None
    if proc.returncode:
        raise IchfedError(f"{what} failed: {_message(proc.stdout + proc.stderr)}")
    return proc.stdout


def _message(output: str) -> str:
    """The text inside Flower's rich error box (or the last line) as one line."""
    boxed = [line.strip("│ ") for line in output.splitlines() if line.startswith("│")]
    lines = boxed or [line for line in output.splitlines() if line.strip()][-1:]
    return " ".join(" ".join(lines).split()) or "no output"


def register_site(folder: Path, address: str, name: str, public_key: Path) -> None:
    """Register a hospital's public key under its name; only registered sites may connect."""
    if not public_key.is_file():
        raise IchfedError(f"{public_key}: public key not found")
    env = _connect(folder, address)
    _flwr(["supernode", "register", str(public_key), CONNECTION, "--name", name], env,
          f"registering {name}")


def _app_folder(root: Path) -> Path:
    """The Flower app that `flwr run` packs: only its pyproject, pointing at the installed
    ichfed's apps, with every run-config key declared (Flower drops undeclared keys)."""
    defaults = Plan().to_run_config()
    lines = ["[build-system]", 'requires = ["hatchling"]', 'build-backend = "hatchling.build"',
             "", "[project]", 'name = "ichfed-app"', f'version = "{__version__}"',
             'description = "ichfed\'s Flower apps: one hematoma segmentation model across sites"',
             'license = "MIT"',
             f'dependencies = ["ichfed=={__version__}"]', "", "[tool.flwr.app]",
             'publisher = "ichfed"', "", "[tool.flwr.app.components]",
             'serverapp = "ichfed.federated.server_app:app"',
             'clientapp = "ichfed.federated.client_app:app"', "", "[tool.flwr.app.config]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in defaults.items()]
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return root


def _run_config(plan: Plan, path: Path) -> Path:
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in plan.to_run_config().items()))
    return path


def run_status(env: dict, run_id: int, timeout: float = 30) -> str:
    listing = json.loads(_flwr(["ls", CONNECTION, "--run-id", str(run_id), "--format", "json"],
                               env, "reading the run's status", timeout))
    if not listing.get("success", True):  # `flwr ls` exits 0 when it could not connect
        raise IchfedError(f"reading the run's status failed: "
                          f"{_message(str(listing.get('error-message', listing)))}")
    runs = listing.get("runs", [])
    return str(runs[0].get("status", "unknown")) if runs else "unknown"


LOST_S = 60.0  # a coordinator silent this long while a run is followed counts as gone


def _status_or_lost(env: dict, run_id: int, coordinator: str, plan: Plan,
                    unanswered_since: list[float]) -> str:
    """The run's status; "unknown" while the coordinator has not answered for less than
    LOST_S, then a one-line error that says how to go on (its machine restarted, the network
    went down)."""
    try:
        status = run_status(env, run_id)
    except IchfedError as exc:
        unanswered_since[:] = unanswered_since or [time.time()]
        if time.time() - unanswered_since[0] < LOST_S:
            return "unknown"
        raise IchfedError(f"lost the coordinator at {coordinator} while following run {run_id} "
                          f"({exc}); if it stopped, start it again and submit the same command "
                          f"with --resume: it goes on from the last completed round saved in "
                          f"{Path(plan.out) / CHECKPOINT} on the coordinator's machine"
                          ) from None
    unanswered_since.clear()
    return status


def submit(plan: Plan, coordinator: str, certs: Path | None, poll_s: float = 2.0,
           on_poll: Callable[[], None] | None = None) -> dict:
    """Submit the plan to a running coordinator, follow it (calling `on_poll` at each look),
    and return the saved summary (when the model folder is on this machine) or raise with the
    run's real failure."""
    if certs is None or not (certs / CA).is_file():
        raise IchfedError("--certs: the coordinator's folder (with ca.crt) is needed for TLS")
    env = _connect(certs, coordinator)
    with tempfile.TemporaryDirectory() as tmp:
        app = _app_folder(Path(tmp) / "app")
        config = _run_config(plan, Path(tmp) / "run-config.toml")
        reply = json.loads(_flwr(["run", str(app), CONNECTION, "--run-config", str(config),
                                  "--format", "json"], env, "submitting the run"))
    if not reply.get("success", True) or "run-id" not in reply:
        raise IchfedError(f"submitting the run to {coordinator} failed: "
                          f"{_message(str(reply.get('error-message', reply)))}")
    run_id = int(reply["run-id"])
    print(f"run {run_id} submitted to {coordinator}; following it", file=sys.stderr)
    deadline = time.time() + plan.round_timeout * max(1, plan.train.max_epochs)
    unanswered_since: list[float] = []
    while not (status := _status_or_lost(env, run_id, coordinator, plan,
                                         unanswered_since)).startswith("finished"):
        if on_poll:
            on_poll()
        if time.time() > deadline:
            raise IchfedError(f"run {run_id} did not finish in time (status {status})")
        time.sleep(poll_s)
    if on_poll:
        on_poll()
    if status != "finished:completed":
        log = subprocess.run([_tool("flwr"), "log", str(run_id), CONNECTION, "--show"], env=env,
                             capture_output=True, text=True, timeout=60).stdout
        reason = next((line for line in reversed(log.splitlines()) if "Error" in line
                       or "error" in line), status)
        raise IchfedError(f"run {run_id} ended {status}: {reason.strip()}")
    config = Path(plan.out) / "config.json"
    if config.exists():
        return json.loads(config.read_text())["summary"]
    return {"run_id": run_id, "status": status, "note": f"model written on the coordinator "
            f"host in {plan.out}", "best_round": 0, "rounds": 0, "best_val_loss": float("nan"),
            "stopped": status, "seconds": 0.0}
