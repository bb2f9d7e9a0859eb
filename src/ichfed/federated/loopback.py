"""`ichfed federate --engine deployment`: Flower's deployment runtime on this machine.

The path hospitals run (a coordinator with TLS and site authentication, one warm site process
per site, runs submitted with `flwr run`), started for one run on 127.0.0.1 and stopped by PID
afterwards. It needs no Ray, and it tests on one machine what a real federation exercises.
"""

import csv
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ichfed.errors import IchfedError
from ichfed.federated.deploy import (
    coordinator_command,
    flwr_env,
    register_site,
    site_command,
    submit,
    tool_env,
)
from ichfed.federated.keys import CA, make_certificates, make_site_key
from ichfed.federated.plan import Plan
from ichfed.io import open_site

HOST = "127.0.0.1"
START_S = 90.0  # the coordinator's start (imports, TLS) on a slow machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _group_alive(group: int) -> bool:
    """Whether a process of `group` still runs. Zombies do not count: a member whose parent
    died waits for init to reap it, and some container inits never do."""
    proc = Path("/proc")
    if not proc.is_dir():  # no procfs: any member, zombie or not
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:  # it ended while it was read
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if fields and int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


class Processes:
    """Processes started in their own process groups, logging to LOGS/<name>.log; each group is
    stopped by its leader's PID (never by name), also when a run fails."""

    GRACE_S = 20.0  # seconds a stopped group has to end before it is killed

    def __init__(self, logs: Path, cwd: Path | None = None) -> None:
        self.logs, self.cwd, self.running = logs, cwd, {}
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        with open(self.logs / f"{name}.log", "wb") as log:  # the child keeps its own handle
            proc = subprocess.Popen(cmd, env=env, cwd=self.cwd, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.running[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self, name: str) -> None:
        """SIGTERM to the group, then SIGKILL to whatever of it is left after GRACE_S: Flower's
        ServerApp process (in the coordinator's group) can outlive a SIGTERM for good."""
        proc = self.running.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + self.GRACE_S
        while (proc.poll() is None or _group_alive(proc.pid)) and time.time() < deadline:
            time.sleep(0.2)  # poll() reaps the leader, so a finished group reads as gone
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


def _wait_listening(port: int, coordinator: subprocess.Popen, procs: Processes) -> None:
    deadline = time.time() + START_S
    while time.time() < deadline:
        if coordinator.poll() is not None:
            raise IchfedError(f"the coordinator stopped at start: "
                              f"{procs.log('coordinator').strip().splitlines()[-1:]}")
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.5)
    raise IchfedError(f"the coordinator did not listen on {HOST}:{port} in {START_S:.0f} s")


def _follow(out: Path, on_round: Callable[[dict], None]) -> Callable[[], None]:
    """A callback that reports each new row of the run's federation.csv once."""
    seen = {"rows": 0, "elapsed": 0.0}

    def poll() -> None:
        log = out / "federation.csv"
        if not log.exists():
            return
        with open(log, newline="") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows[seen["rows"]:]:
            parsed = {k: (v if k == "sites" else float(v)) for k, v in row.items()}
            parsed["round"] = int(parsed["round"])
            seen["elapsed"] += parsed["seconds"]
            on_round({**parsed, "elapsed": seen["elapsed"]})
        seen["rows"] = len(rows)

    return poll


def run_on_loopback(plan: Plan, on_round: Callable[[dict], None] | None = None,
                    cache: Path | None = None) -> dict:
    """Start a coordinator and one site process per site on 127.0.0.1, run the plan there,
    stop them; returns the summary saved with the model."""
    if not plan.sites:
        raise IchfedError("give the site folders to federate")
    names = [open_site(root).name for root in plan.sites]
    if len(set(names)) < len(names):
        raise IchfedError(f"two sites share a name: {sorted(names)}")
    with tempfile.TemporaryDirectory(prefix="ichfed-loopback-") as tmp:
        root = Path(tmp)
        coord = root / "coordinator"
        make_certificates(coord, [HOST])
        procs = Processes(root / "logs")
        port = free_port()
        address = f"{HOST}:{port}"
        try:
            started = procs.start("coordinator", coordinator_command(coord, HOST, port),
                                  flwr_env(coord))
            _wait_listening(port, started, procs)
            for name, site in zip(names, plan.sites, strict=True):
                key = root / "keys" / name
                _, public = make_site_key(key)
                register_site(coord, address, name, public)
                procs.start(name, site_command(address, Path(site), key, coord / CA,
                                               free_port(), plan.device, cache or root / "cache"),
                            tool_env())
            follow = _follow(Path(plan.out), on_round) if on_round else None
            return submit(plan, address, coord, on_poll=follow)
        finally:
            procs.stop_all()
