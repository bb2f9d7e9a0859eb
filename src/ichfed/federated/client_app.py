"""The hospital's side: a Flower ClientApp that trains and validates on its own site only.

Replies carry weights, their moving average where the preset keeps one (see
`Trainer.travelling_state`), Adam state for `cwt --carry-optimizer`, and aggregate numbers:
the site's name, a loss, a patch count, seconds. Never case ids, file names or images. With
cwt and differential privacy the weights are clipped and noised here (privacy.py).

Where Adam's state does not travel, each site keeps its own between rounds in Flower's
`Context.state` (kept by the SuperNode for the run, in the simulation and in a deployment), as
a site's own training keeps it between epochs (a fresh Adam takes its largest steps again every
round: in the study FedAvg's sixth round validated at 0.839 with a fresh Adam, 0.816 with the
site's own, and cwt's tenth at 0.797 and 0.616). The state is lost when a site restarts.
"""

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from ichfed.data.prepare import site_labels, site_spacings
from ichfed.device import resolve_device
from ichfed.federated.local import (
    LocalSite,
    local_calibration,
    local_update,
    local_validation,
    open_local_site,
    template_optimizer,
)
from ichfed.federated.payload import optimizer_record, optimizer_state, pack, unpack
from ichfed.federated.plan import Plan, plan_from
from ichfed.federated.privacy import SITE_WEIGHT, local_release
from ichfed.io import open_site
from ichfed.model.config import ModelSpec
from ichfed.train.trainer import kept_weights

OWN_OPTIMIZER = "own-optimizer"  # this site's Adam state, in Context.state between rounds


def _root(context: Context, plan: Plan) -> str:
    """This node's data: `data-dir` from a deployed SuperNode's node config, or in the
    simulation the site whose position in the plan's list is this node's partition id."""
    node = context.node_config
    return str(node["data-dir"] if "data-dir" in node else plan.sites[int(node["partition-id"])])


def _site(context: Context, plan: Plan, config: ConfigRecord) -> tuple[LocalSite, object]:
    """The site's patches for the model as the coordinator resolved it (pixel size)."""
    node = context.node_config
    device = resolve_device(str(node.get("device", plan.device)))
    cache = Path(str(node["cache-dir"])) if "cache-dir" in node else None
    return open_local_site(_root(context, plan), _spec(plan, config), plan.train, device,
                           cache), device


def _spec(plan: Plan, config: ConfigRecord) -> ModelSpec:
    return replace(plan.model, inplane_mm=float(config["inplane-mm"]) or None,
                   slice_mm=float(config["slice-mm"]) or None)


def make_client_app(fallback: dict | None = None) -> ClientApp:
    """The ClientApp; `fallback` is the run config the simulation bakes in."""
    app = ClientApp()

    @app.query()
    def name(msg: Message, context: Context) -> Message:
        plan = plan_from(context.run_config, fallback or {})
        root = _root(context, plan)
        pixel, thickness = (float(v) for v in np.median(site_spacings(root), axis=0))
        # a typed model needs one site whose masks give types; only asked for then (it may
        # read every mask)
        labels = site_labels(root) if plan.model.typed else ""
        return Message(RecordDict({"site": ConfigRecord({
            "name": open_site(root).name, "inplane-mm": pixel, "slice-mm": thickness,
            "labels": labels})}), reply_to=msg)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        """Validate the model the last round left (when asked: one exchange a round), then
        train on it."""
        plan = plan_from(context.run_config, fallback or {})
        config = msg.content["config"]
        site, device = _site(context, plan, config)
        spec, weights = _spec(plan, config), unpack(msg.content["arrays"])
        validation = (_validate(site, spec, plan, device, kept_weights(weights))
                      if config.get("validate") else {})
        carried = msg.content.get("optimizer", context.state.get(OWN_OPTIMIZER))
        adam = (None if carried is None else
                optimizer_state(carried, template_optimizer(plan.model, plan.train)))
        update = local_update(site, spec, plan.train, device, weights,
                              epoch=int(config["server-round"]), optimizer=adam,
                              proximal_mu=float(config.get("proximal-mu", 0.0)))
        arrays = pack(update.weights)
        if plan.privacy and plan.strategy == "cwt":  # local DP: noised before it leaves
            arrays = local_release(arrays, msg.content["arrays"], plan.privacy,
                                   int(config["server-round"]))
        content = RecordDict({
            "arrays": arrays,
            "metrics": MetricRecord({"train-loss": update.train_loss,
                                     "num-examples": update.examples, SITE_WEIGHT: 1,
                                     "train-seconds": update.seconds, **validation})})
        if plan.carry_optimizer:
            content["optimizer"] = optimizer_record(update.optimizer)
        else:
            context.state[OWN_OPTIMIZER] = optimizer_record(update.optimizer)
        return Message(content, reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        plan = plan_from(context.run_config, fallback or {})
        config = msg.content["config"]
        site, device = _site(context, plan, config)
        spec, weights = _spec(plan, config), unpack(msg.content["arrays"])
        if config.get("calibrate"):  # whole labelled scans, one mean Dice per rule
            start = time.time()
            metrics = {**local_calibration(site, spec, device, weights),
                       "num-examples": len(site.scans), "val-seconds": time.time() - start}
        else:
            metrics = _validate(site, spec, plan, device, weights)
        return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)

    return app


def _validate(site: LocalSite, spec: ModelSpec, plan: Plan, device, weights: dict) -> dict:
    """The validation loss of `weights` on this site's validation patches, with their number
    (the coordinator pools the sites' losses by it) and the seconds it took."""
    start = time.time()
    loss, examples = local_validation(site, spec, plan.train, device, weights)
    return {"val-loss": loss, "val-examples": examples, "val-seconds": time.time() - start}


app = make_client_app()
