"""One epoch of training and one validation pass: the unit that local training (a site's
loop, a federated round) is made of.

Every epoch draws its randomness (patch order, dropout) from (seed, epoch) alone, so epoch N
computes the same update whether it runs inside `ichfed train`, after `--resume`, or as round N
of a federation.
"""

from collections.abc import Callable

import numpy as np
import torch
from monai.losses import DiceLoss

from ichfed.data.patches import PatchSet
from ichfed.model.config import ModelSpec, TrainSpec
from ichfed.model.network import build_network


class Trainer:
    """The network, Adam and the batch-wide soft Dice loss (smooth 1), on one device.

    On CUDA it trains in bf16 autocast with channels_last tensors and cuDNN autotuning, and
    optionally under torch.compile (`TrainSpec.compile`); on CPU it stays in fp32.
    """

    def __init__(self, spec: ModelSpec, train: TrainSpec, device: torch.device) -> None:
        torch.manual_seed(train.seed)
        self.spec, self.train_spec, self.device = spec, train, device
        self.cuda = device.type == "cuda"
        self.bf16 = self.cuda and train.mixed_precision
        self.net = build_network(spec).to(device)
        if self.cuda:
            torch.backends.cudnn.benchmark = True
        if self.bf16:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
            self.net = self.net.to(memory_format=torch.channels_last)
        self.forward = torch.compile(self.net) if (train.compile and self.cuda) else self.net
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=train.lr)
        self.loss = DiceLoss(sigmoid=True, batch=True, smooth_nr=1.0, smooth_dr=1.0)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        if not self.bf16:
            return self.forward(x)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return self.forward(x.contiguous(memory_format=torch.channels_last)).float()

    def train_epoch(self, patches: PatchSet, epoch: int,
                    on_batch: Callable[[int], None] | None = None,
                    proximal_mu: float = 0.0) -> float:
        """One pass over the patches in an order fixed by (seed, epoch); returns the mean batch
        loss. `proximal_mu` > 0 adds FedProx's mu/2 * ||w - w_start||^2 to each step's loss."""
        seed = self.train_spec.seed
        rng = np.random.default_rng([seed, epoch])
        torch.manual_seed(int(rng.integers(2**62)))
        if self.train_spec.hard_negatives > 0:
            patches.mine(self.net, rng, self.train_spec.hard_negatives)
        anchor = ([p.detach().clone() for p in self.net.parameters()] if proximal_mu > 0
                  else None)
        self.net.train()
        total = torch.zeros((), device=self.device)
        count = 0
        for x, y in patches.batches(self.train_spec.batch_size, rng):
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(self._logits(x), y)
            if anchor is not None:
                drift = sum(((p - a) ** 2).sum() for p, a in zip(self.net.parameters(), anchor,
                                                                strict=True))
                loss = loss + 0.5 * proximal_mu * drift
            loss.backward()
            self.optimizer.step()
            total += loss.detach() * len(x)  # summed on the device: no sync per batch
            count += len(x)
            if on_batch:
                on_batch(len(x))
        return float(total) / max(count, 1)

    @torch.no_grad()
    def validate(self, patches: PatchSet) -> float:
        """Batch-wide Dice loss over all validation patches at once (as one big batch)."""
        self.net.eval()
        inter = torch.zeros((), device=self.device, dtype=torch.float64)
        denom = torch.zeros((), device=self.device, dtype=torch.float64)
        for x, y in patches.batches(self.train_spec.batch_size):
            prob = torch.sigmoid(self._logits(x))
            inter += (prob * y).sum().double()
            denom += (prob.sum() + y.sum()).double()
        return 1.0 - (2 * float(inter) + 1.0) / (float(denom) + 1.0)

    def state(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state(self, state: dict, optimizer: bool = True) -> None:
        self.net.load_state_dict(state["net"])
        if optimizer and "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
