"""The scanner augmentations: per-patch offsets and noise, coarser pixels; inside the brain
and the window, the skull left as it is."""

import numpy as np
import torch

from ichfed.data.patches import coarser, other_scanner


def _patches():
    x = torch.rand(64, 3, 16, 16) * 0.8 + 0.1  # a brain inside the window [0, 1]
    brain = torch.ones_like(x, dtype=torch.bool)
    brain[:, :, :4] = False  # bone above each patch's brain
    return x * brain, brain


def test_each_patch_gets_its_own_offset_within_the_limit():
    x, brain = _patches()
    out = other_scanner(x, brain, np.random.default_rng(0), 0.05, 0.0, 0.0, 1.0)
    offsets = (out - x)[brain.expand_as(x)].reshape(64, -1)
    assert torch.allclose(offsets, offsets[:, :1], atol=1e-6)  # one offset per patch
    assert offsets.abs().max() <= 0.05 + 1e-6 and offsets[:, 0].std() > 0.01


def test_noise_stays_in_the_brain_and_the_window():
    x, brain = _patches()
    out = other_scanner(x, brain, np.random.default_rng(1), 0.05, 0.5, 0.0, 1.0)
    assert (out[~brain] == 0).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    spread = (out - x)[brain].std()
    assert spread > 0.05  # noise was added


def test_nothing_to_add_is_the_identity():
    x, brain = _patches()
    out = other_scanner(x, brain, np.random.default_rng(2), 0.0, 0.0, 0.0, 1.0)
    assert torch.equal(out, x)


def test_the_skull_outside_the_brain_is_left_as_it_is():
    x, brain = _patches()
    x = torch.where(brain, x, torch.ones_like(x))  # skull_context: the window's top on the bone
    for augment in (lambda p: other_scanner(p, brain, np.random.default_rng(3), 0.05, 0.5,
                                            0.0, 1.0),
                    lambda p: coarser(p, brain, np.random.default_rng(4), (8.0, 1.0), share=1.0)):
        out = augment(x)
        assert torch.equal(out[~brain], x[~brain]) and not torch.equal(out[brain], x[brain])


def test_a_typed_patch_set_serves_the_type_codes_as_a_second_target_channel():
    from ichfed.data.patches import PatchSet
    from ichfed.data.prepare import PreparedScan

    def scan(code: int | None) -> PreparedScan:
        label = np.zeros((24, 24, 3), np.uint8)
        label[8:14, 8:14, 1] = 1
        brain = np.zeros_like(label, bool)
        brain[2:22, 2:22] = True
        return PreparedScan(np.where(brain, 0.2, 0).astype(np.float32), brain, label,
                            None, 0.001, None, (1.0, 1.0, 5.0),
                            None if code is None else label * code)

    typed = PatchSet([scan(2), scan(None)], 16, 4, 0, torch.device("cpu"),
                     types=True)
    (x, y), = typed.batches(64)
    assert y.shape[1] == 2
    assert set(y[:, 1][y[:, 0] > 0].unique().tolist()) == {0.0, 2.0}  # 0: the untyped scan's
    assert (y[:, 1][y[:, 0] == 0] == 0).all() and (y[:, 1] == 2).any()
    plain = PatchSet([scan(2)], 16, 4, 0, torch.device("cpu"))
    (_, y), = plain.batches(64)
    assert y.shape[1] == 1
