"""Federation overhead per round: time outside local training and bytes per round, for the
one-machine simulation and for a real loopback deployment (TLS coordinator, two site
processes, `flwr run`: `ichfed federate --engine deployment`). Two built-in sites of a few
reduced scans, the demo preset; the numbers that matter (seconds outside training, bytes)
barely depend on the data size.
Prints one JSON line. Usage: python benchmarks/federation_overhead.py [--rounds 4] [--cases 4]
"""

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

from ichfed.federated import run_plan
from ichfed.federated.plan import Plan
from ichfed.model.config import preset
from ichfed.phantom import BUILTIN, synth_site


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


def run(engine: str, root: Path, sites: list[Path], rounds: int) -> dict:
    """One cwt run on `engine` (the deployment: a TLS coordinator and two site processes on
    127.0.0.1, started and stopped by `ichfed federate --engine deployment`'s code)."""
    # rounds only: the lesion rule's final exchange is not a round
    spec, tspec = preset("demo", max_epochs=rounds, max_minutes=0, calibrate=False)
    out = root / engine
    t0 = time.time()
    run_plan(Plan(strategy="cwt", model=spec, train=tspec, out=str(out),
                  sites=tuple(map(str, sites)), num_sites=len(sites), device="cpu"),
             engine=engine)
    total = time.time() - t0
    with open(out / "federation.csv") as fh:
        return {**_per_round(list(csv.DictReader(fh))), "start_to_end_s": round(total, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--cases", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sites = [synth_site(root / name, BUILTIN[name], args.cases, seed=0)
                 for name in ("nih", "vumc")]
        result = {"benchmark": "federation_overhead", "strategy": "cwt", "preset": "demo",
                  "scans_per_site": args.cases,
                  "simulation": run("simulation", root, sites, args.rounds),
                  "deployment_tls_loopback": run("deployment", root, sites, args.rounds)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
