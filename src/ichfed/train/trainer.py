"""One epoch of training and one validation pass: the unit that local training (a site's
loop, a federated round) is made of."""

import numpy as np
import torch
from monai.losses import DiceLoss

from ichfed.data.patches import PatchSet
from ichfed.model.config import ModelSpec, TrainSpec
from ichfed.model.network import build_network


class Trainer:
    """The network, Adam and the batch-wide soft Dice loss (smooth 1), on one device."""

    def __init__(self, spec: ModelSpec, train: TrainSpec, device: torch.device) -> None:
        torch.manual_seed(train.seed)
        self.spec, self.train_spec, self.device = spec, train, device
        self.net = build_network(spec).to(device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=train.lr)
        self.loss = DiceLoss(sigmoid=True, batch=True, smooth_nr=1.0, smooth_dr=1.0)

    def train_epoch(self, patches: PatchSet, rng: np.random.Generator, on_batch=None) -> float:
        """One pass over the patches in random order; returns the mean batch loss."""
        self.net.train()
        total, count = 0.0, 0
        for x, y in patches.batches(self.train_spec.batch_size, rng):
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(self.net(x), y)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach()) * len(x)
            count += len(x)
            if on_batch:
                on_batch(len(x))
        return total / max(count, 1)

    @torch.no_grad()
    def validate(self, patches: PatchSet) -> float:
        """Batch-wide Dice loss over all validation patches at once (as one big batch)."""
        self.net.eval()
        inter = denom = 0.0
        for x, y in patches.batches(self.train_spec.batch_size):
            prob = torch.sigmoid(self.net(x))
            inter += float((prob * y).sum())
            denom += float(prob.sum() + y.sum())
        return 1.0 - (2 * inter + 1.0) / (denom + 1.0)

    def state(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state(self, state: dict, optimizer: bool = True) -> None:
        self.net.load_state_dict(state["net"])
        if optimizer and "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
