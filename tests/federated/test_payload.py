"""A site's reply is merged only if its weights have the model's names and shapes and are finite;
Adam's state survives the trip through Flower's records."""

import torch
from flwr.app import ArrayRecord

from ichfed.federated.payload import optimizer_record, optimizer_state, problem_with


def _model() -> dict:
    return {"conv.weight": torch.ones(4, 2, 3, 3), "conv.bias": torch.zeros(4)}


def test_good_reply_passes():
    assert problem_with(ArrayRecord(_model()), ArrayRecord(_model())) is None


def test_wrong_shape_missing_key_and_nan_are_rejected():
    reference = ArrayRecord(_model())
    wrong = {**_model(), "conv.bias": torch.zeros(5)}
    assert "shape" in problem_with(ArrayRecord(wrong), reference)
    assert "names" in problem_with(ArrayRecord({"conv.weight": torch.ones(4, 2, 3, 3)}),
                                   reference)
    bad = _model()
    bad["conv.weight"][0, 0, 0, 0] = float("inf")
    assert "NaN or Inf" in problem_with(ArrayRecord(bad), reference)


def test_adam_state_round_trip():
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    fresh = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=1e-3)
    back = optimizer_state(optimizer_record(opt.state_dict()), fresh.state_dict())
    fresh.load_state_dict(back)
    for index, slots in opt.state_dict()["state"].items():
        for name, value in slots.items():
            torch.testing.assert_close(fresh.state_dict()["state"][index][name], value)
