"""Multi-site learning on Flower: the apps, the strategies, the simulation and deployment.

The apps are thin: each round at a site is one epoch of `ichfed.train`'s Trainer.
"""

from collections.abc import Callable
from pathlib import Path

from ichfed.errors import IchfedError
from ichfed.federated.plan import Plan


def run_plan(plan: Plan, coordinator: str | None = None, certs: Path | None = None,
             on_round: Callable[[dict], None] | None = None) -> dict:
    """Simulate the plan over its sites, or submit it to a running coordinator; returns the
    summary saved with the model."""
    if coordinator:
        from ichfed.federated.deploy import submit

        return submit(plan, coordinator, certs)
    if len(plan.sites) < 1:
        raise IchfedError("give the site folders to federate, or --coordinator HOST:PORT")
    from ichfed.federated.simulation import simulate
    from ichfed.report.console import print_round

    return simulate(plan, on_round=on_round or print_round)["summary"]
