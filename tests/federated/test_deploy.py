"""A real deployment on 127.0.0.1: a TLS coordinator with site authentication and two site
processes. Every process started here is stopped by its PID (process group), also on failure."""

import json
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ichfed.federated.loopback import Processes, free_port
from tests.helpers import make_site

pytestmark = pytest.mark.xdist_group("deploy")  # mostly waiting: runs beside others
ICHFED = [sys.executable, "-m", "ichfed"]
TINY = ["--set", "features=[4,4,8,8,16,4]", "--set", "patch=32", "--set", "lesion_patches=8",
        "--set", "batch_size=8", "--set", "max_minutes=0", "--device", "cpu"]


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def federation(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    procs = Processes(root, cwd=root)
    port = free_port()
    try:
        run = lambda *a: subprocess.run([*ICHFED, *a], cwd=root, capture_output=True,  # noqa: E731
                                        text=True, timeout=120)
        assert run("coordinator", "init", "coord").returncode == 0
        for name in ("alpha", "beta", "intruder"):
            assert run("site", "--key", f"keys/{name}", "--new-key").returncode == 0
        for name in ("alpha", "beta", "intruder"):
            make_site(root / name, n=3)
        procs.start("coordinator", [*ICHFED, "coordinator", "start", "coord", "--port",
                                    str(port)])
        _wait_for(lambda: "Uvicorn running" in procs.log("coordinator"), 60, "the coordinator")
        for name in ("alpha", "beta"):
            done = run("coordinator", "register", "coord", f"keys/{name}.pub", "--name", name,
                       "--address", f"127.0.0.1:{port}")
            assert done.returncode == 0, done.stderr
        yield root, procs, port
    finally:
        procs.stop_all()


def _site(procs: Processes, port: int, name: str) -> subprocess.Popen:
    return procs.start(name, [*ICHFED, "site", "--key", f"keys/{name}", "--coordinator",
                              f"127.0.0.1:{port}", "--data", name, "--ca", "coord/ca.crt",
                              "--port", str(free_port()), "--cache", "cache", "--device", "cpu"])


def test_unregistered_site_is_refused(federation):
    root, procs, port = federation
    proc = _site(procs, port, "intruder")
    proc.wait(120)
    assert proc.returncode != 0
    procs.stop("intruder")
    assert "Failed to activate SuperNode" in procs.log("intruder")  # Flower's exit code 305


def _rss(pid: int) -> int:
    """Resident memory of a process, in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("VmRSS:"))) * 1024


def _tls(root: Path, port: int) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(root / "coord" / "ca.crt"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def _answer(conn: ssl.SSLSocket, wait: float) -> bytes | None:
    """What the server sent within `wait` seconds: None for nothing yet, b"" for a closed
    connection."""
    conn.settimeout(wait)
    try:
        return conn.recv(4096)
    except (TimeoutError, ssl.SSLWantReadError):
        return None
    except OSError:
        return b""


def test_an_oversized_unauthenticated_request_costs_the_coordinator_no_memory(federation):
    """Flower reads a whole body before it checks a key; the coordinator refuses one over its
    limit by its declared length, or once it streams past the limit."""
    root, procs, port = federation
    pid = procs.running["coordinator"].pid
    head = (f"POST /v1/fleet/push-object HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/protobuf\r\n")
    before = _rss(pid)
    with _tls(root, port) as conn:  # a declared 1 GiB: refused before a byte is read
        conn.sendall(f"{head}Content-Length: {2**30}\r\n\r\n".encode())
        assert (_answer(conn, 30) or b"").startswith(b"HTTP/1.1 413")
    chunk, sent, reply = 2**20, 0, None
    with _tls(root, port) as conn:  # no length: up to 256 MiB in 1 MiB chunks, until answered
        conn.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode())
        while sent < 256 * chunk and reply is None:
            try:
                conn.sendall(f"{chunk:x}\r\n".encode() + b"\x00" * chunk + b"\r\n")
            except OSError:  # closed by the coordinator
                reply = _answer(conn, 5) or b""
                break
            sent += chunk
            reply = _answer(conn, 0.01)
    # refused (or cut off, its answer lost with the connection) soon after the 16 MiB limit
    assert reply is not None and (reply == b"" or reply.startswith(b"HTTP/1.1 413"))
    assert sent < 64 * chunk, sent
    grown = _rss(pid) - before
    print(f"coordinator memory {before / 2**20:.0f} -> +{grown / 2**20:.1f} MiB; streamed "
          f"{sent / 2**20:.0f} MiB before the answer")
    assert grown < 64 * 2**20  # the 16 MiB limit, read and parsed once
    assert "Uvicorn running" in procs.log("coordinator") and procs.running["coordinator"].poll(
        ) is None


def test_tls_cwt_run_waits_for_a_restarted_site(federation):
    root, procs, port = federation
    _site(procs, port, "alpha")
    _site(procs, port, "beta")
    submit = procs.start("submit", [*ICHFED, "federate", "--coordinator", f"127.0.0.1:{port}",
                                    "--certs", "coord", "--num-sites", "2", "--strategy", "cwt",
                                    "--out", str(root / "model"), "--set", "max_epochs=2",
                                    *TINY])
    checkpoint = root / "model" / "checkpoint.safetensors"
    _wait_for(checkpoint.exists, 300, "the first round")
    procs.stop("beta")  # beta trains round 2: kill it mid-run
    assert checkpoint.exists()  # the last completed round stays on the coordinator's disk
    time.sleep(3)
    _site(procs, port, "beta")
    assert submit.wait(600) == 0, procs.log("submit")
    assert "kept, the" in procs.log("submit")
    summary = json.loads((root / "model" / "config.json").read_text())["summary"]
    assert [row["sites"] for row in summary["history"]] == ["alpha", "beta"]
    assert (root / "model" / "model.safetensors").exists() and not checkpoint.exists()
    assert all(row["bytes_sent"] > 0 for row in summary["history"])


def test_following_a_run_ends_with_how_to_resume_once_the_coordinator_is_gone(monkeypatch):
    """`flwr ls` exits 0 when it cannot connect: the follower used to wait for the run's
    end forever. A silent spell shorter than LOST_S is waited out."""
    from ichfed.federated import deploy
    from ichfed.federated.plan import Plan

    answers = iter(["running", "gone", "gone", "running", "gone", "gone"])

    def status(env, run_id):
        answer = next(answers)
        if answer == "gone":
            raise deploy.IchfedError("reading the run's status failed: Connection to the "
                                     "SuperLink is unavailable.")
        return answer

    now = [0.0]
    monkeypatch.setattr(deploy, "run_status", status)
    monkeypatch.setattr(deploy.time, "time", lambda: now[0])
    silent: list[float] = []

    def look(at: float) -> str:
        now[0] = at
        return deploy._status_or_lost({}, 7, "host:1", Plan(out="/srv/model"), silent)

    # silent from 10 s to 40 s: waited out
    assert [look(t) for t in (0, 10, 40, 50)] == ["running", "unknown", "unknown", "running"]
    assert look(100) == "unknown"
    with pytest.raises(deploy.IchfedError) as lost:
        look(100 + deploy.LOST_S)  # silent for LOST_S
    assert "lost the coordinator at host:1 while following run 7" in str(lost.value)
    assert "--resume" in str(lost.value) and "/srv/model/checkpoint" in str(lost.value)


def test_a_refused_submission_says_why_without_flowers_preamble():
    from ichfed.federated.deploy import _message

    text = ("Flower App configuration warnings in '/tmp/app/pyproject.toml':\n"
            "- Recommended property \"license\" missing in [project]\n"
            "Using SuperLink: coordinator (127.0.0.1:9)\n\n"
            "Connection to the SuperLink is unavailable. Please check your network connection.")
    assert _message(text) == ("Connection to the SuperLink is unavailable. Please check your "
                             "network connection.")
