"""One epoch of training and one validation pass: the unit that local training (a site's
loop, a federated round) is made of.

Every epoch draws its randomness (patch order, dropout) from (seed, epoch) alone, so epoch N
computes the same update whether it runs inside `ichfed train`, after `--resume`, or as round N
of a federation.
"""

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel

from ichfed.data.patches import PatchSet
from ichfed.data.prepare import PreparedScan
from ichfed.device import cpu_bf16_units
from ichfed.model.config import ModelSpec, TrainSpec
from ichfed.model.network import build_network
from ichfed.train.calibrate import dice_by_rule
from ichfed.train.loss import SegmentationLoss

AVERAGE = "average."  # where the moving average travels with the weights (`travelling_state`)


def kept_weights(state: dict) -> dict:
    """The network a travelling state stands for: its moving average where it carries one
    (what a site's own training validates and saves), else its weights."""
    prefix = AVERAGE + "module."
    average = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    return average or state


def training_trainer(spec: ModelSpec, tspec: TrainSpec, device: torch.device) -> "Trainer":
    """The Trainer a site's training runs (`ichfed train`, a federated round): with the
    moving average of the weights where the preset keeps one."""
    trainer = Trainer(spec, tspec, device)
    if tspec.average_decay > 0:
        trainer.keep_average(tspec.average_decay)
    return trainer


def native_bf16(device: torch.device) -> bool:
    """Whether to train `device` in bf16: CUDA GPUs (the GPU path always has; Ampere and later
    compute it natively), and CPUs with AVX512-BF16 or AMX (on other CPUs oneDNN emulates bf16,
    slower than fp32)."""
    return device.type == "cuda" or bool(cpu_bf16_units())


