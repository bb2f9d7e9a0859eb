"""Many sites: a FedAvg run over 16 small built-in sites in the simulation, and one over 8
site processes on loopback through the deployment runtime (a TLS coordinator, one warm
SuperNode and SuperExec per site: `ichfed federate --engine deployment`); the memory of one
warm site and of the coordinator, sampled every second while the deployment runs.

Memory is PSS (proportional set size, /proc/PID/smaps_rollup): pages that the site processes
share (torch's and MONAI's libraries) count once among them, so the sum over sites is what the
machine holds. RSS (which counts them in every process) is reported beside it.
Prints one JSON line. Usage: python benchmarks/many_sites.py [--simulated 16] [--deployed 8]
[--cases 2] [--rounds 2]
"""

import argparse
import dataclasses
import json
import tempfile
import threading
import time
from pathlib import Path

from ichfed.federated import run_plan
from ichfed.federated.plan import Plan
from ichfed.model.config import preset
from ichfed.phantom import BUILTIN, synth_site

PROFILES = ("nih", "vumc", "thin", "lowdose")
ROLES = {"site": ("ichfed.federated.supernode", "ichfed.federated.warm"),
         "coordinator": ("ichfed.federated.superlink", "flower-superexec", "flwr-serverapp")}


def _memory_by_group() -> dict[tuple[str, int], dict[str, int]]:
    """PSS and RSS in bytes, summed over each process group of ichfed's deployment processes,
    keyed by role and group id."""
    groups: dict[tuple[str, int], dict[str, int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            role = next((r for r, marks in ROLES.items() if any(m in command for m in marks)),
                        None)
            if role is None:
                continue
            stat = (proc / "stat").read_text()
            group = int(stat[stat.rfind(")") + 2:].split()[2])
            fields = dict(line.split(":", 1) for line in
                          (proc / "smaps_rollup").read_text().splitlines()[1:])
        except (OSError, ValueError):  # the process ended while it was read
            continue
        total = groups.setdefault((role, group), {"pss": 0, "rss": 0})
        for key in ("pss", "rss"):
            total[key] += int(fields[key.capitalize()].split()[0]) * 1024
    return groups


class PeakMemory:
    """The largest memory of any one site and of the coordinator, and of all sites together,
    sampled every `every` seconds in a thread."""

    def __init__(self, every: float = 1.0) -> None:
        self.every, self.peak, self.done = every, {}, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.done.wait(self.every):
            groups = _memory_by_group()
            sites = [m for (role, _), m in groups.items() if role == "site"]
            now = {"site_pss": max((m["pss"] for m in sites), default=0),
                   "site_rss": max((m["rss"] for m in sites), default=0),
                   "all_sites_pss": sum(m["pss"] for m in sites),
                   "coordinator_pss": sum(m["pss"] for (role, _), m in groups.items()
                                          if role == "coordinator"),
                   "site_processes": len(sites)}
            self.peak = {k: max(v, self.peak.get(k, 0)) for k, v in now.items()}

    def __enter__(self) -> "PeakMemory":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()


def make_sites(root: Path, count: int, cases: int) -> list[Path]:
    """`count` built-in sites of `cases` reduced scans each, the four profiles in turn, each
    under a name of its own."""
    sites = []
    for index in range(count):
        profile = BUILTIN[PROFILES[index % len(PROFILES)]]
        name = f"{profile.name}{index:02d}"
        sites.append(synth_site(root / name, dataclasses.replace(profile, name=name), cases,
                                seed=index))
    return sites


def run(engine: str, root: Path, sites: list[Path], rounds: int) -> dict:
    spec, tspec = preset("demo", max_epochs=rounds, max_minutes=0, calibrate=False)
    out = root / engine
    t0 = time.time()
    summary = run_plan(Plan(strategy="fedavg", model=spec, train=tspec, out=str(out),
                            sites=tuple(map(str, sites)), num_sites=len(sites), device="cpu"),
                       engine=engine)
    return {"sites": len(summary["sites"]), "rounds": summary["rounds"],
            "sites_merged_per_round": [len(r["sites"].split()) for r in summary["history"]],
            "round_s": [r["seconds"] for r in summary["history"]],
            "start_to_end_s": round(time.time() - t0, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--simulated", type=int, default=16)
    parser.add_argument("--deployed", type=int, default=8)
    parser.add_argument("--cases", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    mib = 2**20
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sites = make_sites(root / "sites", max(args.simulated, args.deployed), args.cases)
        result = {"benchmark": "many_sites", "strategy": "fedavg", "preset": "demo",
                  "scans_per_site": args.cases}
        if args.simulated:
            result["simulation"] = run("simulation", root, sites[:args.simulated], args.rounds)
        if args.deployed:
            with PeakMemory() as memory:
                result["deployment_tls_loopback"] = run("deployment", root,
                                                        sites[:args.deployed], args.rounds)
            result["memory_mib"] = {k: (round(v / mib) if k != "site_processes" else v)
                                    for k, v in memory.peak.items()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
