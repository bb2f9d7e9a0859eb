"""What crosses the network: weights and Adam state as Flower ArrayRecords, and the checks a
reply must pass before it is merged.

A state travels packed: one flat array per dtype, whose key in the ArrayRecord is the dtype and
the layout (each tensor's name and shape, in order). Flower 1.42 stores and moves every array
of a message as objects of its own, each costing the coordinator several SQLite transactions
to store and to hand out; the `demo` network's weights and their moving average are 273
tensors (with Adam's state carried, about three times as many), and a deployed round spent
48 s of its 74 s moving them on a 2-core machine (docs/experiments.md, "Federation").
Packed they are a handful of 5 MiB chunks. Why the layout rides in the key: FedAvg averages
arrays key by key and element by element, so the average of packed states is the packed
average, and a reply whose layout differs from what was sent has another key and is refused
by `problem_with`.
"""

import json
import math

import numpy as np
import torch
from flwr.app import ArrayRecord, RecordDict


def pack(state: dict) -> ArrayRecord:
    """A state dict as one flat array per dtype, keyed by the dtype and the layout."""
    groups: dict[torch.dtype, list[tuple[str, torch.Tensor]]] = {}
    for name, value in state.items():
        tensor = torch.as_tensor(value).detach().cpu()
        groups.setdefault(tensor.dtype, []).append((name, tensor))
    return ArrayRecord({
        f"{str(dtype).removeprefix('torch.')} "
        f"{json.dumps([[n, list(t.shape)] for n, t in items], separators=(',', ':'))}":
        torch.cat([t.reshape(-1) for _, t in items]) for dtype, items in groups.items()})


def unpack(record: ArrayRecord) -> dict[str, torch.Tensor]:
    """Inverse of `pack`: the state dict, each tensor its own copy, of the dtype its key names
    (FedAvg's average of integer step counters arrives as float64; kept so, a resumed run
    packed them under another key than the sites' replies)."""
    state = {}
    for key, flat in record.to_torch_state_dict().items():
        dtype, layout = key.split(" ", 1)
        flat, offset = flat.to(getattr(torch, dtype)), 0
        for name, shape in json.loads(layout):
            size = math.prod(shape)
            state[name] = flat[offset:offset + size].reshape(shape).clone()
            offset += size
        if offset != flat.numel():
            raise ValueError(f"{flat.numel()} values where the layout has {offset}")
    return state


def optimizer_record(state: dict) -> ArrayRecord:
    """Adam's per-parameter tensors (step, moments) under `index.name` keys, packed; the
    hyper-parameters are not sent (every site builds the same Adam from the plan)."""
    return pack({f"{index}.{name}": value for index, slots in state["state"].items()
                 for name, value in slots.items()})


def optimizer_state(record: ArrayRecord, template: dict) -> dict:
    """Inverse of `optimizer_record`, with the param groups of a freshly built optimizer."""
    state: dict[int, dict] = {}
    for key, value in unpack(record).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": template["param_groups"]}


def problem_with(record: ArrayRecord, reference: ArrayRecord) -> str | None:
    """Why a returned packed state must not be merged (other names, shapes or lengths than
    `reference`, NaN/Inf), or None."""
    if set(record.keys()) != set(reference.keys()):
        return "its weights have other names or shapes than the model's"
    for key, array in record.items():
        dtype = key.split(" ", 1)[0]
        if tuple(array.shape) != tuple(reference[key].shape):
            return (f"its {dtype} values number {math.prod(array.shape)}, expected "
                    f"{math.prod(reference[key].shape)}")
        if not np.isfinite(array.numpy()).all():
            return f"its {dtype} values hold NaN or Inf"
    return None


def payload_bytes(content: RecordDict) -> int:
    """Bytes of tensor data in a message (the part that grows with the model)."""
    return sum(len(array.data) for record in content.array_records.values()
               for array in record.values())
