"""The loss: Dice on blood; a typed model adds the cross-entropy of the types where masks
give them, and nothing for blood whose type a site does not label."""

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

from ichfed.train.loss import SegmentationLoss


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 6, 8, 8, generator=g)
    blood = (torch.rand(2, 1, 8, 8, generator=g) > 0.7).float()
    codes = torch.randint(1, 6, (2, 1, 8, 8), generator=g).float() * blood
    return logits, blood, codes


def test_a_binary_model_is_the_papers_soft_dice():
    logits, blood, _ = _batch()
    dice = DiceLoss(sigmoid=True, batch=True, smooth_nr=1.0, smooth_dr=1.0)
    assert torch.equal(SegmentationLoss()(logits[:, :1], blood), dice(logits[:, :1], blood))


def test_types_add_the_cross_entropy_over_the_bleed_voxels_whose_type_is_known():
    logits, blood, codes = _batch()
    loss = SegmentationLoss(typed=True)
    dice = SegmentationLoss()(logits[:, :1], blood)
    known = codes[:, 0] > 0
    expected = F.cross_entropy(logits.permute(0, 2, 3, 1)[known][:, 1:],
                               codes[:, 0][known].long() - 1)
    got = loss(logits, torch.cat([blood, codes], 1))
    torch.testing.assert_close(got, dice + expected)
    weighted = SegmentationLoss(typed=True, type_weight=0.25)(logits, torch.cat([blood, codes], 1))
    torch.testing.assert_close(weighted, dice + 0.25 * expected)
    # balanced: each type's mean cross-entropy, averaged over the types in the batch
    ce = F.cross_entropy(logits.permute(0, 2, 3, 1)[known][:, 1:], codes[:, 0][known].long() - 1,
                         reduction="none")
    kinds = codes[:, 0][known].long()
    means = torch.stack([ce[kinds == k].mean() for k in kinds.unique()])
    balanced = SegmentationLoss(typed=True, balance=True)(logits, torch.cat([blood, codes], 1))
    torch.testing.assert_close(balanced, dice + means.mean())
    # a binary site's blood (type 0: not given) trains the blood output only
    for each in (loss, SegmentationLoss(typed=True, balance=True)):
        untyped = each(logits, torch.cat([blood, torch.zeros_like(codes)], 1))
        torch.testing.assert_close(untyped, dice)


def test_the_type_term_moves_only_the_type_outputs():
    logits, blood, codes = _batch(1)
    logits.requires_grad_(True)
    typed = SegmentationLoss(typed=True)(logits, torch.cat([blood, codes], 1))
    typed.backward()
    blood_only = logits.grad.clone()
    logits.grad = None
    SegmentationLoss()(logits[:, :1], blood).backward()
    torch.testing.assert_close(blood_only[:, :1], logits.grad[:, :1])
    assert blood_only[:, 1:].abs().sum() > 0
