import math

import pytest
import torch

from ichfed.model.config import ModelSpec, preset
from ichfed.model.network import build_network


def test_the_paper_preset_builds_the_papers_network():
    net = build_network(preset("paper")[0])
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(7.78e6, rel=0.01)
    dropouts = [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)]
    assert sorted(dropouts)[-2:] == [0.5, 0.5] and sum(p > 0 for p in dropouts) == 2


def test_an_output_prior_starts_every_pixel_at_that_probability():
    spec = ModelSpec(features=(4, 4, 8, 8, 16, 4), output_prior=0.05)
    net = build_network(spec).eval()
    with torch.no_grad():
        net.final_conv.weight.zero_()  # leaves only the bias: the prior itself
        prob = torch.sigmoid(net(torch.randn(2, 1, 32, 32)))
    assert torch.allclose(prob, torch.full_like(prob, 0.05), atol=1e-6)
    assert net.final_conv.bias.item() == pytest.approx(math.log(0.05 / 0.95))


def test_without_a_prior_the_output_keeps_pytorchs_initialisation():
    torch.manual_seed(0)
    plain = build_network(ModelSpec(features=(4, 4, 8, 8, 16, 4)))
    torch.manual_seed(0)
    again = build_network(ModelSpec(features=(4, 4, 8, 8, 16, 4), output_prior=0.0))
    assert torch.equal(plain.final_conv.bias, again.final_conv.bias)
    assert abs(plain.final_conv.bias.item()) < 1  # default init: near 0, not a log-odds prior
