"""`ichfed federate` on one machine: Flower's simulation runtime, one simulated node per site."""

import logging
import os
from collections.abc import Callable
from pathlib import Path

from ichfed.errors import IchfedError
from ichfed.federated.plan import Plan
from ichfed.io import open_site
from ichfed.model.bundle import load_model
from ichfed.train.fit import check_out


def simulate(plan: Plan, wrap_grid: Callable | None = None,
             on_round: Callable[[dict], None] | None = None) -> dict:
    """Run the plan over its `sites` in Flower's simulation; returns the model's config."""
    from flwr.simulation import run_simulation

    from ichfed.federated.client_app import make_client_app
    from ichfed.federated.server_app import make_server_app

    out = Path(plan.out)
    check_out(out, plan.resume)
    names = [open_site(root).name for root in plan.sites]
    if len(set(names)) < len(names):
        raise IchfedError(f"two sites share a name: {sorted(names)}")
    config = plan.to_run_config()
    errors: list[BaseException] = []
    gpu = plan.device != "cpu" and _cuda()
    # One simulated site at a time, with every core (or the GPU): sites run in turn on one host.
    resources = {"num_cpus": os.cpu_count() or 1, "num_gpus": 1.0 if gpu else 0.0}
    # Flower logs every step at INFO; ichfed reports rounds itself (on_round), and failed or
    # rejected updates still show as warnings.
    flwr_log = logging.getLogger("flwr")
    level = flwr_log.level
    flwr_log.setLevel(logging.WARNING)
    flwr_log.addFilter(_not_deprecation)
    try:
        run_simulation(make_server_app(config, wrap_grid, on_round, errors),
                       make_client_app(config), num_supernodes=len(plan.sites),
                       backend_config={"client_resources": resources,
                                       "init_args": {"num_cpus": os.cpu_count() or 1,
                                                     "num_gpus": 1 if gpu else 0,
                                                     "log_to_driver": False}})
    except Exception as exc:  # Flower re-raises the ServerApp thread's error
        if not errors:
            errors.append(exc)
    finally:
        flwr_log.setLevel(level)
    if errors:
        error = errors[0]
        raise error if isinstance(error, IchfedError) else IchfedError(
            f"federation failed: {type(error).__name__}: {error}")
    try:
        return load_model(out).config
    except IchfedError as exc:
        raise IchfedError(f"federation ended without a model in {out} ({exc})") from exc


def _not_deprecation(record: logging.LogRecord) -> bool:
    """Flower warns that its in-process simulation is deprecated on every run; the warning
    says nothing a user of `ichfed federate` can act on."""
    return "DEPRECATED FEATURE" not in record.getMessage()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