class Trainer:
    """The network, Adam and the loss (train/loss.py), on one device.

    Tensors are channels_last (oneDNN's and cuDNN's fast convolution layout: 1.4x on 2 CPU
    cores, same fp32 numbers). With `TrainSpec.mixed_precision`, steps run in bf16 autocast
    where the device has bf16 in hardware (CUDA; CPUs with AVX512-BF16 or AMX: another 1.6x on
    2 cores). On CUDA, cuDNN autotuning and optionally torch.compile (`TrainSpec.compile`).
    """

    def __init__(self, spec: ModelSpec, train: TrainSpec, device: torch.device) -> None:
        torch.manual_seed(train.seed)
        self.spec, self.train_spec, self.device = spec, train, device
        self.cuda = device.type == "cuda"
        self.bf16 = train.mixed_precision and native_bf16(device)
        self.net = build_network(spec).to(device, memory_format=torch.channels_last)
        if self.cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = self.bf16
        self.forward = torch.compile(self.net) if (train.compile and self.cuda) else self.net
        # fused: one kernel for the whole step on a GPU (the update is the same Adam)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=train.lr, fused=self.cuda)
        self.loss = SegmentationLoss(spec.typed, train.type_weight, train.type_balance)
        self.average: AveragedModel | None = None

    def keep_average(self, decay: float) -> None:
        """From now on also keep an exponential moving average of the weights and batch-norm
        statistics, which `model` then is: what a site's own training validates and saves,
        and in a federation what travels with the weights (`travelling_state`).

        The decay warms up as (1 + n) / (10 + n) after n steps, up to `decay`: a fixed 0.995
        from the first step weighs a short training towards its first epochs (after the
        study's 1.5-minute pooled training, about 500 steps, 8% on the first step's weights
        alone), and that pooled model predicted nothing on two sites."""

        def ema(averages: list, currents: list, steps: torch.Tensor) -> None:
            d = min(decay, (1.0 + float(steps)) / (10.0 + float(steps)))  # one sync per group
            for average, current in zip(averages, currents, strict=True):
                if average.is_floating_point():
                    average.lerp_(current, 1.0 - d)
                else:  # batch norm's step counter
                    average.copy_(current)

        self.average = AveragedModel(self.net, multi_avg_fn=ema, use_buffers=True)

    @property
    def model(self) -> torch.nn.Module:
        """The network that is validated and kept: the average when one is kept."""
        return self.average.module if self.average is not None else self.net

    def _logits(self, x: torch.Tensor, net: torch.nn.Module | None = None) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            net = self.forward if net is None else net  # a Module may define __len__
            return net(x.contiguous(memory_format=torch.channels_last)).float()

    def train_epoch(self, patches: PatchSet, epoch: int,
                    on_batch: Callable[[int], None] | None = None,
                    proximal_mu: float = 0.0) -> float:
        """One pass over the patches in an order fixed by (seed, epoch); returns the mean batch
        loss. `proximal_mu` > 0 adds FedProx's mu/2 * ||w - w_start||^2 to each step's loss."""
        seed = self.train_spec.seed
        rng = np.random.default_rng([seed, epoch])
        torch.manual_seed(int(rng.integers(2**62)))
        if self.train_spec.hard_negatives > 0 or self.train_spec.hard_positives > 0:
            self.net.eval()
            patches.mine(self._logits, rng, self.train_spec.hard_negatives,
                         self.train_spec.hard_positives)
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
            if self.average is not None:
                self.average.update_parameters(self.net)
            total += loss.detach() * len(x)  # summed on the device: no sync per batch
            count += len(x)
            if on_batch:
                on_batch(len(x))
        return float(total) / max(count, 1)

    def validation_loss(self, patches: PatchSet, scans: list[PreparedScan]) -> tuple[float, int]:
        """What early stopping and the kept checkpoint follow (`TrainSpec.select_by`; with
        `last` the patch loss, only reported), and how many examples it averages over (a
        federation weights the sites by it)."""
        if self.train_spec.select_by == "scan-dice":  # without mirroring: epochs are only
            # compared with one another here, and a plain pass costs half (in a time budget,
            # mirrored validation cost the demo preset one epoch in 12)
            means = dice_by_rule(self.model, replace(self.spec, mirror=False), scans,
                                 self.device)
            return 1.0 - max(means.values()), len(scans)
        return self.validate(patches), len(patches)

    @torch.no_grad()
    def validate(self, patches: PatchSet) -> float:
        """Batch-wide Dice loss of blood over all validation patches at once (as one big
        batch)."""
        self.model.eval()
        inter = torch.zeros((), device=self.device, dtype=torch.float64)
        denom = torch.zeros((), device=self.device, dtype=torch.float64)
        for x, y in patches.batches(self.train_spec.batch_size):
            prob, y = torch.sigmoid(self._logits(x, self.model)[:, :1]), y[:, :1]
            inter += (prob * y).sum().double()
            denom += (prob.sum() + y.sum()).double()
        return 1.0 - (2 * float(inter) + 1.0) / (float(denom) + 1.0)

    def state(self) -> dict:
        state = {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}
        if self.average is not None:
            state["average"] = self.average.state_dict()
        return state

    def travelling_state(self) -> dict:
        """What a federation hands on: the weights, and the moving average (with its step
        count) under AVERAGE-prefixed names in the same record, so that FedAvg averages both
        and cwt passes both on, and the next site goes on averaging where the last stopped.

        Why the average travels: with the raw weights alone a federation's model was the last
        epoch's weights at lr 1e-3, and which of its rounds ended the run decided the study
        (cwt 0.62 or 0.26 on nih for a 0.014 HU change of its inputs)."""
        state = dict(self.net.state_dict())
        if self.average is not None:
            state.update({AVERAGE + k: v for k, v in self.average.state_dict().items()})
        return state

    def load_travelling_state(self, state: dict) -> None:
        """Inverse of `travelling_state`; a state without an average leaves this one's as
        it is."""
        self.net.load_state_dict({k: v for k, v in state.items() if not k.startswith(AVERAGE)})
        average = {k.removeprefix(AVERAGE): v for k, v in state.items() if k.startswith(AVERAGE)}
        if self.average is not None and average:
            self.average.load_state_dict(average)

    def load_state(self, state: dict, optimizer: bool = True) -> None:
        self.net.load_state_dict(state["net"])
        if optimizer and "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        if self.average is not None and "average" in state:
            self.average.load_state_dict(state["average"])
