"""Federation overhead per round: time outside local training and bytes per round, for the
one-machine simulation and for a real loopback deployment (TLS coordinator, two site
processes, `flwr run`). Two built-in sites of a few reduced scans, the demo preset; the
numbers that matter (seconds outside training, bytes) barely depend on the data size.
Prints one JSON line. Usage: python benchmarks/federation_overhead.py [--rounds 4] [--cases 4]
"""

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ichfed.federated.plan import Plan
from ichfed.federated.simulation import simulate
from ichfed.model.config import preset
from ichfed.phantom import BUILTIN, synth_site

ICHFED = [sys.executable, "-m", "ichfed"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _per_round(rows: list[dict]) -> dict:
    later = rows[1:] or rows  # round 1 pays start-up (data preparation, imports)
    mean = lambda key: sum(float(r[key]) for r in later) / len(later)  # noqa: E731
    return {"rounds": len(rows), "round_s": round(mean("seconds"), 2),
            "train_s": round(mean("train_seconds"), 2), "val_s": round(mean("val_seconds"), 2),
            "outside_training_s": round(mean("seconds") - mean("train_seconds"), 2),
            # the round less the sites' own training and validation: what the engine costs
            "other_s": round(mean("other_seconds"), 2),
            "bytes_sent": int(mean("bytes_sent")), "bytes_received": int(mean("bytes_received")),
            "first_round_s": float(rows[0]["seconds"])}


def deployment(root: Path, sites: list[Path], rounds: int) -> dict:
    """Coordinator and two sites as separate processes on 127.0.0.1; stopped by PID."""
    port, procs = _port(), []
    run = lambda *a: subprocess.run([*ICHFED, *a], cwd=root, check=True,  # noqa: E731
                                    capture_output=True)
    run("coordinator", "init", "coord")

    def start(args: list[str]) -> subprocess.Popen:
        procs.append(subprocess.Popen([*ICHFED, *args], cwd=root, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return procs[-1]

    try:
        start(["coordinator", "start", "coord", "--port", str(port)])
        time.sleep(8)
        for site in sites:
            run("site", "--key", f"keys/{site.name}", "--new-key")
            run("coordinator", "register", "coord", f"keys/{site.name}.pub", "--name",
                site.name, "--address", f"127.0.0.1:{port}")
            start(["site", "--key", f"keys/{site.name}", "--coordinator", f"127.0.0.1:{port}",
                   "--data", str(site), "--ca", "coord/ca.crt", "--port", str(_port()),
                   "--cache", "cache", "--device", "cpu"])
        t0 = time.time()
        run("federate", "--coordinator", f"127.0.0.1:{port}", "--certs", "coord", "--out",
            str(root / "deployed"), "--set", f"max_epochs={rounds}", "--set",
            "calibrate=false", "--device", "cpu")
        total = time.time() - t0
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(20)
    with open(root / "deployed" / "federation.csv") as fh:
        return {**_per_round(list(csv.DictReader(fh))), "submit_to_end_s": round(total, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--cases", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sites = [synth_site(root / name, BUILTIN[name], args.cases, seed=0)
                 for name in ("nih", "vumc")]
        # rounds only: the lesion rule's final exchange is not a round
        spec, tspec = preset("demo", max_epochs=args.rounds, max_minutes=0, calibrate=False)
        rows = simulate(Plan(strategy="cwt", model=spec, train=tspec, out=str(root / "sim"),
                             sites=tuple(map(str, sites)), num_sites=2,
                             device="cpu"))["summary"]["history"]
        result = {"benchmark": "federation_overhead", "strategy": "cwt", "preset": "demo",
                  "scans_per_site": args.cases, "simulation": _per_round(rows),
                  "deployment_tls_loopback": deployment(root, sites, args.rounds)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
