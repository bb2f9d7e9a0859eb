"""Multi-site learning on Flower: the apps, the strategies, the simulation and deployment.

The apps are thin: each round at a site is one epoch of `ichfed.train`'s Trainer.
"""

import os
from collections.abc import Callable
from pathlib import Path

# Flower in this process (the simulation, the apps) and in the tools it starts: no telemetry,
# no update check, no runtime installation of an app's dependencies (it would pull its own
# torch), and Ray leaves the visible GPUs alone. Set before any flwr import: Flower reads its
# telemetry switch when the module loads. A value the user set is kept.
QUIET = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1",
         "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
         "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}
for _key, _value in QUIET.items():
    os.environ.setdefault(_key, _value)

from ichfed.errors import IchfedError  # noqa: E402
from ichfed.federated.plan import Plan  # noqa: E402

ENGINES = ("simulation", "deployment")


def run_plan(plan: Plan, coordinator: str | None = None, certs: Path | None = None,
             on_round: Callable[[dict], None] | None = None, engine: str = "simulation") -> dict:
    """Run the plan over its sites on this machine (Flower's simulation, or its deployment
    runtime on 127.0.0.1), or submit it to a running coordinator; returns the summary saved
    with the model."""
    if coordinator:
        from ichfed.federated.deploy import submit

        return submit(plan, coordinator, certs)
    if len(plan.sites) < 1:
        raise IchfedError("give the site folders to federate, or --coordinator HOST:PORT")
    if engine == "deployment":
        from ichfed.federated.loopback import run_on_loopback

        return run_on_loopback(plan, on_round)
    if engine != "simulation":
        raise IchfedError(f"unknown engine {engine!r}; choose {' or '.join(ENGINES)}")
    from ichfed.federated.simulation import simulate

    return simulate(plan, on_round=on_round)["summary"]
