"""The training loss: batch-wide soft Dice on blood (smooth 1), the paper's; for a typed model
(`ModelSpec.labels="types"`) plus the cross-entropy of each bleed voxel's type given blood.

The type term is taken only over bleed voxels whose type the masks give (channel 1 of the
targets: the type code, 0 where a site's masks say only "blood"), so a binary-labelled site
trains a typed model through its blood output alone: the type probabilities are P(blood) times
P(type | blood) (model/slices.py) and sum to P(blood), the output its Dice is taken on."""

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss


class SegmentationLoss:
    """`loss(logits, targets)` for (B, C, P, P) logits and (B, 1 or 2, P, P) targets."""

    def __init__(self, typed: bool = False, type_weight: float = 1.0,
                 balance: bool = False) -> None:
        self.dice = DiceLoss(sigmoid=True, batch=True, smooth_nr=1.0, smooth_dr=1.0)
        self.typed, self.type_weight, self.balance = typed, type_weight, balance

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = self.dice(logits[:, :1], targets[:, :1])
        if not self.typed:
            return loss
        codes = targets[:, 1].long()
        ce = F.cross_entropy(logits[:, 1:], (codes - 1).clamp(min=0), reduction="none")
        # each type's voxels (code 0, type not given, drops out): sums on the device, no host
        # sync when a batch has none
        of_type = F.one_hot(codes, logits.shape[1])[..., 1:].flatten(0, 2).float()
        sums, counts = ce.flatten() @ of_type, of_type.sum(0)
        if self.balance:  # the mean of each type present, averaged over the types present
            term = (sums / counts.clamp(min=1)).sum() / (counts > 0).sum().clamp(min=1)
        else:  # the mean over all typed bleed voxels
            term = sums.sum() / counts.sum().clamp(min=1)
        return loss + self.type_weight * term
