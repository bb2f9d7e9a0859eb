"""States travel packed (one array per dtype) and come back unchanged; a site's reply is merged
only if its weights have the model's names and shapes and are finite; Adam's state survives
the trip through Flower's records."""

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

from ichfed.federated.payload import (
    optimizer_record,
    optimizer_state,
    pack,
    problem_with,
    unpack,
)


def _model() -> dict:
    return {"conv.weight": torch.ones(4, 2, 3, 3), "conv.bias": torch.zeros(4),
            "norm.num_batches_tracked": torch.tensor(7), "scale": torch.tensor(0.5)}


def test_a_state_travels_as_one_array_per_dtype_and_comes_back_unchanged():
    record = pack(_model())
    assert sorted(key.split(" ")[0] for key in record) == ["float32", "int64"]
    back = unpack(record)
    assert list(back) == ["conv.weight", "conv.bias", "scale", "norm.num_batches_tracked"]
    for name, value in _model().items():
        assert back[name].dtype == value.dtype and torch.equal(back[name], value), name


def test_flowers_average_of_packed_states_is_the_average_of_the_states():
    states = [{k: v + i for k, v in _model().items()} for i in (0, 3)]
    replies = [RecordDict({"arrays": pack(s), "metrics": MetricRecord({"n": n})})
               for s, n in zip(states, (1, 2), strict=True)]
    averaged = unpack(aggregate_arrayrecords(replies, "n"))
    for name in _model():
        expected = (states[0][name].double() + 2 * states[1][name].double()) / 3
        torch.testing.assert_close(averaged[name].double(), expected)
    # the averaged counters (float64 in Flower's average) come back as the integers they count,
    # so a state saved from an average packs under the keys the sites reply with
    assert averaged["norm.num_batches_tracked"].dtype == torch.int64
    assert set(pack(averaged).keys()) == set(pack(_model()).keys())


def test_good_reply_passes():
    assert problem_with(pack(_model()), pack(_model())) is None


def test_wrong_shape_missing_key_wrong_length_and_nan_are_rejected():
    reference = pack(_model())
    wrong = {**_model(), "conv.bias": torch.zeros(5)}
    assert "shapes" in problem_with(pack(wrong), reference)
    missing = {k: v for k, v in _model().items() if k != "conv.bias"}
    assert "names" in problem_with(pack(missing), reference)
    short = ArrayRecord({key: Array(np.asarray(array.numpy())[:-1])
                         for key, array in reference.items()})
    assert "number" in problem_with(short, reference)
    bad = _model()
    bad["conv.weight"][0, 0, 0, 0] = float("inf")
    assert "NaN or Inf" in problem_with(pack(bad), reference)


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
