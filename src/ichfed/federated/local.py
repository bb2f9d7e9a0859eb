"""A site's side of a round, engine-free: the split, patches and Trainer of `ichfed train`, so a
round at one site computes exactly one local epoch of `ichfed train`."""

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ichfed.data.patches import PatchSet
from ichfed.data.prepare import PreparedScan
from ichfed.io import open_site
from ichfed.model.config import ModelSpec, TrainSpec
from ichfed.model.network import build_network
from ichfed.train.calibrate import dice_by_rule, rule_key
from ichfed.train.fit import make_patches, split_site
from ichfed.train.trainer import Trainer, kept_weights, training_trainer


@dataclass
class LocalSite:
    name: str
    train: PatchSet
    val: PatchSet
    val_scans: list[PreparedScan]
    scans: list[PreparedScan]  # every labelled scan (training and validation)


@dataclass
class Update:
    weights: dict
    optimizer: dict
    train_loss: float
    examples: int
    seconds: float


_OPEN: dict[tuple, LocalSite] = {}


def open_local_site(root: str | Path, spec: ModelSpec, tspec: TrainSpec,
                    device: torch.device, cache: Path | None = None) -> LocalSite:
    """The site's patches, prepared once per process (a simulated node's actor serves every
    round from memory); a deployed site, one process per message, keeps its prepared scans
    in `cache` on its own disk."""
    key = (str(Path(root).resolve()), json.dumps(spec.to_dict()), json.dumps(tspec.to_dict()),
           str(device))
    if key not in _OPEN:
        train, val = split_site(Path(root), spec, tspec, cache)
        _OPEN[key] = LocalSite(open_site(root).name,
                               *make_patches(train, val, spec, tspec, device), val, train + val)
    return _OPEN[key]


def local_update(site: LocalSite, spec: ModelSpec, tspec: TrainSpec, device: torch.device,
                 weights: dict, epoch: int, optimizer: dict | None = None,
                 proximal_mu: float = 0.0) -> Update:
    """One local epoch from the given travelling state (and Adam state, when it travels)."""
    trainer = training_trainer(spec, tspec, device)
    trainer.load_travelling_state(weights)
    if optimizer is not None:
        trainer.optimizer.load_state_dict(optimizer)
    start = time.time()
    loss = trainer.train_epoch(site.train, epoch, proximal_mu=proximal_mu)
    return Update(trainer.travelling_state(), trainer.optimizer.state_dict(), loss,
                  len(site.train), time.time() - start)


def local_validation(site: LocalSite, spec: ModelSpec, tspec: TrainSpec, device: torch.device,
                     weights: dict) -> tuple[float, int]:
    """The site's validation loss of the kept network (`kept_weights`: the coordinator
    sends only that one) as `ichfed train` computes it, and its number of examples."""
    trainer = Trainer(spec, tspec, device)
    trainer.net.load_state_dict(kept_weights(weights))
    return trainer.validation_loss(site.val, site.val_scans)


def local_calibration(site: LocalSite, spec: ModelSpec, device: torch.device,
                      weights: dict) -> dict[str, float]:
    """Mean Dice of each candidate lesion rule on the site's labelled scans, by name."""
    net = build_network(spec).to(device)
    net.load_state_dict(kept_weights(weights))
    return {rule_key(r): d for r, d in dice_by_rule(net, spec, site.scans, device).items()}


def template_optimizer(spec: ModelSpec, tspec: TrainSpec) -> dict:
    """A fresh Adam's state dict: the param groups an incoming Adam state is attached to."""
    return Trainer(spec, tspec, torch.device("cpu")).optimizer.state_dict()
