"""A typed model federated with binary sites: its type outputs are averaged over the sites
that label types only; everything else is FedAvg's average as it is."""

import torch
from flwr.app import MetricRecord

from ichfed.federated.payload import pack, unpack
from ichfed.federated.strategies import types_from_typed_sites


class _Reply:
    def __init__(self, node: int, state: dict, examples: int) -> None:
        self.metadata = type("Meta", (), {"src_node_id": node})()
        self.content = {"arrays": pack(state), "metrics": MetricRecord({"num-examples": examples})}


def _state(value: float) -> dict:
    return {"down.weight": torch.full((3, 2), value),
            "final_conv.weight": torch.full((6, 4, 1, 1), value),
            "final_conv.bias": torch.full((6,), value),
            "average.module.final_conv.bias": torch.full((6,), value),
            "average.n_averaged": torch.tensor(3)}


def test_type_outputs_come_from_the_typed_sites_only():
    replies = [_Reply(1, _state(1.0), 30), _Reply(2, _state(4.0), 10), _Reply(3, _state(0.0), 20)]
    fedavg = pack(_state(0.5))  # whatever the strategy made of them
    got = unpack(types_from_typed_sites(fedavg, replies, typed={1, 2}))
    for name in ("final_conv.weight", "final_conv.bias", "average.module.final_conv.bias"):
        torch.testing.assert_close(got[name][0], torch.full_like(got[name][0], 0.5))  # blood
        # the types: (30 x 1 + 10 x 4) / 40, the binary site left out
        torch.testing.assert_close(got[name][1:], torch.full_like(got[name][1:], 1.75))
    torch.testing.assert_close(got["down.weight"], torch.full((3, 2), 0.5))
    assert got["average.n_averaged"].item() == 3
    # every site typed (or none): the aggregate as it came
    assert types_from_typed_sites(fedavg, replies, typed={1, 2, 3}) is fedavg
    assert types_from_typed_sites(fedavg, replies, typed=set()) is fedavg
